package client

import (
	"context"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff paces reconnection attempts: exponential waits from Min to Max,
// each drawn at random from its upper half so that many clients dropped
// at once do not come back at once. Every attempt waits, however the
// session before it ended: a server that accepts a login and drops the
// session at once must not get a login storm. The waits start again from
// Min only after a session lasted Stable. The zero value uses the
// defaults and the real clock.
type Backoff struct {
	// Min is the first wait, Max the cap.
	Min, Max time.Duration
	// Stable is how long a session must last for the waits to start again
	// from Min; zero means DefaultStable.
	Stable time.Duration
	// Rand returns a number in [0, 1); nil means math/rand.
	Rand func() float64
	// Now and Sleep are the clock; nil means the real one. Sleep returns
	// early with ctx's error when ctx ends.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	attempt int
	up      time.Time // when the current session started; zero when none is known
}

// Default backoff bounds.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// DefaultStable is how long a session must last to reset the waits:
	// a full default check interval, so that the server has shown it is
	// alive at least once.
	DefaultStable = DefaultCheckInterval
)

// Next returns the wait before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 0; i < b.attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	b.attempt++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	// Jitter in [d/2, d): never zero, never above the cap.
	return d/2 + time.Duration(r()*float64(d/2))
}

// Attempts returns how many waits Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset starts again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }

// Up records that a session started now. Reconnect calls it after a
// successful attempt; a front end calls it for its first connection.
func (b *Backoff) Up() { b.up = b.now() }

// down is called when the session recorded by Up has ended: a session
// that lasted Stable proves the server works, so the waits start again
// from Min.
func (b *Backoff) down() {
	if b.up.IsZero() {
		return
	}
	stable := b.Stable
	if stable <= 0 {
		stable = DefaultStable
	}
	if b.now().Sub(b.up) >= stable {
		b.Reset()
	}
	b.up = time.Time{}
}

func (b *Backoff) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backoff) sleep(ctx context.Context, d time.Duration) error {
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retryable reports whether connecting again may help after err: true for
// network failures and for an END that may pass later (server shutting
// down, server full), false for a refused login, a certificate that failed
// verification, or a cancelled context. A round over several servers that
// found none (a *ServersError) is retryable when some server failed for a
// reason that may pass.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var servers *ServersError
	if errors.As(err, &servers) {
		return servers.retryable()
	}
	var end *EndError
	if errors.As(err, &end) {
		return !end.Refused()
	}
	var name *NameError
	if errors.As(err, &name) {
		return false
	}
	var verify *x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verify) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return false
	}
	var permanent interface{ Permanent() bool }
	if errors.As(err, &permanent) && permanent.Permanent() {
		return false
	}
	return true
}

// Reconnect connects again after a session ended: it waits b.Next(), then
// calls connect, until connect succeeds, ctx ends, or connect fails with
// an error that is not Retryable. With several servers, connect is one
// round over them (Servers.Connect): the wait comes before each round,
// not between its servers, so that no server is tried more often than a
// single one would be. After each failed attempt it calls
// notify, when not nil, with the failure and the wait before the next.
// The waits start again from Min when the session that ended lasted
// b.Stable; on success the new session is recorded with b.Up.
func Reconnect(ctx context.Context, b *Backoff, connect func(context.Context) (*Conn, error), notify func(err error, wait time.Duration)) (*Conn, error) {
	b.down()
	wait := b.Next()
	for {
		if err := b.sleep(ctx, wait); err != nil {
			return nil, err
		}
		c, err := connect(ctx)
		if err == nil {
			b.Up()
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !Retryable(err) {
			return nil, err
		}
		wait = b.Next()
		if notify != nil {
			notify(err, wait)
		}
	}
}
