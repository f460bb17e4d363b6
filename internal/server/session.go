package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// session is one logged-in user's connection. Its reader goroutine parses
// what the client sends and relays it; a writer goroutine, started when
// there is something to write and gone when the queue is empty, owns all
// writes to the connection. An idle session so holds one goroutine, not
// two. The reader never waits for another session: relaying appends to the
// target's queue and nudges the target's writer.
type session struct {
	srv    *Server
	conn   Transport
	in     *countingReader
	name   string
	addr   string // remote IP, the throttle's key
	remote string // remote address, for logs
	since  time.Time
	closed atomic.Bool // mirrors closing, read without the lock

	mu       sync.Mutex
	out      *outBuf // nil while nothing is queued
	writing  bool    // a writer goroutine is running
	finished bool    // the writer closed the connection
	closing  bool
	busy     bool // the last queue outgrew a small buffer: start large
	// writer is writeLoop bound once, so starting a writer for each
	// burst allocates nothing.
	writer  func()
	reason  closeReason
	drained *sync.Cond // made on first use: the reader waits on the writer

	// deadlineSet is when the write deadline was last moved; only the
	// running writer touches it.
	deadlineSet time.Time

	// Reader-local state: touched lists the sessions whose writers must be
	// woken once the current network read is handled; cache remembers the
	// last target, since a sender usually writes to one person at a time.
	touched   []*session
	cacheName []byte
	cache     *session
	held      *session // whose mu relay holds between messages
	relayed   int64
	notOnline int64
	// dropped counts messages lost with the queue of a closing session;
	// guarded by mu, published by finishClose.
	dropped int64
}

// countingReader counts the bytes a session reads.
type countingReader struct {
	r Transport
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// enqueueRelay queues a RELAY line for this session's user. It reports
// whether the line was queued and whether the caller must wake the writer
// once its batch is done.
func (s *session) enqueueRelay(target, sender, text []byte) (queued, wake bool) {
	s.mu.Lock()
	queued, wake, urgent, tooSlow := s.relayLocked(target, sender, text)
	s.mu.Unlock()
	if tooSlow {
		s.finishClose(reasonTooSlow)
	}
	if urgent {
		s.nudge()
		wake = false
	}
	return queued, wake
}

// relayLocked appends a RELAY line to the queue; s.mu is held. wake is
// set for the first line into an empty queue with no writer running: only
// that one needs a nudge, once the sender's read is handled. urgent is set
// when the queue has passed a share of its bound with no writer running:
// the caller must nudge the writer now, once it has let go of the lock,
// rather than after the read, or a small bound fills within one read of a
// fast sender while the receiver waits to be woken. tooSlow means the line
// did not fit and the session is now closing; the caller must call
// finishClose once it has let go of the lock.
func (s *session) relayLocked(target, sender, text []byte) (queued, wake, urgent, tooSlow bool) {
	if s.closing {
		return false, false, false, false
	}
	n := protocol.RelayLen(target, sender, text)
	if s.out != nil && len(s.out.b)+n > s.srv.cfg.MaxQueue {
		s.closeLocked(reasonTooSlow)
		return false, false, false, true
	}
	s.out = reserve(s.out, n, s.busy)
	wake = len(s.out.b) == 0 && !s.writing
	s.out.b = protocol.AppendRelay(s.out.b, target, sender, text)
	size := len(s.out.b)
	if size > 64<<10 {
		s.srv.stats.noteQueue(size)
	}
	urgent = !s.writing && size > s.srv.cfg.MaxQueue/wakeShare
	return true, wake, urgent, false
}

// wakeShare: a queue past 1/wakeShare of its bound wakes its writer at
// once, in the middle of a sender's read.
const wakeShare = 4

// enqueue queues a server line built by appendLine. False means the
// session is closing or the line did not fit (the session is then closed
// as too slow).
func (s *session) enqueue(appendLine func([]byte) []byte) (queued bool) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.out = reserve(s.out, shortLine, false)
	before := len(s.out.b)
	s.out.b = appendLine(s.out.b)
	if len(s.out.b) > s.srv.cfg.MaxQueue {
		s.out.b = s.out.b[:before]
		s.closeLocked(reasonTooSlow)
		s.mu.Unlock()
		s.finishClose(reasonTooSlow)
		return false
	}
	s.mu.Unlock()
	s.nudge()
	return true
}

// nudge starts the writer if there is work for it and it is not running.
func (s *session) nudge() {
	s.mu.Lock()
	start := !s.writing && !s.finished && (s.out != nil || s.closing)
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if start {
		s.srv.writers.Add(1)
		go s.writer()
	}
}

