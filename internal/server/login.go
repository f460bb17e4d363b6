package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// serveConn runs a connection from accept to login: the TLS handshake and
// the AUTH line, both under the login deadline. On success it hands the
// connection to a session's reader and writer goroutines and returns, so
// the deep stack of the handshake is not kept by an idle session.
func (s *Server) serveConn(raw net.Conn) {
	defer s.conns.Done()
	addr := hostOf(raw.RemoteAddr())
	log := s.cfg.Logger.With("remote", raw.RemoteAddr().String())
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3})
	}
	deadline := s.cfg.Now().Add(s.cfg.LoginTimeout)
	_ = raw.SetDeadline(deadline)
	if r := s.track(raw); r != reasonNone {
		// Nothing is sent: a TLS handshake is what a flood must not get.
		raw.Close()
		s.stats.Closes[r].Add(1)
		if r == reasonPendingFull {
			s.logs.log(s.cfg.Logger, slog.LevelWarn, r.String(), "connection refused: too many connections waiting to log in",
				"remote", raw.RemoteAddr().String(), "max_pending", s.cfg.MaxPending)
		}
		return
	}
	tc := tls.Server(raw, s.tls)
	conn := tlsTransport{Conn: tc, raw: raw}
	authed := false
	defer func() {
		if !authed {
			s.untrack(raw)
			raw.Close()
		}
	}()

	limited := !s.unauth.acquire(addr)
	if !limited {
		defer func() {
			s.unauth.release(addr)
		}()
	}
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	// The handshake is bounded by the connection's deadline, which
	// Shutdown shortens, but not cancelled by Shutdown: a client that
	// finished its side must be able to read why it is closed.
	if err := tc.Handshake(); err != nil {
		s.stats.Closes[reasonHandshakeFailed].Add(1)
		log.Debug("tls handshake failed", "err", err)
		return
	}
	// refuse sends a final END and counts the close.
	refuse := func(r closeReason, attrs ...any) {
		// The login deadline may have passed; the END gets a moment more.
		_ = raw.SetWriteDeadline(s.cfg.Now().Add(s.cfg.SlowCloseTimeout))
		_, _ = conn.Write(r.appendEnd(nil))
		s.stats.Closes[r].Add(1)
		level := [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}[reasonInfo[r].level]
		key := r.String()
		if r == reasonBadLogin {
			// One line per address and second keeps what a tool like
			// fail2ban needs, without one line per guess.
			key += " " + addr
		}
		s.logs.log(log, level, key, refusalMessage(r), append([]any{"reason", r.String()}, attrs...)...)
	}
	if limited {
		s.stats.LoginsRefused.Add(1)
		refuse(reasonTooManyConns)
		return
	}
	if s.stopping.Load() {
		refuse(reasonShutdown)
		return
	}

	in := &countingReader{r: conn}
	rd := protocol.NewReader(in, protocol.MaxLine)
	for {
		line, err := rd.ReadLine()
		if err != nil {
			switch {
			case errors.Is(err, protocol.ErrLineTooLong):
				refuse(reasonLineTooLong)
			case s.stopping.Load():
				refuse(reasonShutdown)
			case isTimeout(err):
				refuse(reasonLoginTimeout)
			default:
				s.stats.Closes[reasonPeerGone].Add(1)
			}
			rd.Release()
			return
		}
		line = protocol.TrimLine(line)
		if len(line) == 0 {
			continue
		}
		q, err := protocol.ParseQuery(line)
		switch {
		case err != nil:
			refuse(reasonProtocol)
			return
		case q.Kind == protocol.KindEnd:
			refuse(reasonEndAccepted)
			return
		case q.Kind != protocol.KindAuth:
			// Only AUTH costs a password check and counts with the
			// throttle; anything else before login is a protocol error.
			refuse(reasonProtocol)
			return
		}
		name := string(q.User)
		r := s.login(ctx, addr, name, q.Password)
		if r != reasonNone {
			if r == reasonBadLogin {
				s.stats.LoginsFailed.Add(1)
			} else {
				s.stats.LoginsRefused.Add(1)
			}
			refuse(r, "user", name)
			return
		}
		if f := s.afterVerify.Load(); f != nil {
			(*f)(name)
		}
		sess := s.newSession(conn, in, name, addr, raw.RemoteAddr().String())
		if !s.register(sess) {
			// The account was removed while its password was checked.
			s.stats.LoginsFailed.Add(1)
			refuse(reasonBadLogin, "user", name)
			return
		}
		authed = true
		s.untrack(raw)
		s.startSession(sess, rd)
		return
	}
}

