package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

var users = servertest.Users{"alice": "pw1", "bob": "pw2"}

func dial(t *testing.T, srv *servertest.Server, user, password string, opts client.Options) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialOptions(ctx, srv.Addr, srv.ClientTLS(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Login(ctx, user, password)
}

func TestRealServer(t *testing.T) {
	srv := servertest.Start(t, users)
	alice, err := dial(t, srv, "alice", "pw1", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := dial(t, srv, "bob", "pw2", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if alice.User() != "alice" {
		t.Errorf("User() = %q", alice.User())
	}

	// Many queued messages share writes and arrive in order.
	for i := 0; i < 100; i++ {
		if err := alice.Queue("bob", "m"+string(rune('0'+i%10))); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		ev, err := bob.Receive()
		if err != nil {
			t.Fatal(err)
		}
		r, ok := ev.(client.Relay)
		if !ok || r.From != "alice" || r.To != "bob" || r.Text != "m"+string(rune('0'+i%10)) {
			t.Fatalf("event %d: %#v", i, ev)
		}
	}

	if err := alice.Send("nobody", "hello?"); err != nil {
		t.Fatal(err)
	}
	ev, err := alice.Receive()
	if n, ok := ev.(client.NotOnline); err != nil || !ok || n.Target != "nobody" {
		t.Fatalf("after a message to nobody: %#v, %v", ev, err)
	}

	if err := bob.End(context.Background()); err != nil {
		t.Fatalf("end: %v", err)
	}
	if err := alice.Send("bob", "gone"); err != nil {
		t.Fatal(err)
	}
	if ev, err := alice.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := ev.(client.NotOnline); !ok {
		t.Fatalf("after bob left: %#v", ev)
	}
}

func TestRealServerRefusedLogin(t *testing.T) {
	srv := servertest.Start(t, users)
	for _, tt := range []struct{ user, password string }{{"alice", "wrong"}, {"mallory", "pw1"}} {
		_, err := dial(t, srv, tt.user, tt.password, client.Options{})
		var end *client.EndError
		if !errors.As(err, &end) || end.Reason != protocol.ReasonBadLogin || !end.Login {
			t.Errorf("login %s/%s: %v", tt.user, tt.password, err)
		}
		if client.Retryable(err) {
			t.Errorf("refused login %v counted as retryable", err)
		}
	}
}

func TestRealServerLoggedInElsewhere(t *testing.T) {
	srv := servertest.Start(t, users)
	first, err := dial(t, srv, "alice", "pw1", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, srv, "alice", "pw1", client.Options{}); err != nil {
		t.Fatal(err)
	}
	ev, err := first.Receive()
	if e, ok := ev.(client.End); err != nil || !ok || e.Reason != protocol.ReasonLoggedInElsewhere || e.Accepted() {
		t.Fatalf("replaced session got %#v, %v", ev, err)
	}
}

func TestRealServerChecksKeepAlive(t *testing.T) {
	// The client allows three intervals of silence (900 ms); the server
	// checks every 100 ms, so even a loaded machine's pauses do not pass
	// for silence.
	srv := servertest.Start(t, users, func(c *server.Config) { c.CheckInterval = 100 * time.Millisecond })
	alice, err := dial(t, srv, "alice", "pw1", client.Options{CheckInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := dial(t, srv, "bob", "pw2", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The server's checks keep alice's watchdog from firing while bob
	// waits twice the silence allowed before writing.
	go func() {
		time.Sleep(1800 * time.Millisecond)
		bob.Send("alice", "late")
	}()
	ev, err := alice.Receive()
	if r, ok := ev.(client.Relay); err != nil || !ok || r.Text != "late" {
		t.Fatalf("got %#v, %v", ev, err)
	}
	if alice.Checks() < 3 {
		t.Errorf("only %d checks counted", alice.Checks())
	}
}
