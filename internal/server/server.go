// Package server is messager's relay engine: it logs connections in
// against the user table, over any line transport, relays their messages
// to one another (or, through a Router, to other nodes), keeps presence
// and groups, and closes sessions that break the protocol, fall behind or
// go silent. It knows nothing of TLS, HTTP, files or metrics: the
// listen package brings it connections, and the glue around it (reload,
// metrics) feeds it tables and reads its counters.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/users"
)

// Config is the server's configuration. Zero fields take the defaults
// below.
type Config struct {
	// Users is the user table at start; SetUsers replaces it.
	Users *users.Table
	// Checker checks passwords in bounded parallelism.
	Checker *users.Checker
	// CheckInterval is how often each session is sent CHECK.
	CheckInterval time.Duration
	// WriteTimeout bounds every write to a client.
	WriteTimeout time.Duration
	// LoginTimeout bounds the TLS handshake and AUTH together.
	LoginTimeout time.Duration
	// SlowCloseTimeout bounds the best-effort END to a slow receiver.
	SlowCloseTimeout time.Duration
	// MaxQueue is the bound, in bytes, of each session's send queue.
	MaxQueue int
	// MaxSessions is the most users online at once.
	MaxSessions int
	// MaxUnauthPerAddr is the most connections one address may have open
	// before logging in.
	MaxUnauthPerAddr int
	// MaxPending is the most connections, from all addresses together,
	// that may be open before logging in; more are closed at once. Zero
	// derives it from the open-file limit (an eighth of it).
	MaxPending int
	// FileReserve is how many open files the server keeps free for
	// logged-in users, the metrics endpoint and its own files: no new
	// connection is taken while fewer are left. Zero derives it from the
	// open-file limit.
	FileReserve int
	// FileLimit is the open-file limit the caps are derived from; zero
	// reads the process's own.
	FileLimit int
	// NoPresence switches WHO and WATCH off.
	NoPresence bool
	// PresenceInterval is how often presence changes are told to
	// watchers; changes within one interval are coalesced.
	PresenceInterval time.Duration
	// MaxWatch is the most names one session may watch.
	MaxWatch int
	// Groups says which groups may be used.
	Groups GroupMode
	// GroupList is the operator's listed groups; SetGroups replaces it.
	GroupList *groups.Table
	// MaxGroups is the most groups one user may be in; MaxMembers the
	// most members one group may have.
	MaxGroups, MaxMembers int
	// Signup says whether users may make their own accounts; Accounts
	// makes them.
	Signup   SignupMode
	Accounts Accounts
	// SignupsPerAddr sign-ups are allowed from one address per
	// SignupAddrWindow, and SignupsPerServer from all per SignupWindow.
	SignupsPerAddr, SignupsPerServer int
	SignupAddrWindow, SignupWindow   time.Duration
	// Router finds where a message's target is online; nil means this
	// server's own sessions only.
	Router Router
	// Cluster, if set, is the other nodes this server runs with; it is
	// the Router too, and is told of logins and group changes here.
	Cluster Cluster
	// Throttle slows down and refuses repeated failed logins.
	Throttle ThrottleConfig
	// Logger receives the server's logs.
	Logger *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultCheckInterval    = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultLoginTimeout     = 10 * time.Second
	DefaultSlowCloseTimeout = time.Second
	DefaultMaxQueue         = 1 << 20
	// MinMaxQueue is the smallest queue bound: what one network read of a
	// sender can queue on one target. A read is at most 32 KiB of MSG
	// lines, which grow by up to 40% as RELAY lines (the shortest MSG,
	// 10 bytes, becomes a 14-byte RELAY), plus one longest server line;
	// a smaller bound would close a receiver that reads promptly.
	MinMaxQueue             = 64 << 10
	DefaultMaxSessions      = 100_000
	DefaultMaxUnauthPerAddr = 64
	DefaultPresenceInterval = 500 * time.Millisecond
	DefaultMaxWatch         = 100
	DefaultMaxGroups        = 20
	DefaultMaxMembers       = 500
	// DefaultMaxPending is MaxPending when the open-file limit is unknown.
	DefaultMaxPending = 1024
	minPending        = 64
	minFileReserve    = 64
)

