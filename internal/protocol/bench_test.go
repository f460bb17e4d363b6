package protocol

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

func BenchmarkParseQuery(b *testing.B) {
	for _, size := range []int{16, 100, 1000, 4000} {
		line := AppendMsg(nil, "bob", "alice", string(bytes.Repeat([]byte("x"), size)))
		line = TrimLine(line)
		b.Run(fmt.Sprintf("text=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseQuery(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// repeatReader serves the same bytes forever.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		line := AppendMsg(nil, "bob", "alice", string(bytes.Repeat([]byte("x"), size)))
		b.Run(fmt.Sprintf("text=%d", size), func(b *testing.B) {
			r := NewReader(io.Reader(&repeatReader{data: line}), MaxLine)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadLine(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendRelay(b *testing.B) {
	text := bytes.Repeat([]byte("x"), 100)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRelay(buf[:0], []byte("bob"), []byte("alice"), text)
	}
}

// BenchmarkParseQueryV2 measures the queries of version 2 that a busy
// session sends: a group message and a full watch list.
func BenchmarkParseQueryV2(b *testing.B) {
	for _, tt := range []struct{ name, line string }{
		{"groupmsg", string(TrimLine(AppendMsg(nil, "#ops", "alice", string(bytes.Repeat([]byte("x"), 100)))))},
		{"watch32", "WATCH " + names(32)},
	} {
		line := []byte(tt.line)
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseQuery(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseServerLine(b *testing.B) {
	line := TrimLine(AppendRelay(nil, []byte("bob"), []byte("alice"), bytes.Repeat([]byte("x"), 100)))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseServerLine(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCNTTo(b *testing.B) {
	target := []byte("bob")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCNTTo(buf[:0], target)
	}
}
