package protocol

// Server lines have the exact seed shape: the words, a space, then CRLF.
// Client lines end in a plain CRLF.

const serverEnd = " \r\n"

// AppendAccept appends "ACCEPT <user> \r\n".
func AppendAccept(dst []byte, user string) []byte {
	dst = append(dst, "ACCEPT "...)
	dst = append(dst, user...)
	return append(dst, serverEnd...)
}

// AppendRelay appends "RELAY <target> <sender> <text> \r\n".
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

// AppendAuth appends the client query "AUTH <user> <password>\r\n".
func AppendAuth(dst []byte, user, password string) []byte {
	dst = append(dst, "AUTH "...)
	dst = append(dst, user...)
	dst = append(dst, ' ')
	dst = append(dst, password...)
	return append(dst, "\r\n"...)
}

// AppendMsg appends the client query "MSG <target> <sender> <text>\r\n".
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