func (c *Config) setDefaults() {
	if c.CheckInterval <= 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = DefaultLoginTimeout
	}
	if c.SlowCloseTimeout <= 0 {
		c.SlowCloseTimeout = DefaultSlowCloseTimeout
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxUnauthPerAddr <= 0 {
		c.MaxUnauthPerAddr = DefaultMaxUnauthPerAddr
	}
	if c.FileLimit <= 0 {
		c.FileLimit = openFileLimit()
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
		if c.FileLimit > 0 {
			c.MaxPending = max(minPending, c.FileLimit/8)
		}
	}
	if c.FileReserve <= 0 && c.FileLimit > 0 {
		c.FileReserve = max(minFileReserve, c.FileLimit/50)
	}
	if c.PresenceInterval <= 0 {
		c.PresenceInterval = DefaultPresenceInterval
	}
	if c.MaxWatch <= 0 {
		c.MaxWatch = DefaultMaxWatch
	}
	if c.MaxGroups <= 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	if c.MaxMembers <= 0 {
		c.MaxMembers = DefaultMaxMembers
	}
	if c.SignupsPerAddr <= 0 {
		c.SignupsPerAddr = DefaultSignupsPerAddr
	}
	if c.SignupsPerServer <= 0 {
		c.SignupsPerServer = DefaultSignupsPerServer
	}
	if c.SignupAddrWindow <= 0 {
		c.SignupAddrWindow = DefaultSignupAddrWindow
	}
	if c.SignupWindow <= 0 {
		c.SignupWindow = DefaultSignupWindow
	}
	if c.GroupList == nil {
		c.GroupList = groups.Empty()
	}
	if c.Throttle == (ThrottleConfig{}) {
		c.Throttle = DefaultThrottle
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Checker == nil {
		c.Checker = users.NewChecker(0)
	}
}

// Server relays messages between logged-in users.
type Server struct {
	cfg      Config
	local    *Registry // who is online here
	router   Router    // where a target is online: here, elsewhere, nowhere
	presence *presence
	groups   groupTable
	listed   atomic.Pointer[groups.Table]
	bans     atomic.Pointer[BanList]
	accounts atomic.Pointer[Accounts]
	signups  signupLimiter
	users    atomic.Pointer[users.Table]
	stats    Stats
	throttle *throttle
	unauth   connLimiter
	logs     *logLimiter

	stopping atomic.Bool
	done     chan struct{} // closed when shutdown starts
	stopped  chan struct{} // closed when shutdown ends
	ctx      context.Context
	cancel   context.CancelFunc

	// tableMu orders swaps of the user table against registrations: a
	// swap (write) walks the sessions, a registration (read) checks the
	// table, so no session of a removed user survives a reload.
	tableMu sync.RWMutex
	// afterVerify, set by tests, runs between a login's password check
	// and its registration.
	afterVerify atomic.Pointer[func(name string)]

	mu      sync.Mutex           // guards pending
	pending map[RawConn]struct{} // connections not yet logged in

	conns   sync.WaitGroup // connection goroutines before login
	readers sync.WaitGroup
	writers sync.WaitGroup
	loops   sync.WaitGroup
}

// New returns a server for cfg. It starts the liveness checker and the
// presence notifier; hand it connections with Admit, and call Shutdown to
// stop.
func New(cfg Config) (*Server, error) {
	if cfg.Users == nil {
		return nil, errors.New("server: no user table")
	}
	cfg.setDefaults()
	if cfg.MaxQueue < MinMaxQueue {
		return nil, fmt.Errorf("server: the queue bound must be at least %d bytes (what one read of a sender can queue), not %d", MinMaxQueue, cfg.MaxQueue)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		local:    newRegistry(),
		throttle: newThrottle(cfg.Throttle, cfg.Now),
		logs:     newLogLimiter(time.Second, cfg.Now),
		unauth:   connLimiter{max: cfg.MaxUnauthPerAddr, byAddr: make(map[string]int)},
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		pending:  make(map[RawConn]struct{}),
	}
	s.groups.byKey = make(map[string]*group)
	s.router = cfg.Router
	if cfg.Cluster != nil {
		s.router = cfg.Cluster
		s.local.onLogin, s.local.onLogout = cfg.Cluster.LoggedIn, cfg.Cluster.LoggedOut
	}
	if s.router == nil {
		s.router = s.local
	}
	s.presence = newPresence(s, cfg.PresenceInterval)
	if !cfg.NoPresence {
		s.local.onChange = s.presence.noteChange
	}
	s.users.Store(cfg.Users)
	s.listed.Store(cfg.GroupList)
	s.loops.Add(2)
	go s.checkLoop()
	go func() {
		defer s.loops.Done()
		s.presence.run(s.done)
	}()
	return s, nil
}

// Local is the registry of the sessions on this server, for a Router
// that stands in front of it.
func (s *Server) Local() *Registry { return s.local }

// Done is closed when shutdown starts: transports stop accepting.
func (s *Server) Done() <-chan struct{} { return s.done }

// features are what this server offers a version-2 session.
func (s *Server) features() protocol.Features {
	var f protocol.Features
	if !s.cfg.NoPresence {
		f.Presence = s.cfg.MaxWatch
	}
	if s.cfg.Groups != GroupsOff {
		f.Groups, f.Members = s.cfg.MaxGroups, s.cfg.MaxMembers
	}
	if s.accountMaker() != nil {
		switch s.cfg.Signup {
		case SignupInvite:
			f.Signup = protocol.SignupInvite
		case SignupOpen:
			f.Signup = protocol.SignupOpen
		}
	}
	return f
}

// online reports whether name is online anywhere the router knows.
func (s *Server) online(name []byte) bool {
	r := s.router.Route(name)
	return r.Local != nil || r.Remote != nil
}

// SetGroups replaces the operator's list of groups. It applies to joins
// from now on; members of a group who may no longer join it stay until
// they leave.
func (s *Server) SetGroups(t *groups.Table) {
	if t == nil {
		t = groups.Empty()
	}
	s.listed.Store(t)
}

// Groups returns the groups that exist now, each with its member count.
func (s *Server) Groups() map[string]int { return s.groups.snapshot() }

// WatchEntries reports how many names are watched, over all sessions.
func (s *Server) WatchEntries() int { return s.presence.watchEntries() }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.cfg.Logger }

