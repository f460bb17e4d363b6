package chat_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
)

// These tests run the messager binary against a double of the original
// server: it takes each TLS record as one query, needs the seed shape,
// sends CHECK without a line end and refuses a second login of a user who
// is online.

var seedUsers = seedserver.Users{"alice": "pw1", "bob": "pw2"}

// seedPeer logs in to the double as user with the client package.
func seedPeer(t *testing.T, s *seedserver.Server, user string) *peer {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Dial(ctx, s.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("peer %s: %v", user, err)
	}
	if err := c.Login(ctx, user, seedUsers[user]); err != nil {
		t.Fatalf("peer %s: %v", user, err)
	}
	return newPeer(t, c)
}

// checkQueries fails the test if any query the double read was garbled
// or not in the seed shape.
func checkQueries(t *testing.T, s *seedserver.Server) {
	t.Helper()
	for _, q := range s.Queries() {
		if q.Garbled() || !strings.HasSuffix(q.Raw, " \r\n") {
			t.Errorf("the server read %q: not one query in the seed shape", q.Raw)
		}
	}
}

func TestSeedServerInteractive(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{CheckInterval: 20 * time.Millisecond})
	bob := seedPeer(t, s, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", s.Addr, "--fingerprint", s.Fingerprint, "--to", "bob")
	tm.expect("[to bob] ")
	tm.send("hi\r")
	bob.expectRelay("alice", "hi")
	tm.send("two words\r")
	bob.expectRelay("alice", "two words")
	bob.send("alice", "hello alice")
	tm.expect("bob: hello alice")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d after /quit", code)
	}
	checkQueries(t, s)
}

func TestSeedServerPipe(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{CheckInterval: 20 * time.Millisecond})
	bob := seedPeer(t, s, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	var in strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	in.WriteString("word\n")
	code, _, stderr := run(t, env, in.String(), "chat", "--server", s.Addr, "--fingerprint", s.Fingerprint, "--to", "bob")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, stderr)
	}
	for i := 0; i < 100; i++ {
		bob.expectRelay("alice", fmt.Sprintf("line %d", i))
	}
	bob.expectRelay("alice", "word")
	checkQueries(t, s)
}

func TestSeedServerSend(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	bob := seedPeer(t, s, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	args := []string{"send", "--server", s.Addr, "--fingerprint", s.Fingerprint}
	code, _, stderr := run(t, env, "", append(args, "--to", "bob", "hi")...)
	if code != 0 {
		t.Fatalf("send: exit status %d, stderr %q", code, stderr)
	}
	bob.expectRelay("alice", "hi")
	code, _, stderr = run(t, env, "", append(args, "--to", "carol", "hi")...)
	if code != 2 || !strings.Contains(stderr, "carol is not online") {
		t.Errorf("send to carol: exit status %d, stderr %q", code, stderr)
	}
	checkQueries(t, s)
}

// TestSeedServerAlreadyOnline: the original server refuses a login of a
// user it still counts as online. The client shows the reason and does
// not try again, neither at the start nor when reconnecting.
func TestSeedServerAlreadyOnline(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	args := []string{"chat", "--server", s.Addr, "--fingerprint", s.Fingerprint, "--to", "bob"}

	t.Run("login", func(t *testing.T) {
		seedPeer(t, s, "alice")
		code, _, stderr := run(t, env, "hi\n", args...)
		if code != 1 || !strings.Contains(stderr, "login refused: user already online") {
			t.Errorf("exit status %d, stderr %q", code, stderr)
		}
	})
	s.Forget("alice")

	t.Run("reconnect", func(t *testing.T) {
		tm := startTerm(t, env, args...)
		tm.expect("[to bob] ")
		auths := countAuth(s)
		// The connection breaks, but the server still counts alice as
		// online: the reconnection is refused, once.
		s.Drop("alice")
		tm.expect("user already online")
		if code := tm.exit(); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		if n := countAuth(s) - auths; n != 1 {
			t.Errorf("%d logins tried after the drop, want 1", n)
		}
	})
}

func countAuth(s *seedserver.Server) int {
	n := 0
	for _, q := range s.Queries() {
		if strings.HasPrefix(q.Raw, "AUTH ") {
			n++
		}
	}
	return n
}
