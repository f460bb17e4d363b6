// Package protocol holds the messager wire format, versions 1 and 2: line
// framing, limits, names, and the parsing and formatting of every query
// and server line. It knows nothing of networks or sessions; the server,
// the client and the load generator all build on it.
//
// Parsers return slices into the line they were given and never allocate;
// formatters append to a caller's buffer, so the relay path can build lines
// without allocating.
//
// The parsers accept every form of both versions. Which forms a session
// may use is the server's decision: a version-1 session answers a query of
// a version-2 Kind (see Kind.Version) with END * <incorrect protocol>,
// exactly as it answers an unknown word.
package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Limits of the protocol.
const (
	// DefaultPort is the port a server listens on unless told otherwise.
	DefaultPort = 18443
	// MaxLine is the longest line a client may send, terminator included.
	MaxLine = 4096
	// MaxServerLine is the longest line a server may send, terminator
	// included; clients must accept lines up to this length.
	MaxServerLine = 8192
	// MaxNameLen is the longest username.
	MaxNameLen = 32
	// MaxPasswordLen is the longest password, in bytes.
	MaxPasswordLen = 128

	// Version is the highest protocol version this package speaks.
	Version = 2
	// MaxVersion is the highest version a HELLO may name; versions are
	// whole numbers from 1 to MaxVersion, written without leading zeros.
	MaxVersion = 999
	// MaxGroupLen is the longest group name, without its '#'.
	MaxGroupLen = 32
	// MaxWatchNames is the most names one WATCH or UNWATCH line may carry.
	MaxWatchNames = 32
	// MaxWhoNames is the most names a server lists in one WHO answer; the
	// count before them may be larger.
	MaxWhoNames = 100
	// MaxInviteLen is the longest invite code, in bytes.
	MaxInviteLen = 128
	// MinSignupPassword is the shortest password a sign-up accepts, in
	// bytes; a shorter one is answered TRY <password too short>.
	MinSignupPassword = 8
	// NoticeSender is the sender of the operator's notices
	// (RELAY <user> server <text>); no user may have this name.
	NoticeSender = "server"
)

// Reasons the server gives in END lines. They are sent between angle
// brackets; ProtocolError reasons are preceded by "* ".
const (
	ReasonBadLogin          = "incorrect username or password"
	ReasonEndAccepted       = "end accepted"
	ReasonLoggedInElsewhere = "logged in elsewhere"
	ReasonTimeout           = "timeout"
	ReasonTooManyAttempts   = "too many attempts"
	ReasonTooSlow           = "too slow"
	ReasonShuttingDown      = "server shutting down"
	ReasonAccountRemoved    = "account removed"
	ReasonServerFull        = "server full"
	ReasonTooManyConns      = "too many connections"
	ReasonIncorrectProtocol = "incorrect protocol"
	ReasonLineTooLong       = "line too long"
	// ReasonNotOnline is the text of a CNT line.
	ReasonNotOnline = "user not online"

	// ReasonKicked ends a session the operator kicked.
	ReasonKicked = "kicked"
	// ReasonBanned ends a session of a banned user or address.
	ReasonBanned = "banned"
	// ReasonAlreadyOnline is how the original server refuses a second
	// login of an online user; messager replaces the old session instead,
	// but a client must know the words.
	ReasonAlreadyOnline = "user already online"
)

// Reasons of FAIL lines, the version-2 answer to a well-formed query that
// cannot be granted: FAIL <verb> <subject> <reason>.
const (
	ReasonNotEnabled    = "not enabled"     // the operator switched the feature off
	ReasonWatchListFull = "watch list full" // WATCH beyond the presence limit
	ReasonSlowDown      = "slow down"       // WHO beyond its rate
	ReasonGroupFull     = "group full"      // JOIN of a group at its member limit
	ReasonTooManyGroups = "too many groups" // JOIN by a user in the most groups allowed
	ReasonNotAllowed    = "not allowed"     // JOIN of a listed group by a user not on its list
	ReasonNoSuchGroup   = "no such group"   // JOIN of an unlisted group when only listed ones exist
	ReasonNotMember     = "not a member"    // PART or group MSG by a non-member
)

// Reasons of TRY lines, the answer to a sign-up (PUT) that failed; the
// connection stays open.
const (
	ReasonNameTaken        = "username already taken" // the original server's words
	ReasonInvalidName      = "invalid name"
	ReasonReservedName     = "reserved name"
	ReasonPasswordTooShort = "password too short"
	ReasonInviteRequired   = "invite required"
	ReasonInvalidInvite    = "invalid invite" // unknown, used up or expired
	ReasonTooManySignups   = "too many sign-ups"
)

// Errors of the framing and parsing layer. A server answers ErrLineTooLong
// with END * <line too long> and every other parse error with
// END * <incorrect protocol>.
var (
	ErrLineTooLong = errors.New("line too long")
	ErrProtocol    = errors.New("incorrect protocol")
)

// TrimLine removes the line terminator from a raw line: the final "\n",
// one "\r" before it, then any trailing spaces and tabs. A line without a
// "\n" is trimmed the same way.
func TrimLine(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	for n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t'); n = len(line) {
		line = line[:n-1]
	}
	return line
}

// ValidName reports whether b is a username: 1 to MaxNameLen characters
// from A-Z a-z 0-9 _ . -
func ValidName(b []byte) bool {
	if len(b) == 0 || len(b) > MaxNameLen {
		return false
	}
	for _, c := range b {
		if !nameByte[c] {
			return false
		}
	}
	return true
}

// ValidNameString is ValidName for a string.
func ValidNameString(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte[s[i]] {
			return false
		}
	}
	return true
}

// ValidPassword reports whether b can be sent as a password: 1 to
// MaxPasswordLen bytes of valid text with no spaces or control characters.
func ValidPassword(b []byte) bool {
	if len(b) == 0 || len(b) > MaxPasswordLen || bytes.IndexByte(b, ' ') >= 0 || bytes.IndexByte(b, '\t') >= 0 {
		return false
	}
	return ValidText(b)
}

var nameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['.'], t['-'] = true, true, true
	return t
}()

// ValidText reports whether b is valid UTF-8 without control characters
// other than TAB: no U+0000–U+001F, U+007F or U+0080–U+009F.
func ValidText(b []byte) bool {
	i := 0
	for i < len(b) {
		// Printable ASCII, sixteen then eight bytes at a time: the common
		// case, and most of the relay path's cost per byte.
		for ; i+16 <= len(b); i += 16 {
			if notPrintable(binary.LittleEndian.Uint64(b[i:]))|notPrintable(binary.LittleEndian.Uint64(b[i+8:])) != 0 {
				break
			}
		}
		for ; i+8 <= len(b); i += 8 {
			if notPrintable(binary.LittleEndian.Uint64(b[i:])) != 0 {
				break
			}
		}
		if i >= len(b) {
			break
		}
		// One character the slow way, then back to the fast loops.
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size
	}
	return true
}

// notPrintable is zero when all eight bytes of w are in 0x20–0x7e. With
// no high bit set, subtracting 0x20 from every byte borrows into a byte's
// high bit exactly when some byte is below 0x20, and adding 1 sets a high
// bit exactly when some byte is 0x7f.
func notPrintable(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return (w | (w - 0x20*ones) | (w + ones)) & highs
}
