package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// login is one connection's way from its first line to a session, over
// any line transport: an optional HELLO, then AUTH (or END). It runs on
// the goroutine that admitted the connection, under the login deadline.
type login struct {
	srv *Server
	p   *Pending
	t   Transport
	log *slog.Logger
	rd  *protocol.Reader
	ctx context.Context

	version  int  // the session's protocol version: 1 unless HELLO said more
	hello    bool // HELLO was answered
	seenLine bool // a line was read (the first is checked against bans)
	tries    int  // sign-ups answered TRY
}

// run reads lines until one logs the connection in, which it returns
// registered, or ends it (nil).
func (l *login) run() *Session {
	s := l.srv
	if l.p.limited {
		s.stats.LoginsRefused.Add(1)
		l.refuse(reasonTooManyConns)
		return nil
	}
	if s.stopping.Load() {
		l.refuse(reasonShutdown)
		return nil
	}
	ctx, cancel := s.loginContext(l.p.deadline)
	defer cancel()
	l.ctx = ctx
	l.version = 1
	l.rd = protocol.NewReader(l.t, protocol.MaxLine)
	for {
		line, err := l.rd.ReadLine()
		if err != nil {
			switch {
			case errors.Is(err, protocol.ErrLineTooLong):
				l.refuse(reasonLineTooLong)
			case s.stopping.Load():
				l.refuse(reasonShutdown)
			case isTimeout(err):
				l.refuse(reasonLoginTimeout)
			default:
				s.stats.Closes[reasonPeerGone].Add(1)
			}
			l.rd.Release()
			return nil
		}
		line = protocol.TrimLine(line)
		if len(line) == 0 {
			continue
		}
		q, err := protocol.ParseQuery(line)
		if err != nil {
			l.refuse(reasonProtocol)
			l.rd.Release()
			return nil
		}
		if !l.seenLine {
			l.seenLine = true
			if s.addrBanned(l.p.addr) {
				// Before any password check, whatever the line is.
				l.refuse(reasonBanned)
				l.rd.Release()
				return nil
			}
		}
		rule := ruleOf(q.Kind)
		if rule.before == nil || q.Kind != protocol.KindHello && q.Kind.Version() > l.version {
			// Only AUTH costs a password check and counts with the
			// throttle; anything else not allowed here is a protocol
			// error.
			l.refuse(reasonProtocol)
			l.rd.Release()
			return nil
		}
		sess, done := rule.before(l, &q)
		if done {
			if sess == nil {
				l.rd.Release()
			}
			return sess
		}
	}
}

