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
//	O <user> <stamp>             user logged in on the sender at stamp
//	F <user> <stamp>             that session ended
//	J <#group> <user>            user, on the sender, joined the group
//	P <#group> <user>            and left it
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
	recHello  = 'H'
	recState  = 'S'
	recEnd    = 'E'
)

// record is one parsed record; its slices point into the batch.
type record struct {
	kind  byte
	a, b  []byte // target/group/user, then sender/user
	text  []byte
	stamp int64
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
	case recOnline, recOff:
		n, err := strconv.ParseInt(string(rest), 10, 64)
		if err != nil || n <= 0 || !protocol.ValidName(r.a) {
			return r, false
		}
		r.stamp = n
		return r, true
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
