package client

import (
	"bytes"
	"io"

	"github.com/messager/messager/internal/protocol"
)

// checkWord is the liveness probe's word. The original server sends it
// with no line end at all, so the next line arrives glued to it
// ("CHECKRELAY bob alice hi \r\n").
const checkWord = "CHECK"

// lineReader splits what a server sends into lines. Unlike the server's
// reader it knows the original server's CHECK: a CHECK at the start of a
// line that is not followed by a space or a line end is a line of its own,
// and what follows it starts the next line. It holds at most
// protocol.MaxServerLine bytes.
//
// Every read goes through before and after: the connection uses them to
// move the watchdog's deadline before each read and to count any bytes
// at all as a sign of life.
type lineReader struct {
	src        io.Reader
	buf        []byte
	start, end int // the unread bytes are buf[start:end]
	before     func() error
	after      func(n int)
}

func newLineReader(src io.Reader) *lineReader {
	return &lineReader{src: src, buf: make([]byte, protocol.MaxServerLine)}
}

// next returns the next line, untrimmed (see protocol.TrimLine); a CHECK
// without a line end is returned as "CHECK". The line is valid until the
// next call. A line longer than protocol.MaxServerLine is
// protocol.ErrLineTooLong; an incomplete line at the end of the stream is
// dropped and the read's error returned.
func (r *lineReader) next() ([]byte, error) {
	for {
		data := r.buf[r.start:r.end]
		if bareCheck(data) {
			r.start += len(checkWord)
			return data[:len(checkWord)], nil
		}
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			r.start += i + 1
			return data[:i+1], nil
		}
		if len(data) == len(r.buf) {
			return nil, protocol.ErrLineTooLong
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// bareCheck reports whether data, the start of a line, begins with a
// CHECK that has no line end of its own: CHECK and nothing more yet, or
// CHECK directly followed by another word. "CHECK \r\n" and "CHECK\r\n"
// are ordinary lines.
func bareCheck(data []byte) bool {
	if !bytes.HasPrefix(data, []byte(checkWord)) {
		return false
	}
	if len(data) == len(checkWord) {
		return true
	}
	switch data[len(checkWord)] {
	case ' ', '\t', '\r', '\n':
		return false
	}
	return true
}

// fill does one read after moving the unread bytes to the front.
func (r *lineReader) fill() error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.before != nil {
		if err := r.before(); err != nil {
			return err
		}
	}
	n, err := r.src.Read(r.buf[r.end:])
	r.end += n
	if n > 0 && r.after != nil {
		r.after(n)
	}
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return err
}
