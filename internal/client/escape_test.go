package client

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"hello, world", "hello, world"},
		{"tab\tkept", "tab\tkept"},
		{"héllo ✓ 日本", "héllo ✓ 日本"},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"fake\r\nalice: hi", `fake\x0d\x0aalice: hi`},
		{"bell\x07 del\x7f nul\x00", `bell\x07 del\x7f nul\x00`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"osc\u009d0;title\u009c", `osc\u009d0;title\u009c`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"truncated \xe2\x82", `truncated \xe2\x82`},
		{"rlo \u202eevil", `rlo \u202eevil`},
		{"isolate \u2066x\u2069", `isolate \u2066x\u2069`},
		{"line\u2028sep", `line\u2028sep`},
		{"para\u2029sep", `para\u2029sep`},
		{`already \x1b`, `already \x1b`},
		// Invisible characters: a name or a line that looks like another.
		{"bo\u200bb", `bo\u200bb`},
		{"zwnj\u200c zwj\u200d lrm\u200e rlm\u200f", `zwnj\u200c zwj\u200d lrm\u200e rlm\u200f`},
		{"\ufeffbom", `\ufeffbom`},
		{"wj\u2060 fa\u2061 it\u2062 is\u2063 ip\u2064", `wj\u2060 fa\u2061 it\u2062 is\u2063 ip\u2064`},
		{"lre\u202a rle\u202b pdf\u202c lro\u202d", `lre\u202a rle\u202b pdf\u202c lro\u202d`},
		{"lri\u2066 rli\u2067 fsi\u2068 pdi\u2069", `lri\u2066 rli\u2067 fsi\u2068 pdi\u2069`},
		{"alm\u061c", `alm\u061c`},
		// Neighbours of the escaped ranges stay as they are.
		{"\u200a\u2010\u2027\u202f\u205f\u2070\ufefe\u061b", "\u200a\u2010\u2027\u202f\u205f\u2070\ufefe\u061b"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapeLines(t *testing.T) {
	in := "first \x1b]0;title\x07\nsecond\r\n\u202ethird"
	want := `first \x1b]0;title\x07` + "\n" + `second\x0d` + "\n" + `\u202ethird`
	if got := EscapeLines(in); got != want {
		t.Errorf("EscapeLines(%q) = %q, want %q", in, got, want)
	}
}

// Safe reports whether s can be written to a terminal: valid UTF-8 with no
// control character other than TAB and none of the runes Escape escapes.
func safe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t') || r == 0x7f || EscapedRune(r) {
			return false
		}
	}
	return true
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2J plain \u009b \xff \u202e")
	f.Add("tab\there")
	f.Add("日本語 \r\n \u200b\ufeff")
	f.Fuzz(func(t *testing.T, in string) {
		out := Escape(in)
		if !safe(out) {
			t.Fatalf("Escape(%q) = %q is not safe to display", in, out)
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", in)
		}
		if safe(in) && out != in {
			t.Fatalf("Escape changed safe text %q to %q", in, out)
		}
	})
}
