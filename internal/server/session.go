package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Session is one logged-in user's connection, over any line transport.
// Its reader goroutine parses what the client sends and handles it; a
// writer goroutine, started when there is something to write and gone
// when the queue is empty, owns all writes to the transport. An idle
// session so holds one goroutine, not two. The reader never waits for
// another session: relaying appends to the target's queue and nudges the
// target's writer.
//
// Its fields are for the server package only; other packages (a
// cluster's Router) pass sessions around without looking inside.
type Session struct {
	srv     *Server
	conn    Transport
	rd      *protocol.Reader // the reader's line buffer, which counts what it read
	name    string
	addr    string // remote IP, the throttle's key
	remote  string // remote address, for logs
	since   time.Time
	version int // protocol version: 1, or 2 after HELLO 2

	q sendQueue
	// writer is writeLoop bound once, so starting a writer for each
	// burst allocates nothing.
	writer func()
	// deadlineSet is when the write deadline was last moved; only the
	// running writer touches it.
	deadlineSet time.Time

	// stateMu guards the version-2 state below. The reader changes it;
	// the login of a session that replaces this one takes it over; the
	// reader's exit clears it. Lock order: stateMu, then group locks,
	// then queue locks.
	stateMu  sync.Mutex
	watching []*watchers // the names watched, as their sets in the presence table
	groups   []*group    // groups joined
	left     bool        // the state was cleared or handed over: add nothing

	// Reader-local state: delivery is what the current network read has
	// queued on others; cache remembers the last target, since a sender
	// usually writes to one person at a time.
	delivery
	cacheName []byte
	cache     *Session
	scratch   []byte    // formatting of the reader's own answers
	whoTokens float64   // WHO rate limit: tokens left
	whoAt     time.Time // when whoTokens was last refilled
	notOnline int64
	forwarded int64

	// The presence round's: the round in which this session was last
	// given news, and where in the round's list (presence.newsFor).
	newsRound uint32
	newsAt    int32
}

// Name is the user the session is logged in as.
func (s *Session) Name() string { return s.name }

// enqueue queues a server line built by appendLine and wakes the writer.
// False means the session is closing or the line did not fit (the session
// is then closed as too slow).
func (s *Session) enqueue(appendLine func([]byte) []byte) (queued bool) {
	s.q.mu.Lock()
	ok, _, tooSlow := s.q.roomLocked(shortLine)
	if ok {
		s.q.out.b = appendLine(s.q.out.b)
	}
	s.q.mu.Unlock()
	if tooSlow {
		s.finishClose(reasonTooSlow)
	}
	if ok {
		s.nudge()
	}
	return ok
}

// enqueueBytes queues a formatted server line and wakes the writer.
func (s *Session) enqueueBytes(line []byte) (queued bool) {
	s.q.mu.Lock()
	ok, _, _, tooSlow := s.q.appendBytesLocked(line)
	s.q.mu.Unlock()
	if tooSlow {
		s.finishClose(reasonTooSlow)
	}
	if ok {
		s.nudge()
	}
	return ok
}

// nudge starts the writer if there is work for it and it is not running.
func (s *Session) nudge() {
	if s.q.startWriter() {
		s.srv.writers.Add(1)
		go s.writer()
	}
}

// close ends the session for reason r: no more lines are queued, the END
// line for r (if any) goes after what is already queued (a slow
// receiver's queue is dropped first), and the writer closes the connection
// once it has written it. Only the first close counts.
func (s *Session) close(r closeReason) {
	s.q.mu.Lock()
	first := s.q.closeLocked(r)
	s.q.mu.Unlock()
	if first {
		s.finishClose(r)
	}
}

// finishClose does the work of a first close outside the lock.
func (s *Session) finishClose(r closeReason) {
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
	s.srv.local.unregister(s)
	s.srv.stats.Closes[r].Add(1)
	dropped := s.q.takeDropped()
	s.srv.stats.Dropped.Add(dropped)
	s.logClose(r, dropped)
}

