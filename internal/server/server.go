// Package server is the messager server: it accepts TLS connections, logs
// users in against the user table, relays their messages through the hub
// and closes sessions that break the protocol, fall behind or go silent.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/users"
)

// Config is the server's configuration. Zero fields take the defaults
// below.
type Config struct {
	// TLS is the server's TLS configuration; it must hold a certificate or
	// a GetCertificate function.
	TLS *tls.Config
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
	tls      *tls.Config
	dir      Directory
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

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	pending   map[net.Conn]struct{} // connections not yet logged in

	conns   sync.WaitGroup // connection goroutines before login
	readers sync.WaitGroup
	writers sync.WaitGroup
	loops   sync.WaitGroup
}

// New returns a server for cfg. It starts the liveness checker; call
// Serve to accept connections and Shutdown to stop.
func New(cfg Config) (*Server, error) {
	if cfg.TLS == nil {
		return nil, errors.New("server: no TLS configuration")
	}
	if cfg.Users == nil {
		return nil, errors.New("server: no user table")
	}
	cfg.setDefaults()
	if cfg.MaxQueue < MinMaxQueue {
		return nil, fmt.Errorf("server: the queue bound must be at least %d bytes (what one read of a sender can queue), not %d", MinMaxQueue, cfg.MaxQueue)
	}
	tc := cfg.TLS.Clone()
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if tc.CipherSuites == nil {
		// TLS 1.2 gets AEAD suites with forward secrecy only (no CBC:
		// LUCKY13 and its kin); TLS 1.3 suites are not configurable
		// and are all AEAD.
		tc.CipherSuites = aeadSuites
	}
	// Large records cost less per byte; a chat relay has no first-paint
	// latency to protect.
	tc.DynamicRecordSizingDisabled = true
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		tls:       tc,
		dir:       newHub(),
		throttle:  newThrottle(cfg.Throttle, cfg.Now),
		logs:      newLogLimiter(time.Second, cfg.Now),
		unauth:    connLimiter{max: cfg.MaxUnauthPerAddr, byAddr: make(map[string]int)},
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		pending:   make(map[net.Conn]struct{}),
	}
	s.users.Store(cfg.Users)
	s.loops.Add(1)
	go s.checkLoop()
	return s, nil
}

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
func (s *Server) Online() int { return s.dir.Len() }

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown and the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: stop accepting for
				// a moment, then go on, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logs.log(s.cfg.Logger, slog.LevelWarn, "accept", "accept failed; pausing", "err", err, "pause", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.conns.Add(1)
		go s.serveConn(conn)
	}
}

// SetUsers replaces the user table. Sessions of users no longer in it are
// closed with END <account removed>; other sessions go on.
func (s *Server) SetUsers(t *users.Table) {
	s.tableMu.Lock()
	defer s.tableMu.Unlock()
	s.users.Store(t)
	for _, sess := range s.dir.Sessions() {
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
			for i, sess := range s.dir.Sessions() {
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
			// large burst, collect once and give the memory back, so
			// what the server holds is what its sessions need.
			if n := s.stats.LoginsOK.Load(); n-settledAt >= settleAfterLogins {
				settledAt = n
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
	for ln := range s.listeners {
		ln.Close()
	}
	// Connections not logged in yet get a moment to finish their TLS
	// handshake, so they can be told why they are closed.
	now := time.Now()
	for c := range s.pending {
		_ = c.SetDeadline(now.Add(pendingGrace))
	}
	s.mu.Unlock()
	s.cancel()
	s.loops.Wait() // no CHECK may start a writer once we wait for writers

	sessions := s.dir.Sessions()
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
		for _, sess := range s.dir.Sessions() {
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

// aeadSuites are the TLS 1.2 suites the server offers.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
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
