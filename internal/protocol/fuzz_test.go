package protocol

import (
	"bytes"
	"io"
	"testing"
	"unicode/utf8"
)

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"AUTH alice pw", "MSG bob alice hello there", "END", "END bye", "MSG bob alice \t", "AUTH a b c",
		"MSG bob alice hi\x1b[2J", "MSG b\xffb alice x", "RELAY a b c", "", " ", "MSG  a b c",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// The server parses lines that the Reader split and TrimLine
		// trimmed.
		line = TrimLine(line)
		q, err := ParseQuery(line)
		if err != nil {
			return
		}
		if !ValidText(line) {
			t.Fatalf("accepted invalid text %q", line)
		}
		// Round trip: formatting a parsed query gives back the line.
		var got []byte
		switch q.Kind {
		case KindAuth:
			got = TrimLine(AppendAuth(nil, string(q.User), string(q.Password)))
		case KindMsg:
			got = TrimLine(AppendMsg(nil, string(q.Target), string(q.Sender), string(q.Text)))
			relay := AppendRelay(nil, q.Target, q.Sender, q.Text)
			if len(relay) != RelayLen(q.Target, q.Sender, q.Text) {
				t.Fatalf("RelayLen wrong for %q", line)
			}
			sl, err := ParseServerLine(TrimLine(relay))
			if err != nil || sl.Kind != KindRelay || !bytes.Equal(sl.Target, q.Target) || !bytes.Equal(sl.Sender, q.Sender) {
				t.Fatalf("relay of %q does not parse back: %+v %v", line, sl, err)
			}
			if !bytes.Equal(sl.Text, TrimLine(q.Text)) {
				t.Fatalf("relay text %q, want %q", sl.Text, TrimLine(q.Text))
			}
		case KindEnd:
			return
		default:
			t.Fatalf("unexpected kind %v", q.Kind)
		}
		if !bytes.Equal(got, TrimLine(line)) {
			t.Fatalf("round trip %q -> %q", line, got)
		}
	})
}

func FuzzParseServerLine(f *testing.F) {
	for _, s := range []string{"ACCEPT alice", "RELAY bob alice hi", "CNT <user not online>", "CHECK", "END * <line too long>", "END *", "NEW thing"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		_, _ = ParseServerLine(line)
	})
}

// FuzzReader splits the input across two reads, as a network delivers it,
// and checks the lines are the same as from one read, no line is over the
// limit, and the buffer never grows past its bound.
func FuzzReader(f *testing.F) {
	f.Add([]byte("AUTH alice pw\r\nMSG bob alice hi\n"), uint16(5))
	f.Add([]byte("a\nb\nc"), uint16(1))
	f.Add(bytes.Repeat([]byte("x"), 5000), uint16(4095))
	f.Add([]byte("\n\n\n"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		const limit = 64
		whole := collect(NewReader(bytes.NewReader(data), limit), limit, t)
		at := int(cut) % (len(data) + 1)
		split := collect(NewReader(io.MultiReader(bytes.NewReader(data[:at]), bytes.NewReader(data[at:])), limit), limit, t)
		if whole != split {
			t.Fatalf("split at %d changed the lines:\n%q\n%q", at, whole, split)
		}
	})
}

func collect(r *Reader, limit int, t *testing.T) string {
	var out bytes.Buffer
	for {
		line, err := r.ReadLine()
		if len(r.buf) > largeBuffer {
			t.Fatalf("buffer grew to %d", len(r.buf))
		}
		if err == ErrLineTooLong {
			out.WriteString("<too long>")
			return out.String()
		}
		if err != nil {
			return out.String()
		}
		if len(line) > limit {
			t.Fatalf("line of %d bytes over limit %d", len(line), limit)
		}
		out.Write(line)
		out.WriteByte('|')
	}
}

// FuzzValidText compares ValidText with a plain rune-by-rune check.
func FuzzValidText(f *testing.F) {
	f.Add([]byte("hello, world\tand more text"))
	f.Add([]byte("héllo\u0085 \x1b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := utf8.Valid(b)
		for _, r := range string(b) {
			if (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) {
				want = false
			}
		}
		if got := ValidText(b); got != want {
			t.Fatalf("ValidText(%q) = %v, want %v", b, got, want)
		}
	})
}
