package protocol

import "bytes"

// ValidGroup reports whether b is a group name: '#' and 1 to MaxGroupLen
// characters from A-Z a-z 0-9 _ . -
func ValidGroup(b []byte) bool {
	if len(b) < 2 || len(b) > 1+MaxGroupLen || b[0] != '#' {
		return false
	}
	for _, c := range b[1:] {
		if !nameByte[c] {
			return false
		}
	}
	return true
}

// ValidGroupString is ValidGroup for a string.
func ValidGroupString(s string) bool {
	if len(s) < 2 || len(s) > 1+MaxGroupLen || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !nameByte[s[i]] {
			return false
		}
	}
	return true
}

// AppendGroupKey appends the key under which a group is found: its name,
// '#' included, in ASCII lower case. Group names are compared ignoring
// case, so "#Ops" and "#ops" have the same key. A map keyed by string can
// be looked up with m[string(key)] without allocating.
func AppendGroupKey(dst, group []byte) []byte {
	for _, c := range group {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// GroupKey is AppendGroupKey for a string. It allocates only when the
// name has an upper-case letter.
func GroupKey(group string) string {
	for i := 0; i < len(group); i++ {
		if c := group[i]; 'A' <= c && c <= 'Z' {
			return string(AppendGroupKey(make([]byte, 0, len(group)), []byte(group)))
		}
	}
	return group
}

// ValidMask reports whether b is the mask of a WHO query: "*" (everyone
// online), a name prefix followed by '*' ("al*"), an exact name, or a
// group ("#team": its members). The prefix is 1 to MaxNameLen name
// characters: any start of a valid name, the whole name included, so a
// client may append '*' to whatever the user typed.
func ValidMask(b []byte) bool {
	switch {
	case len(b) == 1 && b[0] == '*':
		return true
	case len(b) > 0 && b[0] == '#':
		return ValidGroup(b)
	case len(b) > 1 && b[len(b)-1] == '*':
		return ValidName(b[:len(b)-1])
	}
	return ValidName(b)
}

// MatchMask reports whether a user's name matches a valid mask that is not
// a group: "*" matches everyone, "al*" every name that starts with "al",
// and a name only itself. Names are matched exactly, case included. A
// group mask matches no name: its members are the server's to find.
func MatchMask(mask, name []byte) bool {
	switch {
	case len(mask) == 0 || mask[0] == '#':
		return false
	case mask[len(mask)-1] == '*':
		return bytes.HasPrefix(name, mask[:len(mask)-1])
	}
	return bytes.Equal(mask, name)
}

// ValidInvite reports whether b can be an invite code: 1 to MaxInviteLen
// characters of URL-safe base64 (A-Z a-z 0-9 - _), optionally followed by
// up to two '=' of padding.
func ValidInvite(b []byte) bool {
	if len(b) == 0 || len(b) > MaxInviteLen {
		return false
	}
	n := len(b)
	for pad := 0; pad < 2 && n > 0 && b[n-1] == '='; pad++ {
		n--
	}
	if n == 0 {
		return false
	}
	for _, c := range b[:n] {
		if !inviteByte[c] {
			return false
		}
	}
	return true
}

var inviteByte = func() (t [256]bool) {
	t = nameByte
	t['.'] = false
	return t
}()

// NextName splits a list of names separated by single spaces, as carried
// by WATCH, UNWATCH, PRESENCE and WHO lines, into its first name and the
// rest. It returns an empty name at the end of the list, so a caller walks
// a list without allocating:
//
//	for name, rest := NextName(q.Names); len(name) > 0; name, rest = NextName(rest) {
//		...
//	}
func NextName(names []byte) (name, rest []byte) {
	name, rest, _ = cutSpace(names)
	return name, rest
}

// parseVersion parses a protocol version: a whole number from 1 to
// MaxVersion without sign or leading zeros.
func parseVersion(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 3 || b[0] == '0' {
		return 0, false
	}
	return parseDigits(b)
}

// parseCount parses a whole number of at most nine digits without leading
// zeros ("0" itself is allowed), so it cannot overflow an int.
func parseCount(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	return parseDigits(b)
}

func parseDigits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// words checks that b is one or more non-empty words separated by single
// spaces and returns how many there are.
func words(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 1
	for i, c := range b {
		if c == ' ' {
			if i == 0 || i == len(b)-1 || b[i-1] == ' ' {
				return 0, false
			}
			n++
		}
	}
	return n, true
}
