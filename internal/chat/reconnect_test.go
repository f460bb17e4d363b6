package chat_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/chat"
	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/trust"
)

// virtualClock runs a Backoff in virtual time: sleeping moves the clock
// on at once. When the clock passes its limit it cancels the session.
type virtualClock struct {
	mu     sync.Mutex
	now    time.Time
	end    time.Time
	cancel context.CancelFunc
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	over := c.now.After(c.end)
	c.mu.Unlock()
	if over {
		c.cancel()
	}
	return ctx.Err()
}

// TestReconnectBacksOffAfterShortSessions: a server that accepts every
// login and closes the session at once. The client used to log in again
// at once, thousands of times a second; it must wait between attempts
// however the session before ended.
func TestReconnectBacksOffAfterShortSessions(t *testing.T) {
	var logins atomic.Int64
	addr, fp := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		logins.Add(1)
		io.WriteString(c, "ACCEPT alice \r\n")
	})
	v, err := trust.New(addr, trust.Options{Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	// One dialer for every attempt, as the command has: it falls back to
	// version 1 once, on the first connection.
	d := &client.Dialer{Addr: addr, TLSConfig: v.TLSConfig()}
	connect := func(ctx context.Context, _ func(string)) (*client.Conn, error) {
		return d.Login(ctx, "alice", "pw1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	first, err := connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Four seconds of virtual time; the waits are at least 250 ms, 500 ms,
	// 1 s and 2 s, so at most four attempts fit after the first login.
	start := time.Unix(1e9, 0)
	clock := &virtualClock{now: start, end: start.Add(4 * time.Second), cancel: cancel}
	stdin, keepOpen := io.Pipe()
	defer keepOpen.Close()
	err = chat.Run(ctx, chat.Config{
		Conn:    first,
		Connect: connect,
		Backoff: &client.Backoff{Now: clock.Now, Sleep: clock.Sleep},
		To:      "bob",
		Stdin:   stdin,
		Stdout:  io.Discard,
		Stderr:  io.Discard,
	})
	if err == nil {
		t.Fatal("the session ended without an error")
	}
	if n := logins.Load(); n < 2 || n > 5 {
		t.Errorf("%d logins in 4 s of backoff, want 2 to 5", n)
	}
}

// TestReconnectBacksOffAcrossServers: two servers that accept every
// login and close the session at once. The client goes from one to the
// other, but the waits between attempts grow as with one server: taking
// turns is no way around the backoff.
func TestReconnectBacksOffAcrossServers(t *testing.T) {
	var logins [2]atomic.Int64
	var dialers []*client.Dialer
	for i := range logins {
		addr, fp := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			logins[i].Add(1)
			io.WriteString(c, "ACCEPT alice \r\n")
		})
		v, err := trust.New(addr, trust.Options{Fingerprint: fp})
		if err != nil {
			t.Fatal(err)
		}
		dialers = append(dialers, &client.Dialer{Addr: addr, TLSConfig: v.TLSConfig()})
	}
	servers := client.NewServers(dialers...)
	connect := func(ctx context.Context, _ func(string)) (*client.Conn, error) {
		return servers.Connect(ctx, client.Round{Login: func(ctx context.Context, c *client.Conn) error {
			return c.Login(ctx, "alice", "pw1")
		}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	first, err := connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Unix(1e9, 0)
	clock := &virtualClock{now: start, end: start.Add(4 * time.Second), cancel: cancel}
	stdin, keepOpen := io.Pipe()
	defer keepOpen.Close()
	err = chat.Run(ctx, chat.Config{
		Conn:    first,
		Connect: connect,
		Backoff: &client.Backoff{Now: clock.Now, Sleep: clock.Sleep},
		To:      "bob",
		Stdin:   stdin,
		Stdout:  io.Discard,
		Stderr:  io.Discard,
	})
	if err == nil {
		t.Fatal("the session ended without an error")
	}
	a, b := logins[0].Load(), logins[1].Load()
	if a+b < 2 || a+b > 5 {
		t.Errorf("%d logins in 4 s of backoff, want 2 to 5", a+b)
	}
	// Each session's end sends the next round to the other server.
	if a == 0 || b == 0 || a-b > 1 || b-a > 1 {
		t.Errorf("logins %d and %d, want them to take turns", a, b)
	}
}

// TestQuitWhileReconnecting: the input ends while the session
// reconnects, and the reconnection succeeds just as the end of input
// stops it. The session ends then, with the new connection closed; it
// used to go on receiving on it for ever.
func TestQuitWhileReconnecting(t *testing.T) {
	// The first session ends as soon as it starts.
	addr, fp := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		io.WriteString(c, "ACCEPT alice \r\n")
	})
	v, err := trust.New(addr, trust.Options{Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := (&client.Dialer{Addr: addr, TLSConfig: v.TLSConfig()}).Login(ctx, "alice", "pw1")
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, testUsers)
	stdin, endInput := io.Pipe()
	var second *client.Conn
	connect := func(rctx context.Context, _ func(string)) (*client.Conn, error) {
		// The input ends now; the session's quit stops the
		// reconnection, and then this one succeeds all the same.
		endInput.Close()
		<-rctx.Done()
		c, err := client.Dial(ctx, srv.Addr, srv.ClientTLS())
		if err != nil {
			return nil, err
		}
		second = c
		return c, c.Login(ctx, "alice", "pw1")
	}
	done := make(chan error, 1)
	go func() {
		done <- chat.Run(ctx, chat.Config{
			Conn:    first,
			Connect: connect,
			Backoff: &client.Backoff{Min: time.Millisecond, Max: time.Millisecond},
			To:      "bob",
			Stdin:   stdin,
			Stdout:  io.Discard,
			Stderr:  io.Discard,
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(timeout / 2):
		t.Fatal("the session did not end after the end of input")
	}
	if second == nil {
		t.Fatal("the reconnection did not happen")
	}
	if err := second.Send("bob", "x"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("the connection made while quitting is still open: %v", err)
	}
}
