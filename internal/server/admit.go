package server

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// RawConn is what the server needs of a connection's socket before login,
// whatever runs over it (TLS, a WebSocket): its deadline, which bounds the
// handshake and the login together, its address, which the per-address
// limits key on, and Close.
type RawConn interface {
	SetDeadline(t time.Time) error
	Close() error
	RemoteAddr() net.Addr
}

// Pending is a connection admitted to log in. The transport that admitted
// it does its handshake by Deadline, then calls Serve with the line
// transport, or Abandon when the handshake failed. Exactly one of them
// must be called.
type Pending struct {
	srv      *Server
	raw      RawConn
	addr     string // remote IP, the key of the per-address limits
	remote   string // remote address, for logs
	deadline time.Time
	limited  bool // over the per-address cap: refused after the handshake
}

// Admit decides whether a new connection may start to log in. It refuses,
// closing the connection and returning nil, when the server is stopping,
// when MaxPending connections already wait to log in, or when taking it
// would eat into the files kept for logged-in users; nothing is sent then,
// as a handshake is what a flood must not get. An admitted connection has
// its deadline set to the end of the login time.
func (s *Server) Admit(raw RawConn) *Pending {
	p := &Pending{
		srv:      s,
		raw:      raw,
		addr:     hostOf(raw.RemoteAddr()),
		remote:   raw.RemoteAddr().String(),
		deadline: s.cfg.Now().Add(s.cfg.LoginTimeout),
	}
	_ = raw.SetDeadline(p.deadline)
	if r := s.track(raw); r != reasonNone {
		raw.Close()
		s.stats.Closes[r].Add(1)
		if r == reasonPendingFull {
			s.logs.log(s.cfg.Logger, slog.LevelWarn, r.String(), "connection refused: too many connections waiting to log in",
				"remote", p.remote, "max_pending", s.cfg.MaxPending)
		}
		return nil
	}
	s.conns.Add(1)
	p.limited = !s.unauth.acquire(p.addr)
	return p
}

// Refusing reports whether Serve will refuse the connection at once,
// before reading from it (the address has too many connections waiting,
// or the server is stopping): a transport need not wait for the client
// to speak first.
func (p *Pending) Refusing() bool { return p.limited || p.srv.stopping.Load() }

// Deadline is when the handshake and the login must be done.
func (p *Pending) Deadline() time.Time { return p.deadline }

// Abandon ends a connection whose handshake failed.
func (p *Pending) Abandon(err error) {
	s := p.srv
	s.stats.Closes[reasonHandshakeFailed].Add(1)
	s.cfg.Logger.Debug("handshake failed", "remote", p.remote, "err", err)
	p.release()
	p.raw.Close()
}

// Renew starts the login time again, for a connection that has done
// something else first (an HTTP connection upgrading to a WebSocket after
// the page was loaded).
func (p *Pending) Renew() {
	p.deadline = p.srv.cfg.Now().Add(p.srv.cfg.LoginTimeout)
	_ = p.raw.SetDeadline(p.deadline)
}

// Release gives back the admission of a connection that ended without
// logging in and without a failed handshake (an HTTP connection that
// served pages and closed). The caller closes the connection.
func (p *Pending) Release() { p.release() }

// release gives back what Admit took.
func (p *Pending) release() {
	if !p.limited {
		p.srv.unauth.release(p.addr)
	}
	p.srv.untrack(p.raw)
	p.srv.conns.Done()
}

// Serve logs the connection in over t, the line transport on top of the
// admitted socket, and on success starts its session's goroutines. It
// returns when the login is over, so the deep stack of a handshake is not
// kept by an idle session.
func (p *Pending) Serve(t Transport) {
	s := p.srv
	l := &login{srv: s, p: p, t: t, log: s.cfg.Logger.With("remote", p.remote)}
	sess := l.run()
	p.release()
	if sess == nil {
		p.raw.Close()
		return
	}
	s.startSession(sess, l.rd)
}

// track remembers a connection until it logs in, so Shutdown can end it.
// It refuses the connection when the server is stopping, when MaxPending
// connections are already waiting to log in, or when taking it would eat
// into the files kept for logged-in users.
func (s *Server) track(c RawConn) closeReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return reasonShutdown
	}
	if len(s.pending) >= s.cfg.MaxPending {
		return reasonPendingFull
	}
	if s.cfg.FileLimit > 0 && len(s.pending)+s.local.Len() >= s.cfg.FileLimit-s.cfg.FileReserve {
		return reasonPendingFull
	}
	s.pending[c] = struct{}{}
	return reasonNone
}

func (s *Server) untrack(c RawConn) {
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

// loginContext is the context of one login: it ends at the login's
// deadline or when the server stops.
func (s *Server) loginContext(deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(s.ctx, deadline)
}