// refusalMessage is the log message of a connection ended before login.
func refusalMessage(r closeReason) string {
	switch r {
	case reasonBadLogin:
		return "login failed"
	case reasonLoginTimeout:
		return "login timed out"
	case reasonEndAccepted:
		return "ended before login"
	case reasonShutdown:
		return "closed before login: shutting down"
	}
	return "connection refused"
}

// login checks a password, with the address's throttle around it. It
// returns reasonNone on success, or why the login is refused.
func (s *Server) login(ctx context.Context, addr, name string, password []byte) closeReason {
	if s.stopping.Load() {
		return reasonShutdown
	}
	if !s.throttle.begin(ctx, addr) {
		switch {
		case s.stopping.Load():
			return reasonShutdown
		case ctx.Err() != nil:
			return reasonLoginTimeout
		}
		return reasonTooManyAttempts
	}
	ok, err := s.cfg.Checker.Verify(ctx, s.users.Load(), name, password)
	if err != nil {
		s.throttle.succeed(addr) // not checked: nothing to count against it
		if s.stopping.Load() {
			return reasonShutdown
		}
		return reasonLoginTimeout
	}
	if !ok {
		if d := s.throttle.fail(addr); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return reasonBadLogin
	}
	s.throttle.succeed(addr)
	if s.dir.Len() >= s.cfg.MaxSessions && s.dir.Lookup([]byte(name)) == nil {
		return reasonServerFull
	}
	return reasonNone
}

// newSession makes the session of a connection whose login succeeded.
func (s *Server) newSession(conn Transport, in *countingReader, name, addr, remote string) *session {
	sess := &session{
		srv:    s,
		conn:   conn,
		in:     in,
		name:   name,
		addr:   addr,
		remote: remote,
		since:  s.cfg.Now(),
	}
	sess.writer = sess.writeLoop
	sess.out = reserve(nil, shortLine, false)
	sess.out.b = protocol.AppendAccept(sess.out.b, sess.name)
	return sess
}

// register makes sess the session of its user, replacing an older one,
// unless the user is no longer in the table. It holds the table's lock
// for reading: a reload that removes the user either runs before (and
// the login is refused here) or after (and walks this session).
func (s *Server) register(sess *session) bool {
	s.tableMu.RLock()
	defer s.tableMu.RUnlock()
	if !s.users.Load().Has(sess.name) {
		return false
	}
	if old := s.dir.Register(sess); old != nil {
		old.close(reasonReplaced)
	}
	return true
}

// startSession answers ACCEPT to a registered session and starts its
// reader and writer.
func (s *Server) startSession(sess *session, rd *protocol.Reader) {
	name, remote := sess.name, sess.remote
	_ = sess.conn.SetReadDeadline(time.Time{})
	_ = sess.conn.SetWriteDeadline(time.Time{})
	s.readers.Add(1)
	s.stats.LoginsOK.Add(1)
	s.cfg.Logger.Info("logged in", "user", name, "remote", remote)
	sess.nudge()
	if s.stopping.Load() {
		// Shutdown began while this login was finishing and may not have
		// seen the session.
		sess.close(reasonShutdown)
		s.readers.Done()
		return
	}
	go sess.readLoop(rd)
}

// track remembers a connection until it logs in, so Shutdown can end it.
// It refuses the connection when the server is stopping, when MaxPending
// connections are already waiting to log in, or when taking it would eat
// into the files kept for logged-in users.
func (s *Server) track(c net.Conn) closeReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return reasonShutdown
	}
	if len(s.pending) >= s.cfg.MaxPending {
		return reasonPendingFull
	}
	if s.cfg.FileLimit > 0 && len(s.pending)+s.dir.Len() >= s.cfg.FileLimit-s.cfg.FileReserve {
		return reasonPendingFull
	}
	s.pending[c] = struct{}{}
	return reasonNone
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.pending, c)
	s.mu.Unlock()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
