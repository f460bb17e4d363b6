package chat

import (
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"time"

	"github.com/messager/messager/internal/client"
)

// output writes what the user sees. Messages go to one writer, notices to
// another (the same one on a terminal; stderr in pipe mode, so that stdout
// holds only messages). With JSON, notices and errors are JSON objects on
// the messages' writer too, told apart by their "type": "message",
// "notice" or "error", and the events of version 2 have types of their
// own: "presence", "who", "join", "part" and "fail". Every line is
// written with one Write, which the line editor needs to redraw the
// half-typed line below it.
type output struct {
	mu      sync.Mutex
	msgs    io.Writer
	notices io.Writer
	color   bool
	json    bool
	short   bool // pipe mode: "alice: text" without the time
	buf     []byte
}

// palette is the foreground colours senders get: the normal and bright
// variants of red, green, yellow, blue, magenta and cyan.
var palette = [...]int{31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96}

// colour returns the SGR colour of a name; the same name always gets the
// same colour.
func colour(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return palette[h.Sum32()%uint32(len(palette))]
}

func (o *output) name(b []byte, name string) []byte {
	name = client.Escape(name)
	if !o.color {
		return append(b, name...)
	}
	b = fmt.Appendf(b, "\x1b[%dm", colour(name))
	b = append(b, name...)
	return append(b, "\x1b[0m"...)
}

// group starts a group message's line with its group, "#team ".
func (o *output) group(b []byte, group string) []byte {
	if group == "" {
		return b
	}
	b = append(b, client.Escape(group)...)
	return append(b, ' ')
}

// relay shows a received message.
func (o *output) relay(r client.Relay) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf[:0]
	switch {
	case o.json:
		b = append(b, `{"type":"message","time":`...)
		b = AppendJSONString(b, r.Time.Format(time.RFC3339Nano))
		b = append(b, `,"from":`...)
		b = AppendJSONString(b, r.From)
		b = append(b, `,"to":`...)
		b = AppendJSONString(b, r.To)
		b = append(b, `,"text":`...)
		b = AppendJSONString(b, r.Text)
		b = append(b, "}\n"...)
	case o.short:
		b = o.group(b, r.Group)
		b = o.name(b, r.From)
		b = append(b, ": "...)
		b = append(b, client.Escape(r.Text)...)
		b = append(b, '\n')
	default:
		b = r.Time.AppendFormat(append(b, '['), "15:04")
		b = append(b, "] "...)
		b = o.group(b, r.Group)
		b = o.name(b, r.From)
		b = append(b, ": "...)
		b = append(b, client.Escape(r.Text)...)
		b = append(b, '\n')
	}
	o.buf = b
	o.msgs.Write(b)
}

// sent shows a message the user sent, in the same form as received ones,
// with its target.
func (o *output) sent(t time.Time, from, to, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := t.AppendFormat(append(o.buf[:0], '['), "15:04")
	b = append(b, "] "...)
	b = o.name(b, from)
	b = append(b, " → "...)
	b = o.name(b, to)
	b = append(b, ": "...)
	b = append(b, client.Escape(text)...)
	b = append(b, '\n')
	o.buf = b
	o.msgs.Write(b)
}

// notice shows a line from the client itself, marked with "* ". Values
// from the wire must be escaped by the caller.
func (o *output) notice(format string, args ...any) {
	o.line("notice", fmt.Sprintf(format, args...), "", 0)
}

// failure shows an error that does not end the session: a line that
// could not be sent is number line of the input, when not zero.
func (o *output) failure(line int, format string, args ...any) {
	o.line("error", fmt.Sprintf(format, args...), "", line)
}

// notOnline tells that a message to target was not delivered.
func (o *output) notOnline(target string) {
	o.line("notice", client.Escape(target)+" is not online", target, 0)
}

// line writes a notice or an error: "* text" on the notices' writer, or a
// JSON object of the given type on the messages' writer, with the target
// of an undelivered message and the input line of a failure when set.
func (o *output) line(typ, text, to string, line int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf[:0]
	w := o.notices
	if o.json {
		w = o.msgs
		b = append(b, `{"type":"`...)
		b = append(b, typ...)
		b = append(b, `","time":`...)
		b = AppendJSONString(b, time.Now().Format(time.RFC3339Nano))
		if to != "" {
			b = append(b, `,"to":`...)
			b = AppendJSONString(b, to)
		}
		if line > 0 {
			b = fmt.Appendf(b, `,"line":%d`, line)
		}
		b = append(b, `,"text":`...)
		b = AppendJSONString(b, text)
		b = append(b, "}\n"...)
	} else {
		b = append(b, "* "...)
		b = append(b, text...)
		b = append(b, '\n')
	}
	o.buf = b
	w.Write(b)
}

// fail shows a refusal of the server. In JSON it names the refused
// query, and the target of an undelivered message in "to" as a notice
// does.
func (o *output) fail(f client.Fail) {
	if !o.json {
		o.notice("%s", f.Text())
		return
	}
	o.event("fail", f.Time, func(b []byte) []byte {
		if f.Verb == "MSG" {
			b = appendField(b, "to", f.Subject)
		}
		b = appendField(b, "verb", f.Verb)
		b = appendField(b, "subject", f.Subject)
		b = appendField(b, "reason", f.Reason)
		return appendField(b, "text", f.Text())
	})
}

// presence writes a presence line as JSON; on a terminal the session
// shows only what changed, as a notice.
func (o *output) presence(p client.Presence) {
	o.event("presence", p.Time, func(b []byte) []byte {
		b = fmt.Appendf(b, `,"on":%t`, p.On)
		return appendNamesField(b, p.Names)
	})
}

// who shows the answer to WHO.
func (o *output) who(w client.Who) {
	if !o.json {
		o.notice("%s", whoText(w))
		return
	}
	o.event("who", w.Time, func(b []byte) []byte {
		b = appendField(b, "mask", w.Mask)
		b = fmt.Appendf(b, `,"count":%d`, w.Count)
		return appendNamesField(b, w.Names)
	})
}

// member shows a user joining (typ "join") or leaving ("part") a group;
// me is this session's user.
func (o *output) member(t time.Time, typ, group, user, me string) {
	if o.json {
		o.event(typ, t, func(b []byte) []byte {
			b = appendField(b, "group", group)
			return appendField(b, "user", user)
		})
		return
	}
	who := client.Escape(user)
	if user == me {
		who = "you"
	}
	verb := " joined "
	if typ == "part" {
		verb = " left "
	}
	o.notice("%s%s%s", who, verb, client.Escape(group))
}

// event writes one JSON line of type typ: its time, then what fields
// appends (each with a leading comma).
func (o *output) event(typ string, t time.Time, fields func([]byte) []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := append(o.buf[:0], `{"type":`...)
	b = AppendJSONString(b, typ)
	b = append(b, `,"time":`...)
	b = AppendJSONString(b, t.Format(time.RFC3339Nano))
	b = fields(b)
	b = append(b, "}\n"...)
	o.buf = b
	o.msgs.Write(b)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',')
	b = AppendJSONString(b, name)
	b = append(b, ':')
	return AppendJSONString(b, value)
}

func appendNamesField(b []byte, names []string) []byte {
	b = append(b, `,"names":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, n)
	}
	return append(b, ']')
}
