package protocol

import "bytes"

// Kind names the first word of a line.
type Kind uint8

// Kinds of line. Auth, Msg and End come from clients; Accept, Relay, CNT,
// Check and End come from servers. Version 2 adds the client queries
// Hello, Who, Watch, Unwatch, Join, Part, GroupMsg and Put, and the server
// lines Hello, Fail, Presence, Who, Join, Part and Try (HELLO, WHO, JOIN
// and PART are words of both sides).
const (
	KindUnknown Kind = iota
	KindAuth
	KindMsg
	KindEnd
	KindAccept
	KindRelay
	KindCNT
	KindCheck
	KindHello
	KindWho
	KindWatch
	KindUnwatch
	KindJoin
	KindPart
	// KindGroupMsg is a MSG whose target is a group (MSG #<group> ...).
	// It has a Kind of its own so that a version-1 session, which knows no
	// groups, refuses it like any other version-2 query.
	KindGroupMsg
	KindPut
	KindFail
	KindPresence
	KindTry
)

var kindNames = [...]string{
	"UNKNOWN", "AUTH", "MSG", "END", "ACCEPT", "RELAY", "CNT", "CHECK",
	"HELLO", "WHO", "WATCH", "UNWATCH", "JOIN", "PART", "MSG", "PUT", "FAIL", "PRESENCE", "TRY",
}

// String returns the word of the kind as it appears on the wire; for
// KindGroupMsg that is "MSG", the verb of its FAIL lines.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "UNKNOWN"
}

// Version returns the protocol version that introduced the kind: 1 for the
// lines of version 1, 2 for those of version 2, and 0 for KindUnknown.
// A server refuses a query whose Kind is newer than its session's version.
func (k Kind) Version() int {
	switch {
	case k == KindUnknown || int(k) >= len(kindNames):
		return 0
	case k < KindHello:
		return 1
	}
	return 2
}

// ClientKinds returns every kind ParseQuery can return, in order, so a
// server can check that each has a handler.
func ClientKinds() []Kind {
	return []Kind{KindAuth, KindMsg, KindEnd, KindHello, KindWho, KindWatch, KindUnwatch, KindJoin, KindPart, KindGroupMsg, KindPut}
}

// ServerKinds returns every kind ParseServerLine can return apart from
// KindUnknown, in order, so a client can check that each has a handler.
func ServerKinds() []Kind {
	return []Kind{KindAccept, KindRelay, KindCNT, KindCheck, KindEnd, KindHello, KindFail, KindPresence, KindWho, KindJoin, KindPart, KindTry}
}

// Query is a parsed client line. Its byte slices point into the line that
// was parsed and are valid only as long as that line is.
type Query struct {
	Kind Kind
	// User and Password are set for AUTH and PUT. The User of a PUT is
	// any word: the server checks it against the name rules and answers
	// TRY <invalid name>.
	User, Password []byte
	// Target, Sender and Text are set for MSG and group MSG; the Target
	// of a group MSG is the group with its '#'.
	Target, Sender, Text []byte

	// Version is set for HELLO: 1 to MaxVersion.
	Version int
	// Mask is set for WHO; see ValidMask.
	Mask []byte
	// Names is set for WATCH and UNWATCH: 1 to MaxWatchNames valid names
	// separated by single spaces, NameCount of them. Walk them with
	// NextName. All is set instead for UNWATCH *.
	Names     []byte
	NameCount int
	All       bool
	// Group is set for JOIN and PART: the group with its '#'.
	Group []byte
	// Invite is set for a PUT with an invite; see ValidInvite.
	Invite []byte
}

// ParseMsg parses a trimmed line as a MSG to a user, the relay's hot
// path, without the whole Query. ok is false for anything else (a group
// MSG, another query, a malformed line): ParseQuery then says what it is.
func ParseMsg(line []byte) (target, sender, text []byte, ok bool) {
	if len(line) <= 4 || line[0] != 'M' || line[1] != 'S' || line[2] != 'G' || line[3] != ' ' {
		return nil, nil, nil, false
	}
	target, rest, ok1 := cutName(line[4:])
	sender, text, ok2 := cutName(rest)
	if !ok1 || !ok2 || len(text) == 0 || !ValidText(text) {
		return nil, nil, nil, false
	}
	return target, sender, text, true
}

