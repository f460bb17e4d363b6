package bench

import (
	"bytes"
	"io"
	"math"
	"net"
	"testing"

	"github.com/messager/messager/internal/protocol"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		seq, sent uint64
		size      int
		wantLen   int
	}{
		{"zero", 0, 0, MinSize, MinSize},
		{"typical", 12345, 2_000_000_000, 100, 100},
		{"large seq", 1<<32 - 1, 1<<52 - 1, MinSize, MinSize},
		{"max values grow the text", math.MaxUint64, math.MaxUint64, MinSize, 34},
		{"max size", 7, 7, MaxSize, MaxSize},
		{"size below header", 255, 255, 1, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := AppendPayload([]byte("prefix "), tt.seq, tt.sent, tt.size)[len("prefix "):]
			if len(text) != tt.wantLen {
				t.Errorf("len = %d, want %d (%q)", len(text), tt.wantLen, text)
			}
			if !protocol.ValidText(text) || bytes.IndexByte(text, ' ') >= 0 {
				t.Errorf("text %q is not plain protocol text", text)
			}
			seq, sent, err := ParsePayload(text)
			if err != nil || seq != tt.seq || sent != tt.sent {
				t.Errorf("ParsePayload(%q) = %d, %d, %v; want %d, %d", text, seq, sent, err, tt.seq, tt.sent)
			}
		})
	}
}

func TestParsePayloadRejects(t *testing.T) {
	for _, text := range []string{
		"", ".", "1", "1.", "1.2", ".1.", "1..", "g.1.", "1.G.", "A.1.",
		"11111111111111111.1.", // 17 digits
		"hello world",
	} {
		if seq, sent, err := ParsePayload([]byte(text)); err == nil {
			t.Errorf("ParsePayload(%q) = %d, %d, nil; want an error", text, seq, sent)
		}
	}
}

func FuzzPayload(f *testing.F) {
	f.Add(uint64(0), uint64(0), 24, []byte("1.2.xx"))
	f.Add(uint64(1<<40), uint64(99), 100, []byte("ffffffffffffffff.0."))
	f.Add(uint64(3), uint64(1<<63), 1, []byte("1.1"))
	f.Fuzz(func(t *testing.T, seq, sent uint64, size int, raw []byte) {
		// Any input: parsing must not panic, and what parses re-encodes
		// to a text that parses to the same numbers.
		if s, ts, err := ParsePayload(raw); err == nil {
			again := AppendPayload(nil, s, ts, 0)
			if s2, ts2, err := ParsePayload(again); err != nil || s2 != s || ts2 != ts {
				t.Fatalf("re-encoded %q as %q: %d %d %v", raw, again, s2, ts2, err)
			}
		}
		size = size % (MaxSize + 1)
		text := AppendPayload(nil, seq, sent, size)
		if size > 0 && len(text) < size {
			t.Fatalf("text %q shorter than size %d", text, size)
		}
		s, ts, err := ParsePayload(text)
		if err != nil || s != seq || ts != sent {
			t.Fatalf("round trip of %d, %d through %q gave %d, %d, %v", seq, sent, text, s, ts, err)
		}
	})
}

func BenchmarkPayload(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = AppendPayload(buf[:0], uint64(i), uint64(i)*1000, 100)
		if _, _, err := ParsePayload(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackWrite measures the floor under any relay on this
// machine: one write system call of a 120-byte line over loopback TCP,
// with a reader draining the other end. A relayed message that shares no
// read or write with others costs at least two such calls (the sender's
// read, the receiver's write) plus their wake-ups.
func BenchmarkLoopbackWrite(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	line := make([]byte, 120)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := c.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	<-done
}
