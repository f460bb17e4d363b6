package client

import (
	"context"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff computes waits between reconnection attempts: exponential from
// Min to Max, each wait drawn at random from its upper half so that many
// clients dropped at once do not come back at once. The zero value uses
// DefaultMinBackoff and DefaultMaxBackoff.
type Backoff struct {
	// Min is the first wait, Max the cap.
	Min, Max time.Duration
	// Rand returns a number in [0, 1); nil means math/rand.
	Rand func() float64

	attempt int
}

// Default backoff bounds.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
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

// Reset starts again from Min, after a connection that worked.
func (b *Backoff) Reset() { b.attempt = 0 }

// Retryable reports whether connecting again may help after err: true for
// network failures and for an END that may pass later (server shutting
// down, server full), false for a refused login, a certificate that failed
// verification, or a cancelled context.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
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

// Reconnect calls connect until it succeeds, ctx ends, or it fails with an
// error that is not Retryable, waiting b.Next() between attempts. Before
// each wait it calls notify, when not nil, with the failure and the wait.
// On success it resets b.
func Reconnect(ctx context.Context, b *Backoff, connect func(context.Context) (*Conn, error), notify func(err error, wait time.Duration)) (*Conn, error) {
	for {
		c, err := connect(ctx)
		if err == nil {
			b.Reset()
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !Retryable(err) {
			return nil, err
		}
		wait := b.Next()
		if notify != nil {
			notify(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
