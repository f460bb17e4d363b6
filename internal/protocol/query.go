package protocol

import "bytes"

// Kind names the first word of a line.
type Kind uint8

// Kinds of line. Auth, Msg and End come from clients; Accept, Relay, CNT,
// Check and End come from servers.
const (
	KindUnknown Kind = iota
	KindAuth
	KindMsg
	KindEnd
	KindAccept
	KindRelay
	KindCNT
	KindCheck
)

var kindNames = [...]string{"UNKNOWN", "AUTH", "MSG", "END", "ACCEPT", "RELAY", "CNT", "CHECK"}

// String returns the word of the kind as it appears on the wire.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "UNKNOWN"
}

// Query is a parsed client line. Its byte slices point into the line that
// was parsed and are valid only as long as that line is.
type Query struct {
	Kind Kind
	// User and Password are set for AUTH.
	User, Password []byte
	// Target, Sender and Text are set for MSG.
	Target, Sender, Text []byte
}

// ParseQuery parses one trimmed, non-empty client line (see TrimLine).
// Every form the protocol does not allow, including a bad name, an empty
// message and a control character anywhere in the line, returns
// ErrProtocol. It never allocates.
func ParseQuery(line []byte) (Query, error) {
	// MSG comes first and is parsed in one pass: each name is validated
	// as it is scanned, and only the text needs the full text check.
	if len(line) > 4 && line[0] == 'M' && line[1] == 'S' && line[2] == 'G' && line[3] == ' ' {
		target, rest, ok1 := cutName(line[4:])
		sender, text, ok2 := cutName(rest)
		if !ok1 || !ok2 || len(text) == 0 || !ValidText(text) {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindMsg, Target: target, Sender: sender, Text: text}, nil
	}
	if !ValidText(line) {
		return Query{}, ErrProtocol
	}
	word, rest, _ := cutSpace(line)
	switch string(word) {
	case "AUTH":
		user, password, ok := cutSpace(rest)
		if !ok || !ValidName(user) || !ValidPassword(password) {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindAuth, User: user, Password: password}, nil
	case "END":
		return Query{Kind: KindEnd}, nil
	}
	return Query{}, ErrProtocol
}

// cutName splits b at its first space, which must end a valid name.
func cutName(b []byte) (name, rest []byte, ok bool) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:], i > 0
		}
		if !nameByte[c] || i >= MaxNameLen {
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// cutSpace is bytes.Cut on one space, without the general search.
func cutSpace(b []byte) (before, after []byte, found bool) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// ServerLine is a parsed server line. Its byte slices point into the line
// that was parsed.
type ServerLine struct {
	Kind Kind
	// User is set for ACCEPT.
	User []byte
	// Target, Sender and Text are set for RELAY.
	Target, Sender, Text []byte
	// Reason is set for END and CNT, without its angle brackets.
	Reason []byte
	// ProtocolError is set for END * <reason>: the server says the client
	// broke the protocol.
	ProtocolError bool
}

// ParseServerLine parses one trimmed, non-empty server line. A line whose
// first word is not known returns KindUnknown and no error, because later
// versions of the protocol add lines and an old client must keep working.
// A known word with a malformed rest returns ErrProtocol. Text is not
// checked for control characters: a client escapes what it displays.
func ParseServerLine(line []byte) (ServerLine, error) {
	word, rest, _ := cutSpace(line)
	switch string(word) {
	case "RELAY":
		target, rest, ok1 := cutSpace(rest)
		sender, text, ok2 := cutSpace(rest)
		if !ok1 || !ok2 || len(target) == 0 || len(sender) == 0 || len(text) == 0 {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindRelay, Target: target, Sender: sender, Text: text}, nil
	case "ACCEPT":
		if len(rest) == 0 || bytes.IndexByte(rest, ' ') >= 0 {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindAccept, User: rest}, nil
	case "CNT":
		return ServerLine{Kind: KindCNT, Reason: unbracket(rest)}, nil
	case "CHECK":
		return ServerLine{Kind: KindCheck}, nil
	case "END":
		sl := ServerLine{Kind: KindEnd}
		if r, ok := bytes.CutPrefix(rest, []byte("* ")); ok {
			sl.ProtocolError = true
			rest = r
		} else if string(rest) == "*" {
			sl.ProtocolError = true
			rest = nil
		}
		sl.Reason = unbracket(rest)
		return sl, nil
	}
	return ServerLine{Kind: KindUnknown}, nil
}

func unbracket(b []byte) []byte {
	if len(b) >= 2 && b[0] == '<' && b[len(b)-1] == '>' {
		return b[1 : len(b)-1]
	}
	return b
}
