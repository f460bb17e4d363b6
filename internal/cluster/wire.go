package cluster

import (
	"bytes"
	"strconv"

	"github.com/messager/messager/internal/protocol"
)

// What one node sends another is a stream of records, one per line,
// batched many to a NATS message on the receiver's subject. A batch
// starts with "@<node id>", the sender. Each record is a kind byte, a
// space, and the kind's fields separated by single spaces; a message's
// text is the rest of the line (it holds no line end: the protocol
// forbids it).
//
//	R <target> <sender> <text>   a message for a user on the receiver
//	G <#group> <sender> <text>   a group message for the members there
//	O <user> <stamp> [<version>] user logged in on the sender at stamp,
//	                             speaking that protocol version (1 if left out)
//	F <user> <stamp>             that session ended
//	J <#group> <user>            user, on the sender, joined the group
//	P <#group> <user>            and left it
//	T <user> <stamp> <groups> <watches>
//	                             the receiver's session of user at stamp takes
//	                             over these groups and watches (comma separated,
//	                             "-" for none) from the sender's older session
//	H                            the sender's full state follows; send yours
//	S                            the sender's full state follows
//	E                            the end of a full state
//
// A stamp orders logins across the cluster: a hybrid logical clock in
// nanoseconds, ties broken by node id; the latest login of a user is the
// one that stays.
const (
	recRelay  = 'R'
	recGroup  = 'G'
	recOnline = 'O'
	recOff    = 'F'
	recJoin   = 'J'
	recPart   = 'P'
	recHand   = 'T'
	recHello  = 'H'
	recState  = 'S'
	recEnd    = 'E'
)

// record is one parsed record; its slices point into the batch.
type record struct {
	kind    byte
	a, b    []byte // target/group/user, then sender/user; T: the groups
	text    []byte // R, G: the text; T: the watches
	stamp   int64
	version int // O: the session's protocol version
}

// appendMessage appends an R or G record.
func appendMessage(dst []byte, kind byte, to string, toB []byte, sender, text []byte) []byte {
	dst = append(dst, kind, ' ')
	dst = append(dst, to...)
	dst = append(dst, toB...)
	dst = append(dst, ' ')
	dst = append(dst, sender...)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	return append(dst, '\n')
}

// appendStamped appends an O or F record.
func appendStamped(dst []byte, kind byte, user string, stamp int64) []byte {
	dst = append(dst, kind, ' ')
	dst = append(dst, user...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, stamp, 10)
	return append(dst, '\n')
}

// appendOnline appends an O record.
func appendOnline(dst []byte, user string, stamp int64, version int) []byte {
	dst = appendStamped(dst, recOnline, user, stamp)
	if version > 1 {
		dst[len(dst)-1] = ' '
		dst = strconv.AppendInt(dst, int64(version), 10)
		dst = append(dst, '\n')
	}
	return dst
}

// appendHandOver appends a T record.
func appendHandOver(dst []byte, user string, stamp int64, groups, watches []string) []byte {
	dst = appendStamped(dst, recHand, user, stamp)
	dst = dst[:len(dst)-1]
	for _, list := range [][]string{groups, watches} {
		dst = append(dst, ' ')
		if len(list) == 0 {
			dst = append(dst, '-')
		}
		for i, name := range list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, name...)
		}
	}
	return append(dst, '\n')
}

// splitList splits a T record's list ("-" is none).
func splitList(b []byte) []string {
	if len(b) == 1 && b[0] == '-' {
		return nil
	}
	var out []string
	for _, f := range bytes.Split(b, []byte{','}) {
		out = append(out, string(f))
	}
	return out
}

// validList reports whether b is "-" or names (or groups) joined by commas.
func validList(b []byte, group bool) bool {
	if len(b) == 1 && b[0] == '-' {
		return true
	}
	for _, f := range bytes.Split(b, []byte{','}) {
		if group && !protocol.ValidGroup(f) || !group && !protocol.ValidName(f) {
			return false
		}
	}
	return true
}

// appendMember appends a J or P record.
func appendMember(dst []byte, kind byte, group, user string) []byte {
	dst = append(dst, kind, ' ')
	dst = append(dst, group...)
	dst = append(dst, ' ')
	dst = append(dst, user...)
	return append(dst, '\n')
}

// parseRecord parses one record line (without its line end). ok is false
// for a line that is not a well-formed record.
func parseRecord(line []byte) (r record, ok bool) {
	if len(line) == 0 {
		return r, false
	}
	r.kind = line[0]
	switch r.kind {
	case recHello, recState, recEnd:
		return r, len(line) == 1
	}
	if len(line) < 3 || line[1] != ' ' {
		return r, false
	}
	rest := line[2:]
	i := bytes.IndexByte(rest, ' ')
	if i <= 0 {
		return r, false
	}
	r.a, rest = rest[:i], rest[i+1:]
	switch r.kind {
	case recRelay, recGroup:
		j := bytes.IndexByte(rest, ' ')
		if j <= 0 {
			return r, false
		}
		r.b, r.text = rest[:j], rest[j+1:]
		if !protocol.ValidName(r.b) || bytes.IndexByte(r.text, '\r') >= 0 {
			return r, false
		}
		if r.kind == recGroup {
			return r, protocol.ValidGroup(r.a)
		}
		return r, protocol.ValidName(r.a)
	case recOnline, recOff, recHand:
		stamp := rest
		var more []byte
		if j := bytes.IndexByte(rest, ' '); j >= 0 {
			stamp, more = rest[:j], rest[j+1:]
		}
		n, err := strconv.ParseInt(string(stamp), 10, 64)
		if err != nil || n <= 0 || !protocol.ValidName(r.a) {
			return r, false
		}
		r.stamp, r.version = n, 1
		switch {
		case r.kind == recHand:
			j := bytes.IndexByte(more, ' ')
			if j <= 0 {
				return r, false
			}
			r.b, r.text = more[:j], more[j+1:]
			return r, validList(r.b, true) && validList(r.text, false)
		case more == nil:
			return r, true
		case r.kind == recOnline:
			v, err := strconv.Atoi(string(more))
			if err != nil || v < 1 || v > 9 {
				return r, false
			}
			r.version = v
			return r, true
		}
		return r, false
	case recJoin, recPart:
		r.b = rest
		return r, protocol.ValidGroup(r.a) && protocol.ValidName(r.b)
	}
	return r, false
}

// batchHeader parses a batch's first line, "@<node id>", and returns the
// id and the records after it.
func batchHeader(batch []byte) (id, records []byte, ok bool) {
	if len(batch) < 2 || batch[0] != '@' {
		return nil, nil, false
	}
	i := bytes.IndexByte(batch, '\n')
	if i < 0 {
		return batch[1:], nil, validID(batch[1:])
	}
	return batch[1:i], batch[i+1:], validID(batch[1:i])
}

// validID reports whether b is a node id: 16 lower-case hex digits.
func validID(b []byte) bool {
	if len(b) != idLen {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// idLen is the length of a node id.
const idLen = 16
