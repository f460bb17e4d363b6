package client

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape makes text from the wire safe to write to a terminal or a log.
// The server is not to be trusted, and neither is anyone it relays, so
// anything a terminal could act on, and anything that hides or reorders
// text, is shown as an escape instead of being written raw:
//   - C0 controls and DEL as \xNN (ESC is \x1b), except TAB;
//   - C1 controls (U+0080 to U+009F) as \uNNNN, so that a terminal reading
//     them as 8-bit CSI never sees them;
//   - bytes that are not UTF-8 as \xNN;
//   - the runes EscapedRune reports (invisible, line-breaking and
//     bidirectional formatting characters) as \uNNNN, so that a message
//     cannot forge, hide or reorder lines and names.
//
// Everything else, including any other Unicode text, is kept as is.
// Escape is idempotent: its output contains nothing it would escape.
//
// Every piece of server text a front end shows goes through Escape:
// message text, names, END reasons, and errors built from them (the
// errors of this package escape what they quote).
func Escape(s string) string {
	// The common case: nothing to escape, no allocation.
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if unsafeASCII(c) {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || EscapedRune(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if unsafeASCII(c) {
				b = fmt.Appendf(b, `\x%02x`, c)
			} else {
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = fmt.Appendf(b, `\x%02x`, c)
		case EscapedRune(r):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// EscapeLines is Escape for a message of several lines, such as an error
// that explains itself over more than one line: each line is escaped and
// the line breaks between them are kept.
func EscapeLines(s string) string {
	if !strings.Contains(s, "\n") {
		return Escape(s)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return strings.Join(lines, "\n")
}

func unsafeASCII(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

// EscapedRune reports the non-ASCII runes Escape shows as \uNNNN: the C1
// controls, and the formatting characters a terminal shows as nothing or
// that move other text: zero-width spaces and joiners, the byte order
// mark, line and paragraph separators, and the bidirectional marks,
// embeddings, overrides and isolates.
func EscapedRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0x061c: // Arabic letter mark
		return true
	case r >= 0x200b && r <= 0x200f: // zero-width space, (non-)joiner, direction marks
		return true
	case r >= 0x2028 && r <= 0x202e: // line and paragraph separators, embeddings and overrides
		return true
	case r >= 0x2060 && r <= 0x206f: // word joiner, invisible operators, isolates, deprecated format controls
		return true
	case r == 0xfeff: // zero-width no-break space, the byte order mark
		return true
	}
	return false
}
