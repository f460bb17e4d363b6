package server

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/messager/messager/internal/protocol"
)

// sendQueue is a session's queue of bytes waiting to be written and the
// state of the writer that drains it.
//
// Lock order: mu is the innermost lock of the server. A goroutine holds at
// most one sendQueue's mu at a time (a reader keeps its current target's
// across a run of messages, and lets go before it touches anything else),
// and takes no other lock while holding it: the registry, group and
// presence locks are always taken first, or after mu is let go.
type sendQueue struct {
	bound int // the most bytes queued; over it the session is too slow

	// closed mirrors closing, for reads without the lock.
	closed atomic.Bool

	mu  sync.Mutex // guards the fields below
	out *outBuf    // nil while nothing is queued
	// shared, when set, is all that is queued: a run of group messages
	// that other members' queues hold too (out is then nil). Anything
	// queued after it copies it into out first.
	shared   *sharedRun
	writing  bool // a writer goroutine is running
	finished bool // the writer closed the connection
	closing  bool // no more lines; the writer ends the connection after the END
	busy     bool // the last queue outgrew a small buffer: start large
	reason   closeReason
	drained  *sync.Cond // made on first use: a reader waits on its own writer
	dropped  int64      // messages lost with the queue, not yet counted
}

// The append methods below queue a line; mu is held. Each reports
// whether the line was queued and what the caller must do once it lets go
// of the lock:
//   - wake: the line went into an empty queue with no writer running, so
//     the writer must be woken, once the sender's read is handled;
//   - urgent: the queue passed a share of its bound with no writer
//     running, so the writer must be woken now, or a fast sender fills a
//     small bound within one read while the receiver waits to be woken;
//   - tooSlow: the line did not fit and the session is now closing; the
//     caller must finish the close.

// appendRelayLocked queues a RELAY line.
func (q *sendQueue) appendRelayLocked(target, sender, text []byte) (queued, wake, urgent, tooSlow bool) {
	n := protocol.RelayLen(target, sender, text)
	if q.closing || q.out == nil || len(q.out.b)+n > min(cap(q.out.b), q.bound) {
		// The slow path: a new buffer, a larger one, or no room at all.
		if queued, wake, tooSlow = q.roomLocked(n); !queued {
			return false, false, false, tooSlow
		}
	}
	q.out.b = protocol.AppendRelay(q.out.b, target, sender, text)
	return true, wake, q.urgentLocked(), false
}

// appendRunLocked queues a run of group messages formatted once for all
// the members. Into an empty queue the run goes shared, not copied: the
// writer then writes the one buffer every member's queue points at, so a
// large group's fan-out copies nothing per member, and the bytes its
// writers encrypt stay in the CPU's caches.
func (q *sendQueue) appendRunLocked(run *sharedRun) (queued, wake, urgent, tooSlow bool) {
	if !q.closing && q.shared == nil && (q.out == nil || len(q.out.b) == 0) && len(run.b) <= q.bound {
		if q.out != nil {
			putOutBuf(q.out)
			q.out = nil
		}
		run.refs.Add(1)
		q.shared = run
		return true, !q.writing, q.urgentLocked(), false
	}
	return q.appendBytesLocked(run.b)
}

// unshareLocked copies a shared run into the queue's own buffer, so more
// can be appended after it.
func (q *sendQueue) unshareLocked() {
	run := q.shared
	q.shared = nil
	q.out = reserve(nil, len(run.b), len(run.b) > smallOutBuf)
	q.out.b = append(q.out.b, run.b...)
	run.release()
}

// appendBytesLocked queues a line already formatted (a group message,
// formatted once for all its members).
func (q *sendQueue) appendBytesLocked(line []byte) (queued, wake, urgent, tooSlow bool) {
	if queued, wake, tooSlow = q.roomLocked(len(line)); !queued {
		return false, false, false, tooSlow
	}
	q.out.b = append(q.out.b, line...)
	return true, wake, q.urgentLocked(), false
}

// roomLocked makes room for n more bytes, or closes the session as too
// slow when they do not fit.
func (q *sendQueue) roomLocked(n int) (ok, wake, tooSlow bool) {
	if q.closing {
		return false, false, false
	}
	if q.shared != nil {
		q.unshareLocked()
	}
	if q.out != nil && len(q.out.b)+n > q.bound {
		q.closeLocked(reasonTooSlow)
		return false, false, true
	}
	q.out = reserve(q.out, n, q.busy)
	return true, len(q.out.b) == 0 && !q.writing, false
}

func (q *sendQueue) urgentLocked() bool {
	return !q.writing && q.sizeLocked() > q.bound/wakeShare
}

// wakeShare: a queue past 1/wakeShare of its bound wakes its writer at
// once, in the middle of a sender's read.
const wakeShare = 4

// size reports how many bytes are queued; mu is held.
func (q *sendQueue) sizeLocked() int {
	switch {
	case q.shared != nil:
		return len(q.shared.b)
	case q.out == nil:
		return 0
	}
	return len(q.out.b)
}

// startWriter reports whether a writer must be started: there is work and
// none is running. It marks one as running.
func (q *sendQueue) startWriter() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	start := !q.writing && !q.finished && (q.out != nil || q.shared != nil || q.closing)
	if start {
		q.writing = true
	}
	return start
}

