package protocol

import "bytes"

// The parsers of version 1, kept as they were before version 2 was added.
// The fuzz targets check that the current parsers still agree with them on
// every line version 1 knows, so a version-1 session sees no change.

func parseQueryV1(line []byte) (Query, error) {
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

func parseServerLineV1(line []byte) (ServerLine, error) {
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

// sameQuery reports whether two queries have the same fields; a nil and
// an empty slice are the same.
func sameQuery(a, b Query) bool {
	return a.Kind == b.Kind && bytes.Equal(a.User, b.User) && bytes.Equal(a.Password, b.Password) &&
		bytes.Equal(a.Target, b.Target) && bytes.Equal(a.Sender, b.Sender) && bytes.Equal(a.Text, b.Text) &&
		a.Version == b.Version && bytes.Equal(a.Mask, b.Mask) && bytes.Equal(a.Names, b.Names) &&
		a.NameCount == b.NameCount && a.All == b.All && bytes.Equal(a.Group, b.Group) && bytes.Equal(a.Invite, b.Invite)
}

// sameServerLine is sameQuery for server lines.
func sameServerLine(a, b ServerLine) bool {
	return a.Kind == b.Kind && bytes.Equal(a.User, b.User) && bytes.Equal(a.Target, b.Target) &&
		bytes.Equal(a.Sender, b.Sender) && bytes.Equal(a.Text, b.Text) && bytes.Equal(a.Reason, b.Reason) &&
		a.ProtocolError == b.ProtocolError && a.Version == b.Version && bytes.Equal(a.Features, b.Features) &&
		bytes.Equal(a.Verb, b.Verb) && bytes.Equal(a.Subject, b.Subject) && a.On == b.On &&
		bytes.Equal(a.Mask, b.Mask) && a.Count == b.Count && bytes.Equal(a.Names, b.Names) && bytes.Equal(a.Group, b.Group)
}
