package protocol

import "strconv"

// Server lines have the exact seed shape: the words, a space, then CRLF.
// Client lines end in a plain CRLF.

const serverEnd = " \r\n"

// AppendAccept appends "ACCEPT <user> \r\n".
func AppendAccept(dst []byte, user string) []byte {
	dst = append(dst, "ACCEPT "...)
	dst = append(dst, user...)
	return append(dst, serverEnd...)
}

// AppendRelay appends "RELAY <target> <sender> <text> \r\n". The target
// may be a group, '#' included.
func AppendRelay(dst, target, sender, text []byte) []byte {
	dst = append(dst, "RELAY "...)
	dst = append(dst, target...)
	dst = append(dst, ' ')
	dst = append(dst, sender...)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	return append(dst, serverEnd...)
}

// RelayLen is the length of the RELAY line AppendRelay would append.
func RelayLen(target, sender, text []byte) int {
	return len("RELAY ") + len(target) + 1 + len(sender) + 1 + len(text) + len(serverEnd)
}

// AppendCNT appends "CNT <user not online> \r\n".
func AppendCNT(dst []byte) []byte {
	return append(dst, "CNT <"+ReasonNotOnline+">"+serverEnd...)
}

// AppendCNTTo appends the named not-online answer of version 2,
// "CNT <target> <user not online> \r\n".
func AppendCNTTo(dst, target []byte) []byte {
	dst = append(dst, "CNT "...)
	dst = append(dst, target...)
	return append(dst, " <"+ReasonNotOnline+">"+serverEnd...)
}

// AppendCheck appends "CHECK \r\n".
func AppendCheck(dst []byte) []byte {
	return append(dst, "CHECK"+serverEnd...)
}

// AppendEnd appends "END <reason> \r\n", or "END * <reason> \r\n" when the
// client broke the protocol.
func AppendEnd(dst []byte, reason string, protocolError bool) []byte {
	dst = append(dst, "END "...)
	if protocolError {
		dst = append(dst, "* "...)
	}
	dst = append(dst, '<')
	dst = append(dst, reason...)
	dst = append(dst, '>')
	return append(dst, serverEnd...)
}

