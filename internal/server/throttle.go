package server

import (
	"context"
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
	waiting      int
	changed      chan struct{} // closed and replaced when an attempt ends
	blockedUntil time.Time
}

func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	return &throttle{cfg: cfg, now: now, byAddr: make(map[string]*loginAttempts)}
}

// begin is called when an AUTH arrives; false means refuse it with
// END <too many attempts> without checking the password. Logins still
// being checked count with the failures: once they reach MaxAttempts, a
// new login waits until one of them is answered, then tries again. So a
// storm of wrong passwords reaches the hasher at most MaxAttempts times a
// window, while many good logins at once from one address (users behind
// one NAT) only queue. The wait ends with ctx.
func (t *throttle) begin(ctx context.Context, addr string) bool {
	for {
		now := t.now()
		t.mu.Lock()
		a := t.byAddr[addr]
		if a == nil {
			a = &loginAttempts{windowStart: now, changed: make(chan struct{})}
			t.byAddr[addr] = a
		}
		if now.Before(a.blockedUntil) {
			t.mu.Unlock()
			return false
		}
		if now.Sub(a.windowStart) > t.cfg.Window {
			a.windowStart, a.failures = now, 0
		}
		if a.failures+a.inFlight < t.cfg.MaxAttempts {
			a.inFlight++
			t.mu.Unlock()
			return true
		}
		changed := a.changed
		a.waiting++
		t.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
		t.mu.Lock()
		a.waiting--
		t.mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
	}
}

// settle ends an attempt in flight and wakes the logins waiting on it.
// t.mu is held.
func (a *loginAttempts) settle() {
	if a.inFlight > 0 {
		a.inFlight--
	}
	close(a.changed)
	a.changed = make(chan struct{})
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
	a.settle()
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
	if a := t.byAddr[addr]; a != nil {
		a.settle()
	}
	t.mu.Unlock()
}

// prune forgets addresses with nothing recent, so the table stays small.
func (t *throttle) prune() {
	now := t.now()
	t.mu.Lock()
	for addr, a := range t.byAddr {
		if a.inFlight == 0 && a.waiting == 0 && now.After(a.blockedUntil) && now.Sub(a.windowStart) > t.cfg.Window {
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
