package servertest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
)

// Logs collects a server's logs so a test can wait for a line.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Logs) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *Logs) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a text logger writing to b.
func (b *Logs) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// LastLine returns the last line logged that contains sub.
func (b *Logs) LastLine(sub string) string {
	var last string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, sub) {
			last = l
		}
	}
	return last
}

// WithLogs sends the server's logs to b.
func WithLogs(b *Logs) Option {
	return func(c *server.Config) { c.Logger = b.Logger() }
}

// WaitFor polls cond until it holds, failing the test after a few
// seconds. It is for state that has no event to wait on (counters, log
// lines, the number of users online).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
