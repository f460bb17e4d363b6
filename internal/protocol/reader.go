package protocol

import (
	"bytes"
	"io"
	"sync"
)

// Buffer sizes of a Reader. An idle connection holds only a small buffer;
// a busy one borrows a large buffer from a pool, so that one read can take
// a whole TLS record (16 KiB of plaintext) and many lines are handled per
// read. The large buffer goes back to the pool when reads become small.
const (
	smallBuffer = 256
	largeBuffer = 32 << 10
	// quietRead is the size under which a read counts as quiet: the large
	// buffer goes back once a read brings less. Over TLS, a read returns
	// at most one record, and the rest of a record is copied from memory,
	// so reading a quiet stream through the small buffer costs no system
	// call; a session that sent one burst (a WATCH list) and went idle
	// so does not keep 32 KiB for good.
	quietRead = 4 << 10
)

var largeBuffers = sync.Pool{New: func() any { b := make([]byte, largeBuffer); return &b }}

// Reader splits a byte stream into lines of at most a fixed length. It is
// built for a server that handles every line of one network read before
// it reads again: Fill does one read, Next hands out the complete lines.
// Memory is bounded: a Reader never holds more than one large buffer.
type Reader struct {
	src   io.Reader
	limit int
	buf   []byte
	own   []byte  // the small buffer, kept while a large one is lent
	large *[]byte // set while buf is a pooled large buffer
	start int     // first unread byte
	end   int     // end of the data read
	small bool    // the last read was small: shrink when possible
	count int64   // bytes read since TakeCount last ran
}

// TakeCount returns how many bytes the Reader has read from its source
// since it was last called. (Counting here, not in a wrapper of the
// source, keeps a waiting reader's stack one call shallower.)
func (r *Reader) TakeCount() int64 {
	n := r.count
	r.count = 0
	return n
}

// NewReader returns a Reader of src that refuses lines longer than limit
// bytes, terminator included. limit must not exceed 16 KiB.
func NewReader(src io.Reader, limit int) *Reader {
	return &Reader{src: src, limit: limit}
}

// Next returns the next complete line, untrimmed (see TrimLine), or nil
// when no complete line is buffered. The line is valid until the next call
// to Fill. It returns ErrLineTooLong when a line, complete or not, is
// longer than the limit.
func (r *Reader) Next() ([]byte, error) {
	data := r.buf[r.start:r.end]
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(data) >= r.limit {
			return nil, ErrLineTooLong
		}
		return nil, nil
	}
	if i+1 > r.limit {
		return nil, ErrLineTooLong
	}
	r.start += i + 1
	return data[:i+1], nil
}

// Buffered reports how many bytes are read but not yet handed out.
func (r *Reader) Buffered() int { return r.end - r.start }

// Fill does one read from the source into the buffer, after moving any
// partial line to the front. Lines returned by Next before are invalid
// after Fill. It returns the read's error, if any, and io.EOF at the end.
func (r *Reader) Fill() error {
	r.prepare()
	n, err := r.src.Read(r.buf[r.end:])
	r.end += n
	r.count += int64(n)
	// Through the small buffer, only a read that filled it may have left
	// more behind: grow. One that did not was all there was (over TLS, the
	// rest of its record), and the next read may wait for long: growing
	// then would have every session whose last line was a long one (a
	// WATCH list) wait holding a large buffer. Through the large one, a
	// quiet read means the burst is over: shrink.
	if r.large == nil {
		r.small = r.end < len(r.buf)
	} else {
		r.small = n < quietRead
	}
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// prepare chooses the buffer for the next read: a small one while the
// connection is quiet, a large one while it is busy or a partial line
// needs the room.
func (r *Reader) prepare() {
	pending := r.end - r.start
	switch {
	case r.buf == nil:
		r.own = make([]byte, smallBuffer)
		r.buf = r.own
	case r.large != nil && r.small && pending < smallBuffer/2:
		copy(r.own, r.buf[r.start:r.end])
		largeBuffers.Put(r.large)
		r.buf, r.large = r.own, nil
		r.start, r.end = 0, pending
		return
	case r.large == nil && (!r.small || pending > smallBuffer/2):
		lp := largeBuffers.Get().(*[]byte)
		copy(*lp, r.buf[r.start:r.end])
		r.buf, r.large = *lp, lp
		r.start, r.end = 0, pending
		return
	}
	if r.start > 0 {
		copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, pending
	}
}

// ReadLine returns the next complete line, reading as needed. It is for
// clients and tests that handle one line at a time.
func (r *Reader) ReadLine() ([]byte, error) {
	for {
		if r.buf != nil {
			line, err := r.Next()
			if line != nil || err != nil {
				return line, err
			}
		}
		if err := r.Fill(); err != nil {
			if r.buf != nil {
				if line, lerr := r.Next(); line != nil || lerr != nil {
					return line, lerr
				}
			}
			return nil, err
		}
	}
}

// Release returns a pooled buffer; the Reader must not be used after.
func (r *Reader) Release() {
	if r.large != nil {
		largeBuffers.Put(r.large)
		r.large = nil
	}
	r.buf, r.own = nil, nil
}