// ParseQuery parses one trimmed, non-empty client line (see TrimLine) of
// either version. Every form the protocol does not allow, including a bad
// name, an empty message and a control character anywhere in the line,
// returns ErrProtocol. It never allocates.
func ParseQuery(line []byte) (Query, error) {
	// MSG comes first and is parsed in one pass: each name is validated
	// as it is scanned, and only the text needs the full text check.
	if len(line) > 4 && line[0] == 'M' && line[1] == 'S' && line[2] == 'G' && line[3] == ' ' {
		target, rest, ok1 := cutName(line[4:])
		sender, text, ok2 := cutName(rest)
		if !ok1 || !ok2 || len(text) == 0 || !ValidText(text) {
			// A group target fails the name check at its '#', before any
			// cost: version 1 pays nothing for groups.
			if line[4] == '#' {
				target, rest, ok1 = cutGroup(line[4:])
				sender, text, ok2 = cutName(rest)
				if ok1 && ok2 && len(text) > 0 && ValidText(text) {
					return Query{Kind: KindGroupMsg, Target: target, Sender: sender, Text: text}, nil
				}
			}
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
	case "HELLO":
		v, ok := parseVersion(rest)
		if !ok {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindHello, Version: v}, nil
	case "WHO":
		if !ValidMask(rest) {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindWho, Mask: rest}, nil
	case "WATCH":
		n, ok := nameList(rest)
		if !ok {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindWatch, Names: rest, NameCount: n}, nil
	case "UNWATCH":
		if len(rest) == 1 && rest[0] == '*' {
			return Query{Kind: KindUnwatch, All: true}, nil
		}
		n, ok := nameList(rest)
		if !ok {
			return Query{}, ErrProtocol
		}
		return Query{Kind: KindUnwatch, Names: rest, NameCount: n}, nil
	case "JOIN", "PART":
		if !ValidGroup(rest) {
			return Query{}, ErrProtocol
		}
		k := KindJoin
		if word[0] == 'P' {
			k = KindPart
		}
		return Query{Kind: k, Group: rest}, nil
	case "PUT":
		return parsePut(rest)
	}
	return Query{}, ErrProtocol
}

// parsePut parses the rest of PUT <user> <password> [<invite>]. The line
// is valid text already.
func parsePut(b []byte) (Query, error) {
	user, rest, ok := cutSpace(b)
	if !ok || len(user) == 0 || bytes.IndexByte(user, '\t') >= 0 {
		return Query{}, ErrProtocol
	}
	password, invite, hasInvite := cutSpace(rest)
	if !ValidPassword(password) || (hasInvite && !ValidInvite(invite)) {
		return Query{}, ErrProtocol
	}
	return Query{Kind: KindPut, User: user, Password: password, Invite: invite}, nil
}

// nameList checks a WATCH or UNWATCH list: 1 to MaxWatchNames valid names
// separated by single spaces. It returns how many there are.
func nameList(b []byte) (int, bool) {
	n := 0
	for len(b) > 0 {
		if n == MaxWatchNames {
			return 0, false
		}
		name, rest, more := cutSpace(b)
		if !ValidName(name) || (more && len(rest) == 0) {
			return 0, false
		}
		n++
		b = rest
	}
	return n, n > 0
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

// cutGroup splits b at its first space, which must end a valid group.
func cutGroup(b []byte) (group, rest []byte, ok bool) {
	for i := 1; i < len(b); i++ {
		c := b[i]
		if c == ' ' {
			return b[:i], b[i+1:], i > 1 && b[0] == '#'
		}
		if !nameByte[c] || i > MaxGroupLen {
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
	// User is set for ACCEPT, JOIN and PART.
	User []byte
	// Target, Sender and Text are set for RELAY; the Target of a group
	// message is the group with its '#'. Target is also set for the named
	// CNT of version 2 (CNT <target> <user not online>); a version-1 CNT
	// has none.
	Target, Sender, Text []byte
	// Reason is set for END, CNT, FAIL and TRY, without its angle
	// brackets.
	Reason []byte
	// ProtocolError is set for END * <reason>: the server says the client
	// broke the protocol.
	ProtocolError bool

	// Version and Features are set for HELLO: the version the server
	// chose, and its features as words separated by single spaces (see
	// ParseFeatures and NextFeature), possibly none.
	Version  int
	Features []byte
	// Verb and Subject are set for FAIL: the refused query's word and the
	// name, mask or group it was about.
	Verb, Subject []byte
	// On and Names are set for PRESENCE: the state of the names, one or
	// more words separated by single spaces (see NextName).
	On bool
	// Mask, Count and Names are set for WHO: Count matches of Mask, of
	// which the Names listed (sorted, at most MaxWhoNames, possibly none).
	Mask  []byte
	Count int
	Names []byte
	// Group is set for JOIN and PART, with its '#'; User is who joined or
	// left.
	Group []byte
}

// ParseServerLine parses one trimmed, non-empty server line. A line whose
// first word is not known returns KindUnknown and no error, because later
// versions of the protocol add lines and an old client must keep working.
// A known word with a malformed rest returns ErrProtocol. Text is not
// checked for control characters and names are only checked to be
// non-empty words: a client escapes what it displays.
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
		// CNT <user not online> in version 1, CNT <target> <user not
		// online> in version 2: a first word outside angle brackets,
		// followed by more, is the target. Like END, CNT is never
		// malformed: anything else is all reason.
		if target, reason, ok := cutSpace(rest); ok && len(target) > 0 && target[0] != '<' {
			return ServerLine{Kind: KindCNT, Target: target, Reason: unbracket(reason)}, nil
		}
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
	case "HELLO":
		version, features, _ := cutSpace(rest)
		v, ok := parseVersion(version)
		if !ok {
			return ServerLine{}, ErrProtocol
		}
		if _, ok := words(features); !ok && features != nil {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindHello, Version: v, Features: features}, nil
	case "FAIL":
		verb, rest, ok1 := cutSpace(rest)
		subject, reason, ok2 := cutSpace(rest)
		if !ok1 || !ok2 || len(verb) == 0 || len(subject) == 0 || !bracketed(reason) {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindFail, Verb: verb, Subject: subject, Reason: reason[1 : len(reason)-1]}, nil
	case "PRESENCE":
		state, names, _ := cutSpace(rest)
		on := string(state) == "on"
		if !on && string(state) != "off" {
			return ServerLine{}, ErrProtocol
		}
		if _, ok := words(names); !ok {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindPresence, On: on, Names: names}, nil
	case "WHO":
		mask, rest, ok1 := cutSpace(rest)
		count, names, ok2 := cutSpace(rest)
		n, ok3 := parseCount(count)
		if !ok1 || len(mask) == 0 || !ok3 {
			return ServerLine{}, ErrProtocol
		}
		if ok2 {
			listed, ok := words(names)
			if !ok || listed > n {
				return ServerLine{}, ErrProtocol
			}
		}
		return ServerLine{Kind: KindWho, Mask: mask, Count: n, Names: names}, nil
	case "JOIN", "PART":
		group, user, ok := cutSpace(rest)
		if !ok || len(group) < 2 || group[0] != '#' || len(user) == 0 || bytes.IndexByte(user, ' ') >= 0 {
			return ServerLine{}, ErrProtocol
		}
		k := KindJoin
		if word[0] == 'P' {
			k = KindPart
		}
		return ServerLine{Kind: k, Group: group, User: user}, nil
	case "TRY":
		if len(rest) == 0 {
			return ServerLine{}, ErrProtocol
		}
		return ServerLine{Kind: KindTry, Reason: unbracket(rest)}, nil
	}
	return ServerLine{Kind: KindUnknown}, nil
}

// bracketed reports whether b is a reason in angle brackets.
func bracketed(b []byte) bool {
	return len(b) >= 2 && b[0] == '<' && b[len(b)-1] == '>'
}

func unbracket(b []byte) []byte {
	if bracketed(b) {
		return b[1 : len(b)-1]
	}
	return b
}
