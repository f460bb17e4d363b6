package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLimiter keeps a flood of like events (refused connections, failed
// accepts) from flooding the log: each key logs at most one line per
// interval, and the next line it logs says how many were left out.
type logLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*limitedKey // guarded by mu
}

type limitedKey struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(interval time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{interval: interval, now: now, keys: make(map[string]*limitedKey)}
}

// log writes msg at level unless a line of the same key was written less
// than the interval ago, in which case it only counts it.
func (l *logLimiter) log(log *slog.Logger, level slog.Level, key, msg string, attrs ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	now := l.now()
	l.mu.Lock()
	k := l.keys[key]
	if k == nil {
		if len(l.keys) > maxLimitedKeys {
			clear(l.keys)
		}
		k = &limitedKey{}
		l.keys[key] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < l.interval {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	k.last = now
	suppressed := k.suppressed
	k.suppressed = 0
	l.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "repeated", suppressed)
	}
	log.Log(context.Background(), level, msg, attrs...)
}

// maxLimitedKeys bounds the limiter's table; keys are a few kinds of
// event, so this is never reached in practice.
const maxLimitedKeys = 1024
