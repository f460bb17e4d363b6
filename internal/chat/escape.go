package chat

import (
	"fmt"
	"unicode/utf8"
)

// Escape makes text from the wire safe to write to a terminal. The server
// is not to be trusted, so anything a terminal could act on is shown as an
// escape instead of being written raw:
//   - C0 controls and DEL as \xNN (ESC is \x1b), except TAB;
//   - C1 controls (U+0080 to U+009F) as \uNNNN, so that a terminal reading
//     them as 8-bit CSI never sees them;
//   - bytes that are not UTF-8 as \xNN;
//   - line and paragraph separators and bidirectional overrides as \uNNNN,
//     so that a message cannot forge or reorder lines.
//
// Everything else, including any other Unicode text, is kept as is.
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
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
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
		case unsafeRune(r):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

func unsafeASCII(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

// unsafeRune reports the non-ASCII runes Escape shows escaped.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e: // bidirectional embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // bidirectional isolates
		return true
	case r == 0x200e || r == 0x200f || r == 0x061c: // direction marks
		return true
	}
	return false
}

// appendJSONString appends s as a JSON string. Like Escape it leaves no
// control character raw, not even those encoding/json lets through (DEL
// and C1), so JSON output is safe on a terminal too. Bytes that are not
// UTF-8 become U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c < 0x20 || c == 0x7f:
				b = fmt.Appendf(b, `\u%04x`, c)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case unsafeRune(r):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