// refuse sends a final END, counts the close and logs it (rate-limited:
// a flood of refusals is one line a second).
func (l *login) refuse(r closeReason, attrs ...any) {
	s := l.srv
	// The login deadline may have passed; the END gets a moment more.
	_ = l.t.SetWriteDeadline(s.cfg.Now().Add(s.cfg.SlowCloseTimeout))
	_, _ = l.t.Write(r.appendEnd(nil))
	s.stats.Closes[r].Add(1)
	level := [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}[reasonInfo[r].level]
	key := r.String()
	if r == reasonBadLogin {
		// One line per address and second keeps what a tool like
		// fail2ban needs, without one line per guess.
		key += " " + l.p.addr
	}
	s.logs.log(l.log, level, key, refusalMessage(r), append([]any{"reason", r.String()}, attrs...)...)
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

// beforeHello answers HELLO: the highest version both sides speak, and
// what this server offers. HELLO comes at most once, first.
func beforeHello(l *login, q *protocol.Query) (*Session, bool) {
	if l.hello {
		l.refuse(reasonProtocol)
		return nil, true
	}
	l.hello = true
	l.version = min(q.Version, protocol.Version)
	var f protocol.Features
	if l.version >= 2 {
		f = l.srv.features()
	}
	_ = l.t.SetWriteDeadline(l.p.deadline)
	if _, err := l.t.Write(protocol.AppendHello(nil, l.version, f)); err != nil {
		l.srv.stats.Closes[reasonWriteFailed].Add(1)
		return nil, true
	}
	return nil, false
}

// beforeEnd answers END before login.
func beforeEnd(l *login, _ *protocol.Query) (*Session, bool) {
	l.refuse(reasonEndAccepted)
	return nil, true
}

// beforeAuth checks the password and, if it is right, registers the
// session.
func beforeAuth(l *login, q *protocol.Query) (*Session, bool) {
	s := l.srv
	name := string(q.User)
	if r := s.checkLogin(l.ctx, l.p.addr, name, q.Password); r != reasonNone {
		if r == reasonBadLogin {
			s.stats.LoginsFailed.Add(1)
		} else {
			s.stats.LoginsRefused.Add(1)
		}
		l.refuse(r, "user", name)
		return nil, true
	}
	if s.userBanned(name) {
		// Only after a right password: a wrong one got the usual
		// answer, so a ban tells nobody that the account exists.
		s.stats.LoginsRefused.Add(1)
		l.refuse(reasonBanned, "user", name)
		return nil, true
	}
	return l.startSession(name)
}

// startSession registers the session of a login that succeeded.
func (l *login) startSession(name string) (*Session, bool) {
	s := l.srv
	if f := s.afterVerify.Load(); f != nil {
		(*f)(name)
	}
	sess := s.newSession(l.t, l.rd, name, l.p.addr, l.p.remote, l.version)
	if !s.register(sess) {
		// The account was removed while its password was checked.
		s.stats.LoginsFailed.Add(1)
		l.refuse(reasonBadLogin, "user", name)
		return nil, true
	}
	return sess, true
}

// checkLogin checks a password, with the address's throttle around it.
// It returns reasonNone on success, or why the login is refused.
func (s *Server) checkLogin(ctx context.Context, addr, name string, password []byte) closeReason {
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
	if s.local.Len() >= s.cfg.MaxSessions && s.local.Lookup([]byte(name)) == nil {
		return reasonServerFull
	}
	return reasonNone
}

// newSession makes the session of a connection whose login succeeded.
func (s *Server) newSession(t Transport, rd *protocol.Reader, name, addr, remote string, version int) *Session {
	sess := &Session{
		srv:     s,
		conn:    t,
		rd:      rd,
		name:    name,
		addr:    addr,
		remote:  remote,
		since:   s.cfg.Now(),
		version: version,
	}
	sess.q.bound = s.cfg.MaxQueue
	sess.writer = sess.writeLoop
	sess.q.out = reserve(nil, shortLine, false)
	sess.q.out.b = protocol.AppendAccept(sess.q.out.b, sess.name)
	sess.whoTokens = whoBurst
	sess.stats = &s.stats
	return sess
}

// register makes sess the session of its user, replacing an older one,
// unless the user is no longer in the table. It holds the table's lock
// for reading: a reload that removes the user either runs before (and
// the login is refused here) or after (and walks this session). A
// version-2 session takes over the groups and the watch list of the
// session it replaces, silently.
func (s *Server) register(sess *Session) bool {
	s.tableMu.RLock()
	defer s.tableMu.RUnlock()
	if !s.users.Load().Has(sess.name) {
		return false
	}
	if old := s.local.register(sess); old != nil {
		// The state is taken before the old session is closed: once
		// closed, its reader ends and would leave its groups.
		if sess.version >= 2 {
			s.handOver(old, sess)
		}
		old.close(reasonReplaced)
	}
	return true
}

// startSession answers ACCEPT to a registered session and starts its
// reader and writer.
func (s *Server) startSession(sess *Session, rd *protocol.Reader) {
	_ = sess.conn.SetReadDeadline(time.Time{})
	_ = sess.conn.SetWriteDeadline(time.Time{})
	s.readers.Add(1)
	s.stats.LoginsOK.Add(1)
	s.cfg.Logger.Info("logged in", "user", sess.name, "remote", sess.remote, "version", sess.version)
	sess.nudge()
	if s.stopping.Load() {
		// Shutdown began while this login was finishing and may not have
		// seen the session.
		sess.close(reasonShutdown)
		sess.leaveAll()
		s.readers.Done()
		return
	}
	go sess.readLoop(rd)
}
