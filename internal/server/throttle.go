package server

import (
	"sync"
	"time"
)

// ThrottleConfig sets how failed logins from one address are slowed down
// and then refused.
type ThrottleConfig struct {
	// FreeFailures is how many failures in a window are answered at once.
	FreeFailures int
	// MaxAttempts is how many logins (failed or still being checked) one
	// address may have in a window before it is blocked.
	MaxAttempts int
	// Window is the period over which failures are counted.
	Window time.Duration
	// Block is how long a blocked address is refused.
	Block time.Duration
	// Delay is added per failure past FreeFailures, up to MaxDelay, before
	// the failure is answered.
	Delay, MaxDelay time.Duration
}

// DefaultThrottle lets about ten password guesses a minute through from
// one address.
var DefaultThrottle = ThrottleConfig{
	FreeFailures: 3,
	MaxAttempts:  10,
	Window:       time.Minute,
	Block:        time.Minute,
	Delay:        250 * time.Millisecond,
	MaxDelay:     2 * time.Second,
}

// throttle tracks login attempts per remote address (not per port, so
// reconnecting does not reset it).
type throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu     sync.Mutex
	byAddr map[string]*loginAttempts
}

type loginAttempts struct {
	windowStart  time.Time
	failures     int
	inFlight     int
	blockedUntil time.Time
}

func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	return &throttle{cfg: cfg, now: now, byAddr: make(map[string]*loginAttempts)}
}

// begin is called when an AUTH arrives; false means refuse it with
// END <too many attempts> without checking the password. Attempts still
// being checked count, so a storm of concurrent logins is refused before
// it reaches the password hasher.
func (t *throttle) begin(addr string) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.byAddr[addr]
	if a == nil {
		a = &loginAttempts{windowStart: now}
		t.byAddr[addr] = a
	}
	if now.Before(a.blockedUntil) {
		return false
	}
	if now.Sub(a.windowStart) > t.cfg.Window {
		a.windowStart, a.failures = now, 0
	}
	if a.failures+a.inFlight >= t.cfg.MaxAttempts {
		// Refuse this one, but block the address only for failures (fail
		// does that): logins merely in flight at once may all be good
		// ones, from users behind one NAT reconnecting together.
		return false
	}
	a.inFlight++
	return true
}

// fail records a failed login and returns how long to wait before
// answering it.
func (t *throttle) fail(addr string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.byAddr[addr]
	if a == nil {
		return 0
	}
	a.inFlight--
	a.failures++
	if a.failures >= t.cfg.MaxAttempts {
		a.blockedUntil = now.Add(t.cfg.Block)
	}
	extra := a.failures - t.cfg.FreeFailures
	if extra <= 0 {
		return 0
	}
	return min(time.Duration(extra)*t.cfg.Delay, t.cfg.MaxDelay)
}

// succeed records a successful (or abandoned) login check.
func (t *throttle) succeed(addr string) {
	t.mu.Lock()
	if a := t.byAddr[addr]; a != nil && a.inFlight > 0 {
		a.inFlight--
	}
	t.mu.Unlock()
}

// prune forgets addresses with nothing recent, so the table stays small.
func (t *throttle) prune() {
	now := t.now()
	t.mu.Lock()
	for addr, a := range t.byAddr {
		if a.inFlight == 0 && now.After(a.blockedUntil) && now.Sub(a.windowStart) > t.cfg.Window {
			delete(t.byAddr, addr)
		}
	}
	t.mu.Unlock()
}

// connLimiter counts unauthenticated connections per address.
type connLimiter struct {
	max    int
	mu     sync.Mutex
	byAddr map[string]int
}

func (l *connLimiter) acquire(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.byAddr[addr] >= l.max {
		return false
	}
	l.byAddr[addr]++
	return true
}

func (l *connLimiter) release(addr string) {
	l.mu.Lock()
	if n := l.byAddr[addr]; n <= 1 {
		delete(l.byAddr, addr)
	} else {
		l.byAddr[addr] = n - 1
	}
	l.mu.Unlock()
}