// Users returns the current user table.
func (s *Server) Users() *users.Table { return s.users.Load() }

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Pending reports how many connections are open but not logged in yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Online reports how many users are logged in.
func (s *Server) Online() int { return s.local.Len() }

// SetUsers replaces the user table. Sessions of users no longer in it are
// closed with END <account removed>; other sessions go on.
func (s *Server) SetUsers(t *users.Table) {
	s.tableMu.Lock()
	defer s.tableMu.Unlock()
	s.users.Store(t)
	for _, sess := range s.local.Sessions() {
		if !t.Has(sess.name) {
			sess.close(reasonAccountRemoved)
		}
	}
}

// checkLoop is the liveness checker: it sends CHECK to every session
// each interval. A session whose peer is gone fails the write (or its
// deadline) and closes.
func (s *Server) checkLoop() {
	defer s.loops.Done()
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	settledAt := int64(0) // LoginsOK at the last memory settle
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			// A writer starts for each CHECK; a pause after each batch
			// lets them finish, so a round over many thousand idle
			// sessions never holds thousands of writers (and their
			// stacks) at once.
			for i, sess := range s.local.Sessions() {
				sess.enqueue(protocol.AppendCheck)
				if i%checkBatch == checkBatch-1 {
					select {
					case <-s.done:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}
			s.throttle.prune()
			// A burst of logins leaves garbage and grown goroutine
			// stacks behind (a TLS handshake is deep and allocates),
			// and an idle server may not collect for minutes. After a
			// large burst, collect and give the memory back, so what
			// the server holds is what its sessions need. Twice: the
			// first collection only moves the buffer pools' contents
			// (the read and send buffers a burst of thousands of
			// sessions borrowed at once) to their victim caches, and
			// the second frees them; each also halves the stacks that
			// grew deeper than they now need.
			if n := s.stats.LoginsOK.Load(); n-settledAt >= settleAfterLogins {
				settledAt = n
				runtime.GC()
				debug.FreeOSMemory()
			}
		}
	}
}

// Shutdown stops the server (a second call waits for the first): it stops accepting, stops reading from every
// session (so every message read so far is queued or answered with CNT),
// sends END <server shutting down> after what is queued, and waits for the
// writers to flush until ctx ends, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping.Swap(true) {
		s.mu.Unlock()
		<-s.stopped
		return nil
	}
	defer close(s.stopped)
	close(s.done)
	// Connections not logged in yet get a moment to finish their TLS
	// handshake, so they can be told why they are closed.
	now := time.Now()
	for c := range s.pending {
		_ = c.SetDeadline(now.Add(pendingGrace))
	}
	s.mu.Unlock()
	s.cancel()
	s.loops.Wait() // no CHECK may start a writer once we wait for writers

	sessions := s.local.Sessions()
	for _, sess := range sessions {
		_ = sess.conn.SetReadDeadline(now)
	}
	err := waitCtx(ctx, &s.readers)
	for _, sess := range sessions {
		sess.close(reasonShutdown)
	}
	if err == nil {
		err = waitCtx(ctx, &s.writers)
	}
	if err != nil {
		for _, sess := range s.local.Sessions() {
			sess.conn.Close()
		}
		for _, sess := range sessions {
			sess.conn.Close()
		}
	}
	s.conns.Wait()
	s.readers.Wait()
	s.writers.Wait()
	s.loops.Wait()
	return err
}

// settleAfterLogins is how many logins since the last settle make the
// liveness checker collect garbage and return memory to the system.
const settleAfterLogins = 1000

// checkBatch is how many sessions get their CHECK before the checker
// pauses for the writers.
const checkBatch = 256

// pendingGrace is how long Shutdown lets connections that are not logged
// in finish their handshake.
const pendingGrace = 500 * time.Millisecond

// waitCtx waits for wg or ctx, whichever is first.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}

// LogLimited logs msg at level, at most once a second for each key (the
// next line says how many were left out): for floods of like events at
// the edge, such as failed accepts.
func (s *Server) LogLimited(level slog.Level, key, msg string, attrs ...any) {
	s.logs.log(s.cfg.Logger, level, key, msg, attrs...)
}

// GroupList returns the operator's listed groups.
func (s *Server) GroupList() *groups.Table { return s.listed.Load() }

// SetAccounts sets what makes accounts for sign-up, when it could not be
// given in Config (it needs the server itself).
func (s *Server) SetAccounts(a Accounts) { s.accounts.Store(&a) }

func (s *Server) accountMaker() Accounts {
	if p := s.accounts.Load(); p != nil {
		return *p
	}
	return s.cfg.Accounts
}
