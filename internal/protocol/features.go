package protocol

import (
	"bytes"
	"strconv"
)

// Values of the signup feature.
const (
	SignupOpen   = "open"   // PUT works without an invite
	SignupInvite = "invite" // PUT needs an invite
)

// Features are what a version-2 server offers in its HELLO line. A zero
// field is a feature not offered (the operator switched it off); numbers
// are positive.
type Features struct {
	// Presence is N of presence=N: WHO and WATCH work, and a session may
	// watch at most N names.
	Presence int
	// Groups and Members are G and M of groups=G,M: groups work, a user
	// may be in at most G groups and a group holds at most M members.
	// The feature is offered when Groups is not zero; Members must not be
	// zero then.
	Groups, Members int
	// Signup is signup=open or signup=invite (SignupOpen, SignupInvite):
	// PUT works, without or with an invite.
	Signup string
}

// appendWords appends the features offered, each after a space.
func (f Features) appendWords(dst []byte) []byte {
	if f.Presence != 0 {
		dst = append(dst, " presence="...)
		dst = strconv.AppendInt(dst, int64(f.Presence), 10)
	}
	if f.Groups != 0 {
		dst = append(dst, " groups="...)
		dst = strconv.AppendInt(dst, int64(f.Groups), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(f.Members), 10)
	}
	if f.Signup != "" {
		dst = append(dst, " signup="...)
		dst = append(dst, f.Signup...)
	}
	return dst
}

// NextFeature splits the features of a HELLO line (ServerLine.Features)
// into the first feature's name, its value (after '=', nil when it has
// none) and the rest. It returns an empty name at the end. A client walks
// the features with it to find ones this package does not know.
func NextFeature(features []byte) (name, value, rest []byte) {
	word, rest, _ := cutSpace(features)
	if i := bytes.IndexByte(word, '='); i >= 0 {
		return word[:i], word[i+1:], rest
	}
	return word, nil, rest
}

// ParseFeatures reads the features of a HELLO line (ServerLine.Features).
// Features it does not know are skipped, as the protocol asks: later
// versions add more. A known feature with a value outside the protocol,
// or listed twice, returns ErrProtocol. It never allocates.
func ParseFeatures(features []byte) (Features, error) {
	if _, ok := words(features); !ok && len(features) > 0 {
		return Features{}, ErrProtocol
	}
	var f Features
	var seen [3]bool
	for len(features) > 0 {
		name, value, rest := NextFeature(features)
		features = rest
		known := -1
		ok := true
		switch string(name) {
		case "presence":
			known = 0
			f.Presence, ok = parsePositive(value)
		case "groups":
			known = 1
			g, m, found := bytes.Cut(value, []byte(","))
			f.Groups, ok = parsePositive(g)
			if ok {
				f.Members, ok = parsePositive(m)
			}
			ok = ok && found
		case "signup":
			known = 2
			switch string(value) {
			case SignupOpen:
				f.Signup = SignupOpen
			case SignupInvite:
				f.Signup = SignupInvite
			default:
				ok = false
			}
		}
		if known >= 0 {
			if !ok || seen[known] {
				return Features{}, ErrProtocol
			}
			seen[known] = true
		}
	}
	return f, nil
}

// parsePositive parses a whole number from 1 to 999,999,999 without
// leading zeros.
func parsePositive(b []byte) (int, bool) {
	n, ok := parseCount(b)
	return n, ok && n > 0
}
