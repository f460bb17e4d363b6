package server

import "sync"

// outBuf is a session's send queue: the bytes waiting to be written, in one
// contiguous buffer so the writer hands them to TLS in one call (every
// Write on a TLS connection is at least one record). Buffers come from
// pools and go back once written, so an idle session holds none and a busy
// one allocates nothing per message. A queue starts in a small buffer, as
// most are one short line (a CHECK to an idle session, a CNT, a chat
// message), and moves to a large one when it fills: a CHECK round over
// many thousand sessions then borrows kilobytes, not a large buffer each.
type outBuf struct{ b []byte }

const (
	smallOutBuf = 512
	largeOutBuf = 16 << 10
	// outBufKeep is the largest buffer returned to a pool; larger ones,
	// grown by a burst, are left to the garbage collector.
	outBufKeep = 256 << 10
	// shortLine bounds the server lines other than RELAY (ACCEPT, CNT,
	// CHECK, END), which are at most a few dozen bytes.
	shortLine = 128
)

var (
	smallOutBufs = sync.Pool{New: func() any { return &outBuf{b: make([]byte, 0, smallOutBuf)} }}
	largeOutBufs = sync.Pool{New: func() any { return &outBuf{b: make([]byte, 0, largeOutBuf)} }}
)

// reserve returns q, or a new queue when q is nil, with room for n more
// bytes: a small buffer is swapped for a large one when n does not fit.
// Past the large size, append grows the buffer as usual. busy starts a
// new queue in a large buffer: the session's last queue needed one.
func reserve(q *outBuf, n int, busy bool) *outBuf {
	if q == nil {
		if n <= smallOutBuf && !busy {
			return smallOutBufs.Get().(*outBuf)
		}
		return largeOutBufs.Get().(*outBuf)
	}
	if len(q.b)+n <= cap(q.b) || cap(q.b) >= largeOutBuf {
		return q
	}
	large := largeOutBufs.Get().(*outBuf)
	large.b = append(large.b, q.b...)
	putOutBuf(q)
	return large
}

// putOutBuf returns a written queue's buffer to its pool.
func putOutBuf(q *outBuf) {
	q.b = q.b[:0]
	switch c := cap(q.b); {
	case c > outBufKeep:
	case c >= largeOutBuf:
		largeOutBufs.Put(q)
	case c == smallOutBuf:
		smallOutBufs.Put(q)
	}
}