// close ends the session for reason r: no more lines are queued, the END
// line for r (if any) goes after what is already queued (a slow
// receiver's queue is dropped first), and the writer closes the connection
// once it has written it. Only the first close counts.
func (s *session) close(r closeReason) {
	s.mu.Lock()
	first := s.closeLocked(r)
	s.mu.Unlock()
	if first {
		s.finishClose(r)
	}
}

func (s *session) closeLocked(r closeReason) bool {
	if s.closing {
		return false
	}
	s.closing = true
	s.closed.Store(true)
	s.reason = r
	if s.drained != nil {
		s.drained.Broadcast()
	}
	if r == reasonTooSlow && s.out != nil {
		s.dropLocked()
	}
	if reasonInfo[r].end != "" {
		s.out = reserve(s.out, shortLine, false)
		s.out.b = r.appendEnd(s.out.b)
	}
	return true
}

// dropLocked empties the queue of a session that will never receive it,
// counting the messages lost with it; s.mu is held.
func (s *session) dropLocked() {
	s.dropped += countRelays(s.out.b)
	s.out.b = s.out.b[:0]
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

// finishClose does the work of a first close outside the lock.
func (s *session) finishClose(r closeReason) {
	// The reader must handle no further line of a closed session, even
	// while the writer still flushes its END to a peer that stopped
	// reading: a replaced or removed user's messages stop here.
	_ = s.conn.SetReadDeadline(s.srv.cfg.Now())
	if r == reasonTooSlow {
		// The END is best effort: a receiver that stopped reading gets a
		// short deadline, not the full write timeout.
		_ = s.conn.SetWriteDeadline(s.srv.cfg.Now().Add(s.srv.cfg.SlowCloseTimeout))
	}
	s.nudge()
	s.srv.dir.Unregister(s)
	s.srv.stats.Closes[r].Add(1)
	s.mu.Lock()
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	s.srv.stats.Dropped.Add(dropped)
	s.logClose(r, dropped)
}

func (s *session) logClose(r closeReason, dropped int64) {
	level := [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}[reasonInfo[r].level]
	attrs := []any{"user", s.name, "remote", s.remote, "reason", r.String(), "duration", time.Since(s.since).Round(time.Millisecond)}
	if dropped > 0 {
		attrs = append(attrs, "dropped", dropped)
	}
	s.srv.cfg.Logger.Log(context.Background(), level, "session closed", attrs...)
}

// writeLoop takes everything queued and writes it in one call under a
// deadline, until the queue is empty; then it returns, or closes the
// connection if the session is closing.
func (s *session) writeLoop() {
	defer s.srv.writers.Done()
	for {
		s.mu.Lock()
		p := s.out
		s.out = nil
		if p != nil {
			s.busy = cap(p.b) >= largeOutBuf
		}
		closing := s.closing
		if s.drained != nil {
			s.drained.Broadcast()
		}
		if p == nil {
			s.writing = false
			s.finished = closing
			s.mu.Unlock()
			if closing {
				s.conn.Close()
			}
			return
		}
		s.mu.Unlock()
		n, err := s.write(p.b, closing)
		if err != nil {
			lost := countRelays(p.b[n:])
			putOutBuf(p)
			s.close(reasonWriteFailed)
			s.mu.Lock()
			s.writing, s.finished = false, true
			if s.out != nil {
				lost += countRelays(s.out.b)
				putOutBuf(s.out)
				s.out = nil
			}
			s.mu.Unlock()
			if lost > 0 {
				s.srv.stats.Dropped.Add(lost)
			}
			s.conn.Close()
			return
		}
		putOutBuf(p)
	}
}

// write writes b and reports how much of it was written.
func (s *session) write(b []byte, closing bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	// Moving the deadline costs a timer update; once per tenth of the
	// timeout is close enough. A closing session keeps the deadline it
	// has: a slow receiver's END gets only a short one.
	if now := s.srv.cfg.Now(); now.Sub(s.deadlineSet) > s.srv.cfg.WriteTimeout/10 && !closing {
		s.deadlineSet = now
		if err := s.conn.SetWriteDeadline(now.Add(s.srv.cfg.WriteTimeout)); err != nil {
			return 0, err
		}
	}
	n, err := s.conn.Write(b)
	s.srv.stats.BytesOut.Add(int64(n))
	return n, err
}

// readLoop handles what the client sends after login, one network read at
// a time: every line of the read is handled, then each touched writer is
// woken once.
func (s *session) readLoop(rd *protocol.Reader) {
	defer s.srv.readers.Done()
	defer rd.Release()
	for {
		stop := s.handleBuffered(rd)
		s.flushBatch()
		if stop {
			return
		}
		s.waitForWriter()
		if err := rd.Fill(); err != nil {
			stop := s.handleBuffered(rd)
			s.flushBatch()
			if stop {
				return
			}
			if s.srv.stopping.Load() && isTimeout(err) {
				return // shutdown stopped the reader; Shutdown closes the session
			}
			if s.closed.Load() {
				return // closed by someone else; the writer ends the connection
			}
			s.close(reasonPeerGone)
			s.conn.Close()
			return
		}
	}
}

// waitForWriter holds the reader back while the session's own queue is
// over a quarter of its bound, until the writer has taken it: a client
// that pipelines many messages to someone offline gets a CNT for each,
// and reading on regardless would let those answers, not a slow
// receiver, push the queue over its bound. Only this session waits.
func (s *session) waitForWriter() {
	limit := s.srv.cfg.MaxQueue / 4
	s.mu.Lock()
	for !s.closing && s.out != nil && len(s.out.b) > limit {
		if s.drained == nil {
			s.drained = sync.NewCond(&s.mu)
		}
		s.drained.Wait()
	}
	s.mu.Unlock()
}

// handleBuffered handles every complete line buffered in rd. It reports
// whether the session is over.
func (s *session) handleBuffered(rd *protocol.Reader) (stop bool) {
	r := s.handleLines(rd)
	s.release()
	if r != reasonNone {
		s.close(r)
		return true
	}
	return s.closed.Load()
}

// handleLines handles complete lines until there are no more or one ends
// the session, whose reason it returns.
func (s *session) handleLines(rd *protocol.Reader) closeReason {
	for {
		if s.closed.Load() {
			// Closed by someone else (replaced, removed, too slow): the
			// rest of what was read is not handled.
			return reasonNone
		}
		line, err := rd.Next()
		if err != nil {
			return reasonLineTooLong
		}
		if line == nil {
			return reasonNone
		}
		line = protocol.TrimLine(line)
		if len(line) == 0 {
			continue
		}
		q, err := protocol.ParseQuery(line)
		if err != nil {
			return reasonProtocol
		}
		switch q.Kind {
		case protocol.KindMsg:
			if string(q.Sender) != s.name {
				return reasonProtocol // impersonation
			}
			s.relay(q.Target, q.Sender, q.Text)
		case protocol.KindEnd:
			return reasonEndAccepted
		default: // a second AUTH
			return reasonProtocol
		}
	}
}

// relay queues a message on its target's session, or answers CNT. The
// target's lock is kept across a run of messages to the same target in
// one read (a sender usually writes to one person at a time), and let go
// when the target changes and before the batch ends.
func (s *session) relay(target, sender, text []byte) {
	for fresh := false; ; fresh = true {
		t := s.lookup(target, fresh)
		if t == nil {
			break
		}
		if s.held != t {
			s.release()
			t.mu.Lock()
			s.held = t
		}
		queued, wake, urgent, tooSlow := t.relayLocked(target, sender, text)
		if queued {
			s.relayed++
			switch {
			case urgent:
				s.release()
				t.nudge()
			case wake:
				s.touched = append(s.touched, t)
			}
			return
		}
		s.release()
		if tooSlow {
			t.finishClose(reasonTooSlow)
		}
		s.cache = nil
		if fresh {
			break
		}
	}
	s.release() // it may be this session's own lock
	s.notOnline++
	s.enqueue(protocol.AppendCNT)
}

// release lets go of the target lock relay keeps, if any.
func (s *session) release() {
	if s.held != nil {
		s.held.mu.Unlock()
		s.held = nil
	}
}

// lookup finds the session of name, from the cache unless fresh is set or
// the cached session has closed (its user may be back on a new one).
func (s *session) lookup(name []byte, fresh bool) *session {
	if !fresh && s.cache != nil && !s.cache.closed.Load() && bytes.Equal(s.cacheName, name) {
		return s.cache
	}
	t := s.srv.dir.Lookup(name)
	if t != nil {
		s.cache = t
		s.cacheName = append(s.cacheName[:0], name...)
	}
	return t
}

// flushBatch wakes the writers touched by the last read and publishes the
// read's counters.
func (s *session) flushBatch() {
	s.release()
	for i, t := range s.touched {
		t.nudge()
		s.touched[i] = nil
	}
	s.touched = s.touched[:0]
	st := &s.srv.stats
	if s.relayed > 0 {
		st.Relayed.Add(s.relayed)
		s.relayed = 0
	}
	if s.notOnline > 0 {
		st.NotOnline.Add(s.notOnline)
		s.notOnline = 0
	}
	if s.in.n > 0 {
		st.BytesIn.Add(s.in.n)
		s.in.n = 0
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
