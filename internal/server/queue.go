package server

import "sync"

// outBuf is a session's send queue: the bytes waiting to be written, in one
// contiguous buffer so the writer hands them to TLS in one call (every
// Write on a TLS connection is at least one record). Buffers come from a
// pool and go back once written, so an idle session holds none and a busy
// one allocates nothing per message.
type outBuf struct{ b []byte }

const (
	outBufSize = 16 << 10
	// outBufKeep is the largest buffer returned to the pool; larger ones,
	// grown by a burst, are left to the garbage collector.
	outBufKeep = 256 << 10
)

var outBufs = sync.Pool{New: func() any { return &outBuf{b: make([]byte, 0, outBufSize)} }}

func getOutBuf() *outBuf { return outBufs.Get().(*outBuf) }

func putOutBuf(p *outBuf) {
	if cap(p.b) > outBufKeep {
		return
	}
	p.b = p.b[:0]
	outBufs.Put(p)
}