// AppendHello appends the server's answer to HELLO,
// "HELLO <version> <feature> ... \r\n", listing the features offered.
// A version-1 answer has none: "HELLO 1 \r\n".
func AppendHello(dst []byte, version int, f Features) []byte {
	dst = append(dst, "HELLO "...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	dst = f.appendWords(dst)
	return append(dst, serverEnd...)
}

// AppendFail appends "FAIL <verb> <subject> <reason> \r\n": a query with
// the word verb (a Kind's String) about subject (a name, mask or group)
// was well-formed but cannot be granted. reason is one of the FAIL
// reasons, ReasonNotEnabled to ReasonNotMember.
func AppendFail(dst []byte, verb, subject, reason string) []byte {
	dst = append(dst, "FAIL "...)
	dst = append(dst, verb...)
	dst = append(dst, ' ')
	dst = append(dst, subject...)
	dst = append(dst, " <"...)
	dst = append(dst, reason...)
	dst = append(dst, '>')
	return append(dst, serverEnd...)
}

// AppendPresence appends "PRESENCE on <name> ... \r\n", or
// "PRESENCE off ..." when on is false. names must not be empty.
func AppendPresence(dst []byte, on bool, names []string) []byte {
	if on {
		dst = append(dst, "PRESENCE on"...)
	} else {
		dst = append(dst, "PRESENCE off"...)
	}
	dst = appendNames(dst, names)
	return append(dst, serverEnd...)
}

// AppendWho appends the answer to WHO, "WHO <mask> <count> <name> ... \r\n":
// count matches of mask, of which names are listed. The caller sorts the
// names and lists at most MaxWhoNames of them.
func AppendWho(dst []byte, mask string, count int, names []string) []byte {
	dst = append(dst, "WHO "...)
	dst = append(dst, mask...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(count), 10)
	dst = appendNames(dst, names)
	return append(dst, serverEnd...)
}

// AppendJoin appends "JOIN <group> <user> \r\n"; group has its '#'.
func AppendJoin(dst []byte, group, user string) []byte {
	return appendGroupLine(dst, "JOIN ", group, user)
}

// AppendPart appends "PART <group> <user> \r\n"; group has its '#'.
func AppendPart(dst []byte, group, user string) []byte {
	return appendGroupLine(dst, "PART ", group, user)
}

func appendGroupLine(dst []byte, word, group, user string) []byte {
	dst = append(dst, word...)
	dst = append(dst, group...)
	dst = append(dst, ' ')
	dst = append(dst, user...)
	return append(dst, serverEnd...)
}

// AppendTry appends "TRY <reason> \r\n", the answer to a sign-up that
// failed; reason is one of ReasonNameTaken to ReasonTooManySignups.
func AppendTry(dst []byte, reason string) []byte {
	dst = append(dst, "TRY <"...)
	dst = append(dst, reason...)
	dst = append(dst, '>')
	return append(dst, serverEnd...)
}

// appendNames appends each name after a space.
func appendNames(dst []byte, names []string) []byte {
	for _, name := range names {
		dst = append(dst, ' ')
		dst = append(dst, name...)
	}
	return dst
}

// AppendAuth appends the client query "AUTH <user> <password>\r\n".
func AppendAuth(dst []byte, user, password string) []byte {
	dst = append(dst, "AUTH "...)
	dst = append(dst, user...)
	dst = append(dst, ' ')
	dst = append(dst, password...)
	return append(dst, "\r\n"...)
}

// AppendMsg appends the client query "MSG <target> <sender> <text>\r\n".
// The target may be a group, '#' included.
func AppendMsg(dst []byte, target, sender, text string) []byte {
	dst = append(dst, "MSG "...)
	dst = append(dst, target...)
	dst = append(dst, ' ')
	dst = append(dst, sender...)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	return append(dst, "\r\n"...)
}

// MsgLen is the length of the line AppendMsg would append; a client refuses
// to send a message whose line would exceed MaxLine.
func MsgLen(target, sender, text string) int {
	return len("MSG ") + len(target) + 1 + len(sender) + 1 + len(text) + len("\r\n")
}

// AppendEndQuery appends the client query "END\r\n".
func AppendEndQuery(dst []byte) []byte {
	return append(dst, "END\r\n"...)
}

// AppendHelloQuery appends the client query "HELLO <version>\r\n".
func AppendHelloQuery(dst []byte, version int) []byte {
	dst = append(dst, "HELLO "...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	return append(dst, "\r\n"...)
}

// AppendWhoQuery appends the client query "WHO <mask>\r\n".
func AppendWhoQuery(dst []byte, mask string) []byte {
	dst = append(dst, "WHO "...)
	dst = append(dst, mask...)
	return append(dst, "\r\n"...)
}

// AppendWatch appends the client query "WATCH <name> ...\r\n"; names
// holds 1 to MaxWatchNames names.
func AppendWatch(dst []byte, names []string) []byte {
	dst = append(dst, "WATCH"...)
	dst = appendNames(dst, names)
	return append(dst, "\r\n"...)
}

// AppendUnwatch appends the client query "UNWATCH <name> ...\r\n"; names
// holds 1 to MaxWatchNames names, or only "*" to watch nobody.
func AppendUnwatch(dst []byte, names []string) []byte {
	dst = append(dst, "UNWATCH"...)
	dst = appendNames(dst, names)
	return append(dst, "\r\n"...)
}

// AppendJoinQuery appends the client query "JOIN <group>\r\n"; group has
// its '#'.
func AppendJoinQuery(dst []byte, group string) []byte {
	dst = append(dst, "JOIN "...)
	dst = append(dst, group...)
	return append(dst, "\r\n"...)
}

// AppendPartQuery appends the client query "PART <group>\r\n"; group has
// its '#'.
func AppendPartQuery(dst []byte, group string) []byte {
	dst = append(dst, "PART "...)
	dst = append(dst, group...)
	return append(dst, "\r\n"...)
}

// AppendPut appends the sign-up query "PUT <user> <password>\r\n", or
// "PUT <user> <password> <invite>\r\n" when invite is not empty.
func AppendPut(dst []byte, user, password, invite string) []byte {
	dst = append(dst, "PUT "...)
	dst = append(dst, user...)
	dst = append(dst, ' ')
	dst = append(dst, password...)
	if invite != "" {
		dst = append(dst, ' ')
		dst = append(dst, invite...)
	}
	return append(dst, "\r\n"...)
}
