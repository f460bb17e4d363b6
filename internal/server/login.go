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
	if !s.track(raw) {
		raw.Close()
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
		log.Log(context.Background(), level, "connection refused", append([]any{"reason", r.String()}, attrs...)...)
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
		if err != nil || q.Kind == protocol.KindMsg {
			refuse(reasonProtocol)
			return
		}
		if q.Kind == protocol.KindEnd {
			refuse(reasonEndAccepted)
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
		authed = true
		s.untrack(raw)
		s.startSession(conn, in, rd, name, addr, raw.RemoteAddr().String())
		return
	}
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

// startSession registers a logged-in connection, answers ACCEPT, and
// starts its reader and writer.
func (s *Server) startSession(conn Transport, in *countingReader, rd *protocol.Reader, name, addr, remote string) {
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
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
	sess.out.b = protocol.AppendAccept(sess.out.b, name)
	s.readers.Add(1)
	if old := s.dir.Register(sess); old != nil {
		old.close(reasonReplaced)
	}
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
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.pending[c] = struct{}{}
	return true
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
