package server

import (
	"errors"
	"sync"
	"time"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/users"
)

// SignupMode says whether users may make their own accounts (PUT).
type SignupMode uint8

// Sign-up modes.
const (
	// SignupOff: no sign-up; PUT is a protocol error.
	SignupOff SignupMode = iota
	// SignupInvite: sign-up with an invite the operator made.
	SignupInvite
	// SignupOpen: anyone may sign up.
	SignupOpen
)

// Accounts makes accounts for sign-up. The glue implements it over the
// user file and the invites; the engine checks the request first.
type Accounts interface {
	// Create makes the account name with password, using up invite
	// (empty on an open server), and puts it in the server's user table
	// (SetUsers) before it returns. It returns ErrNameTaken when the
	// name exists (ignoring case) and ErrInvalidInvite when the invite is
	// unknown, used up or expired.
	Create(name string, password []byte, invite string) error
}

// Errors an Accounts returns.
var (
	ErrNameTaken     = users.ErrNameTaken
	ErrInvalidInvite = errors.New("invalid invite")
)

// Sign-up limits: per address and per server, each over its window.
const (
	DefaultSignupsPerAddr   = 3
	DefaultSignupAddrWindow = time.Hour
	DefaultSignupsPerServer = 30
	DefaultSignupWindow     = 10 * time.Minute
	maxSignupTries          = 3
)

// signupLimiter counts sign-ups over sliding windows.
type signupLimiter struct {
	mu     sync.Mutex // guards the fields below
	byAddr map[string][]time.Time
	all    []time.Time
}

// allow reports whether addr may sign up now, and counts it if so.
func (l *signupLimiter) allow(addr string, now time.Time, cfg *Config) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr == nil {
		l.byAddr = make(map[string][]time.Time)
	}
	recent := func(ts []time.Time, window time.Duration) []time.Time {
		i := 0
		for i < len(ts) && now.Sub(ts[i]) >= window {
			i++
		}
		return ts[i:]
	}
	l.all = recent(l.all, cfg.SignupWindow)
	mine := recent(l.byAddr[addr], cfg.SignupAddrWindow)
	if len(mine) >= cfg.SignupsPerAddr || len(l.all) >= cfg.SignupsPerServer {
		l.byAddr[addr] = mine
		return false
	}
	l.all = append(l.all, now)
	l.byAddr[addr] = append(mine, now)
	if len(l.byAddr) > 10_000 {
		for a, ts := range l.byAddr {
			if len(recent(ts, cfg.SignupAddrWindow)) == 0 {
				delete(l.byAddr, a)
			}
		}
	}
	return true
}

// beforePut handles a sign-up. A failed one is answered TRY <reason> and
// the connection stays open; the third is followed by END <too many
// attempts>. A successful one logs the new user in.
func beforePut(l *login, q *protocol.Query) (*Session, bool) {
	s := l.srv
	accounts := s.accountMaker()
	if s.cfg.Signup == SignupOff || accounts == nil {
		l.refuse(reasonProtocol)
		return nil, true
	}
	name, invite := string(q.User), string(q.Invite)
	reason := ""
	switch {
	case !protocol.ValidName(q.User):
		reason = protocol.ReasonInvalidName
	case users.Reserved(name):
		reason = protocol.ReasonReservedName
	case len(q.Password) < protocol.MinSignupPassword:
		reason = protocol.ReasonPasswordTooShort
	case s.cfg.Signup == SignupInvite && invite == "":
		reason = protocol.ReasonInviteRequired
	case !s.signups.allow(l.p.addr, s.cfg.Now(), &s.cfg):
		reason = protocol.ReasonTooManySignups
	}
	if reason == "" {
		if s.cfg.Signup == SignupOpen {
			invite = ""
		}
		err := accounts.Create(name, q.Password, invite)
		switch {
		case err == nil:
			s.stats.Signups.Add(1)
			s.cfg.Logger.Info("signed up", "user", name, "remote", l.p.remote, "invite", invite != "")
			return l.startSession(name)
		case errors.Is(err, ErrNameTaken):
			reason = protocol.ReasonNameTaken
		case errors.Is(err, ErrInvalidInvite):
			reason = protocol.ReasonInvalidInvite
		default:
			s.cfg.Logger.Error("sign-up failed", "user", name, "remote", l.p.remote, "err", err)
			l.refuse(reasonServerFull)
			return nil, true
		}
	}
	l.tries++
	s.stats.SignupsRefused.Add(1)
	s.cfg.Logger.Info("sign-up refused", "user", name, "remote", l.p.remote, "reason", reason)
	if _, err := l.t.Write(protocol.AppendTry(nil, reason)); err != nil {
		return nil, true
	}
	if l.tries >= maxSignupTries {
		l.refuse(reasonTooManyAttempts)
		return nil, true
	}
	return nil, false
}