// taken is what the writer took from a queue: its own buffer, or a run
// shared with other queues.
type taken struct {
	out *outBuf
	run *sharedRun
}

func (t taken) bytes() []byte {
	if t.run != nil {
		return t.run.b
	}
	return t.out.b
}

func (t taken) empty() bool { return t.out == nil && t.run == nil }

// done gives back what was taken once it is written (or lost).
func (t taken) done() {
	if t.run != nil {
		t.run.release()
	} else {
		putOutBuf(t.out)
	}
}

// take hands the writer everything queued. With nothing queued it marks
// the writer as gone and reports whether the connection must be closed
// (the session is closing and its END is written).
func (q *sendQueue) take() (t taken, closeConn bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.drained != nil {
		q.drained.Broadcast()
	}
	if q.shared != nil {
		t.run, q.shared = q.shared, nil
		q.busy = len(t.run.b) > smallOutBuf
		return t, false
	}
	p := q.out
	q.out = nil
	if p != nil {
		t.out = p
		// What the queue held, not the buffer it was in: a queue that
		// started large because the last one was busy must not keep
		// the next one large for a single line (a watcher's PRESENCE
		// every round would borrow 16 KiB a time).
		q.busy = len(p.b) > smallOutBuf
		return t, false
	}
	q.writing = false
	q.finished = q.closing
	return t, q.closing
}

// writeFailed marks the writer as gone after a failed write, drops what
// is queued, and returns how many messages were lost with it.
func (q *sendQueue) writeFailed() (lost int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writing, q.finished = false, true
	if q.shared != nil {
		lost = countRelays(q.shared.b)
		q.shared.release()
		q.shared = nil
	}
	if q.out != nil {
		lost += countRelays(q.out.b)
		putOutBuf(q.out)
		q.out = nil
	}
	return lost
}

// closeLocked starts closing for reason r, if nothing did before: no more
// lines are queued, a slow receiver's queue is dropped, and the END line
// for r (if it has one) goes last. mu is held. It reports whether this was
// the first close.
func (q *sendQueue) closeLocked(r closeReason) bool {
	if q.closing {
		return false
	}
	q.closing = true
	q.closed.Store(true)
	q.reason = r
	if q.drained != nil {
		q.drained.Broadcast()
	}
	if r == reasonTooSlow && q.shared != nil {
		q.dropped += countRelays(q.shared.b)
		q.shared.release()
		q.shared = nil
	}
	if r == reasonTooSlow && q.out != nil {
		q.dropped += countRelays(q.out.b)
		q.out.b = q.out.b[:0]
	}
	if q.shared != nil {
		q.unshareLocked() // the END goes after it
	}
	if reasonInfo[r].end != "" {
		q.out = reserve(q.out, shortLine, false)
		q.out.b = r.appendEnd(q.out.b)
	}
	return true
}

// takeDropped returns the messages dropped since it was last called.
func (q *sendQueue) takeDropped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.dropped
	q.dropped = 0
	return n
}

// waitBelow blocks while more than limit bytes are queued and the session
// is open, until the writer has taken them.
func (q *sendQueue) waitBelow(limit int) {
	q.mu.Lock()
	for !q.closing && q.sizeLocked() > limit {
		if q.drained == nil {
			q.drained = sync.NewCond(&q.mu)
		}
		q.drained.Wait()
	}
	q.mu.Unlock()
}

// countRelays counts the RELAY lines in queued bytes, a partial first line
// included: they are the messages lost when the bytes are.
func countRelays(b []byte) int64 {
	n := int64(0)
	for len(b) > 0 {
		if bytes.HasPrefix(b, relayWord) {
			n++
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		b = b[i+1:]
	}
	return n
}

var relayWord = []byte("RELAY ")

// outBuf holds the bytes waiting to be written, in one contiguous buffer
// so the writer hands them to the transport in one call (every Write on a
// TLS connection is at least one record). Buffers come from pools and go
// back once written, so an idle session holds none and a busy one
// allocates nothing per message. A queue starts in a small buffer, as
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
	// shortLine bounds the server lines other than RELAY, PRESENCE and
	// WHO (ACCEPT, CNT, CHECK, END, FAIL, JOIN, PART), which are at most
	// a few dozen bytes.
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

// sharedRun is a run of group messages formatted once, which the queues
// of many members hold at once (appendRunLocked). Its bytes do not change
// once it is queued anywhere; the last holder to let go returns it to its
// pool.
type sharedRun struct {
	outBuf
	refs atomic.Int32
}

var sharedRuns = sync.Pool{New: func() any { return &sharedRun{outBuf: outBuf{b: make([]byte, 0, largeOutBuf)}} }}

// newSharedRun returns an empty run, held once, by its maker.
func newSharedRun() *sharedRun {
	r := sharedRuns.Get().(*sharedRun)
	r.refs.Store(1)
	return r
}

// release lets go of one hold on r.
func (r *sharedRun) release() {
	if r.refs.Add(-1) == 0 {
		r.b = r.b[:0]
		if cap(r.b) <= outBufKeep {
			sharedRuns.Put(r)
		}
	}
}