func (s *Session) logClose(r closeReason, dropped int64) {
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
func (s *Session) writeLoop() {
	defer s.srv.writers.Done()
	for {
		p, closeConn := s.q.take()
		if p.empty() {
			if closeConn {
				finishConn(s.conn)
			}
			return
		}
		b := p.bytes()
		n, err := s.write(b, s.q.closed.Load())
		if err != nil {
			lost := countRelays(b[n:])
			p.done()
			s.close(reasonWriteFailed)
			lost += s.q.writeFailed()
			if lost > 0 {
				s.srv.stats.Dropped.Add(lost)
			}
			s.conn.Close()
			return
		}
		p.done()
	}
}

// finisher is a Transport that can end its connection after what was
// written reaches the peer, even when the peer's input was left unread
// (listen.Transport.Finish).
type finisher interface{ Finish() error }

// finishConn ends t after the session's last line: gracefully when t can.
func finishConn(t Transport) {
	if f, ok := t.(finisher); ok {
		_ = f.Finish()
		return
	}
	_ = t.Close()
}

// write writes b and reports how much of it was written.
func (s *Session) write(b []byte, closing bool) (int, error) {
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
// woken once. When it returns, the session has left its groups and its
// watch list.
func (s *Session) readLoop(rd *protocol.Reader) {
	defer s.srv.readers.Done()
	defer rd.Release()
	defer s.leaveAll()
	for {
		stop := s.handleBuffered(rd)
		s.flushBatch()
		if stop {
			return
		}
		s.q.waitBelow(s.q.bound / 4)
		if err := rd.Fill(); err != nil {
			stop := s.handleBuffered(rd)
			s.flushBatch()
			if stop {
				return
			}
			if s.srv.stopping.Load() && isTimeout(err) {
				return // shutdown stopped the reader; Shutdown closes the session
			}
			if s.q.closed.Load() {
				return // closed by someone else; the writer ends the connection
			}
			s.close(reasonPeerGone)
			s.conn.Close()
			return
		}
	}
}

// handleBuffered handles every complete line buffered in rd. It reports
// whether the session is over.
func (s *Session) handleBuffered(rd *protocol.Reader) (stop bool) {
	r := s.handleLines(rd)
	s.release()
	if r != reasonNone {
		s.close(r)
		return true
	}
	return s.q.closed.Load()
}

// handleLines handles complete lines until there are no more or one ends
// the session, whose reason it returns.
func (s *Session) handleLines(rd *protocol.Reader) closeReason {
	for {
		if s.q.closed.Load() {
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
		if target, sender, text, ok := protocol.ParseMsg(line); ok {
			// The hot path: no Query, no table, no call through a
			// pointer.
			if string(sender) != s.name {
				return reasonProtocol // impersonation
			}
			if s.runGroup != nil {
				s.endRun()
			}
			s.relay(target, sender, text)
			continue
		}
		q, err := protocol.ParseQuery(line)
		if err != nil {
			return reasonProtocol
		}
		if !allowedInSession(s, q.Kind) {
			return reasonProtocol
		}
		if q.Kind != protocol.KindGroupMsg {
			s.endRun()
		}
		s.release() // the other handlers take other locks
		if r := s.dispatch(q); r != reasonNone {
			return r
		}
	}
}

// dispatch hands a query other than MSG to its handler. It takes the
// query by value: passing a pointer to handleLines' own copy through a
// function value would move that copy to the heap, for every MSG too.
func (s *Session) dispatch(q protocol.Query) closeReason {
	return ruleOf(q.Kind).session(s, &q)
}

// relay queues a message on its target's session, forwards it to the
// target's node, or answers CNT. Routing happens with no lock held.
func (s *Session) relay(target, sender, text []byte) {
	for fresh := false; ; fresh = true {
		t, fwd := s.lookup(target, fresh)
		if fwd != nil {
			s.release()
			if fwd.Forward(target, sender, text) {
				s.forwarded++
				return
			}
			break
		}
		if t == nil {
			break
		}
		if s.queueRelay(t, target, sender, text) {
			return
		}
		s.cache = nil
		if fresh {
			break
		}
	}
	s.release() // it may be this session's own lock
	s.notOnline++
	s.answerCNT(target)
}

// answerCNT tells the sender its target is not online: by name in
// version 2, in version 1's bare form otherwise.
func (s *Session) answerCNT(target []byte) {
	if s.version >= 2 {
		s.scratch = protocol.AppendCNTTo(s.scratch[:0], target)
	} else {
		s.scratch = protocol.AppendCNT(s.scratch[:0])
	}
	s.enqueueBytes(s.scratch)
}

// lookup finds where name is online: from the cache unless fresh is set
// or the cached session has closed (its user may be back on a new one),
// else from the router, with the held lock let go first.
func (s *Session) lookup(name []byte, fresh bool) (*Session, Forwarder) {
	if !fresh && s.cache != nil && !s.cache.q.closed.Load() && bytes.Equal(s.cacheName, name) {
		return s.cache, nil
	}
	s.release()
	r := s.srv.router.Route(name)
	if r.Local != nil {
		s.cache = r.Local
		s.cacheName = append(s.cacheName[:0], name...)
	}
	return r.Local, r.Remote
}

// flushBatch wakes the writers touched by the last read, finishes the
// closes of group members found too slow, and publishes the read's
// counters.
func (s *Session) flushBatch() {
	s.finish()
	st := &s.srv.stats
	if s.notOnline > 0 {
		st.NotOnline.Add(s.notOnline)
		s.notOnline = 0
	}
	if s.forwarded > 0 {
		st.Forwarded.Add(s.forwarded)
		s.forwarded = 0
	}
	if n := s.rd.TakeCount(); n > 0 {
		st.BytesIn.Add(n)
	}
	if cap(s.scratch) > maxKeptScratch {
		// A long answer (WATCH, JOIN's member list) is rare; an idle
		// session should not keep the buffer it took.
		s.scratch = nil
	}
}

// maxKeptScratch is the largest formatting buffer a session keeps
// between reads.
const maxKeptScratch = 512

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
