package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
)

// These tests run the client against a double of the original server,
// which reads one TLS record as one query and sends CHECK without a line
// end.

var seedUsers = seedserver.Users{"alice": "pw1", "bob": "pw2"}

func seedTLS(s *seedserver.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func dialSeed(t *testing.T, s *seedserver.Server, user string, opts client.Options) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialOptions(ctx, s.Addr, seedTLS(s), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Login(ctx, user, seedUsers[user])
}

func mustDialSeed(t *testing.T, s *seedserver.Server, user string, opts client.Options) *client.Conn {
	t.Helper()
	c, err := dialSeed(t, s, user, opts)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func expectRelay(t *testing.T, c *client.Conn, from, text string) {
	t.Helper()
	ev, err := c.Receive()
	if err != nil {
		t.Fatalf("want %s: %.40q: %v", from, text, err)
	}
	if r, ok := ev.(client.Relay); !ok || r.From != from || r.Text != text {
		t.Fatalf("got %#v, want %s: %.40q", ev, from, text)
	}
}

func TestSeedServerQueries(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	alice := mustDialSeed(t, s, "alice", client.Options{})
	bob := mustDialSeed(t, s, "bob", client.Options{})

	// A one-word message loses its only word without the seed shape;
	// queued messages garble each other when they share a record; a
	// long one is split over records unless records are full size.
	long := strings.Repeat("long ", 800)
	texts := []string{"hi", "two words", "  spaced  out", strings.TrimSpace(long)}
	for _, text := range texts {
		if err := alice.Queue("bob", text); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, text := range texts {
		expectRelay(t, bob, "alice", text)
	}
	if err := alice.Send("carol", "anyone?"); err != nil {
		t.Fatal(err)
	}
	if ev, err := alice.Receive(); err != nil {
		t.Fatal(err)
	} else if n, ok := ev.(client.NotOnline); !ok || n.Target != "" || n.Name() != "carol" {
		t.Fatalf("after a message to carol: %#v", ev)
	}
	if err := alice.End(context.Background()); err != nil {
		t.Fatalf("end: %v", err)
	}
	for _, q := range s.Queries() {
		if q.Garbled() || !strings.HasSuffix(q.Raw, " \r\n") || strings.Count(q.Raw, "\n") != 1 {
			t.Errorf("query %q: not one query in the seed shape", q.Raw)
		}
	}
}

func TestSeedServerBareChecks(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	alice := mustDialSeed(t, s, "alice", client.Options{})
	s.Send("alice", "CHECK")
	s.Send("alice", "CHECKRELAY alice bob glued \r\n")
	s.Send("alice", "CHECKCHECKRELAY alice bob twice \r\n")
	s.Send("alice", "CHECK")
	s.Send("alice", "CHECK \r\n")
	s.Send("alice", "RELAY alice bob CHECKED \r\n")
	expectRelay(t, alice, "bob", "glued")
	expectRelay(t, alice, "bob", "twice")
	expectRelay(t, alice, "bob", "CHECKED")
	if alice.Checks() != 6 || alice.Ignored() != 0 {
		t.Errorf("checks %d, ignored %d; want 6 and 0", alice.Checks(), alice.Ignored())
	}
}

// TestSeedServerChecksKeepAlive: the original server's CHECK has no line
// end, so no line completes while it is the only thing sent; its bytes
// alone must keep the watchdog quiet.
func TestSeedServerChecksKeepAlive(t *testing.T) {
	// Long enough that a loaded machine's pauses do not pass for
	// silence, short enough to keep the test quick.
	const interval = 400 * time.Millisecond
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	alice := mustDialSeed(t, s, "alice", client.Options{CheckInterval: interval})
	bob := mustDialSeed(t, s, "bob", client.Options{})
	const checks = 2 * client.SilentChecks * 2
	go func() {
		// Twice an interval, for twice the silence allowed: a watchdog
		// counting whole lines only would fire.
		for i := 0; i < checks; i++ {
			time.Sleep(interval / 2)
			s.Send("alice", "CHECK")
		}
		bob.Send("alice", "still there?")
	}()
	expectRelay(t, alice, "bob", "still there?")
	if alice.Checks() != checks {
		t.Errorf("%d checks counted, want %d", alice.Checks(), checks)
	}
}

func TestSeedServerAlreadyOnline(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	mustDialSeed(t, s, "alice", client.Options{})
	attempts := 0
	connect := func(ctx context.Context) (*client.Conn, error) {
		attempts++
		c, err := client.DialOptions(ctx, s.Addr, seedTLS(s), client.Options{})
		if err != nil {
			return nil, err
		}
		return c, c.Login(ctx, "alice", "pw1")
	}
	b := &client.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Reconnect(ctx, b, connect, nil)
	var end *client.EndError
	if !errors.As(err, &end) || end.Reason != client.ReasonAlreadyOnline || !end.Login {
		t.Fatalf("second login: %v, want END <user already online>", err)
	}
	if attempts != 1 || client.Retryable(err) {
		t.Errorf("%d attempts, retryable %v: a login refused as already online is final", attempts, client.Retryable(err))
	}
	if err.Error() != "login refused: user already online" {
		t.Errorf("error %q", err)
	}
}
