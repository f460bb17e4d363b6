package client

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// scripted runs a fake server on one end of a pipe: it reads what the
// client writes into a channel, one Write at a time, and writes what the
// test tells it to. A pipe has no buffer, so each read is exactly one
// Write of the client, as one TLS record would be. The line handling of
// the client is what is under test here; integration tests run against
// the real server and the original one's double.
type scripted struct {
	t      *testing.T
	conn   net.Conn
	writes chan string
}

func newScripted(t *testing.T, opts Options) (*Conn, *scripted) {
	t.Helper()
	a, b := net.Pipe()
	s := &scripted{t: t, conn: b, writes: make(chan string, 100)}
	go func() {
		defer close(s.writes)
		buf := make([]byte, 64<<10)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			s.writes <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a, opts), s
}

func (s *scripted) write(lines ...string) {
	s.t.Helper()
	go func() {
		for _, l := range lines {
			if _, err := io.WriteString(s.conn, l); err != nil {
				return
			}
		}
	}()
}

// expect waits for the client's next Write and checks that it holds
// exactly want: one query, in the seed shape.
func (s *scripted) expect(want string) {
	s.t.Helper()
	select {
	case got, ok := <-s.writes:
		if !ok {
			s.t.Fatalf("connection closed, want %q", want)
		}
		if got != want {
			s.t.Fatalf("server got %q in one write, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		s.t.Fatalf("timed out waiting for %q", want)
	}
}

func login(t *testing.T, c *Conn, s *scripted) {
	t.Helper()
	s.write("ACCEPT alice \r\n")
	if err := c.Login(context.Background(), "alice", "pw1"); err != nil {
		t.Fatalf("login: %v", err)
	}
	s.expect("AUTH alice pw1 \r\n")
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		line    string
		reason  string
		refused bool
	}{
		{"END <incorrect username or password> \r\n", protocol.ReasonBadLogin, true},
		{"END <too many attempts> \r\n", protocol.ReasonTooManyAttempts, true},
		{"END <server full> \r\n", protocol.ReasonServerFull, false},
		{"END * <incorrect protocol> \r\n", protocol.ReasonIncorrectProtocol, true},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			c, s := newScripted(t, Options{})
			s.write("CHECK \r\n", "HELLO future \r\n", tt.line)
			err := c.Login(context.Background(), "alice", "pw1")
			var end *EndError
			if !errors.As(err, &end) {
				t.Fatalf("login error %v (%T), want *EndError", err, err)
			}
			if end.Reason != tt.reason || end.Refused() != tt.refused {
				t.Errorf("got reason %q refused %v, want %q %v", end.Reason, end.Refused(), tt.reason, tt.refused)
			}
			if Retryable(err) == tt.refused {
				t.Errorf("Retryable = %v for %q", Retryable(err), tt.reason)
			}
		})
	}
}

func TestLoginNetworkError(t *testing.T) {
	c, s := newScripted(t, Options{})
	s.conn.Close()
	err := c.Login(context.Background(), "alice", "pw1")
	var end *EndError
	if err == nil || errors.As(err, &end) {
		t.Fatalf("login error %v, want a network error", err)
	}
	if !Retryable(err) {
		t.Errorf("network error %v not retryable", err)
	}
}

func TestLoginContextDeadline(t *testing.T) {
	c, _ := newScripted(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Login(ctx, "alice", "pw1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("login error %v, want the context's deadline", err)
	}
}

func TestLoginBadInput(t *testing.T) {
	c, _ := newScripted(t, Options{})
	if err := c.Login(context.Background(), "bad name", "pw"); err == nil {
		t.Error("login with a bad name succeeded")
	}
	if err := c.Login(context.Background(), "alice", "has space"); err == nil {
		t.Error("login with a space in the password succeeded")
	}
}

func TestReceiveEvents(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 4, 0, 0, time.UTC)
	c, s := newScripted(t, Options{Now: func() time.Time { return now }})
	login(t, c, s)
	if err := c.Send("bob", "hello there  "); err != nil {
		t.Fatal(err)
	}
	s.expect("MSG bob alice hello there \r\n")
	s.write(
		"CHECK \r\n",
		"\r\n",
		"RELAY alice bob hi  you \r\n",
		"WHATEVER new line \r\n",
		"RELAY broken \r\n",
		"CNT <user not online> \r\n",
		"CHECK \r\n",
		"END <logged in elsewhere> \r\n",
	)
	want := []Event{
		Relay{From: "bob", To: "alice", Text: "hi  you", Time: now},
		NotOnline{LastTarget: "bob", Time: now}, // version 1: the server names nobody
		End{Reason: protocol.ReasonLoggedInElsewhere},
	}
	for i, w := range want {
		ev, err := c.Receive()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev != w {
			t.Errorf("event %d = %#v, want %#v", i, ev, w)
		}
	}
	if _, err := c.Receive(); !errors.Is(err, ErrClosed) {
		t.Errorf("receive after END: %v, want ErrClosed", err)
	}
	if c.Checks() != 2 || c.Ignored() != 2 {
		t.Errorf("checks %d ignored %d, want 2 and 2", c.Checks(), c.Ignored())
	}
	if err := c.Send("bob", "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("send after END: %v, want ErrClosed", err)
	}
}

func TestWatchdog(t *testing.T) {
	c, s := newScripted(t, Options{CheckInterval: 20 * time.Millisecond})
	login(t, c, s)
	start := time.Now()
	_, err := c.Receive()
	if !errors.Is(err, ErrSilent) {
		t.Fatalf("receive from a silent server: %v, want ErrSilent", err)
	}
	if d := time.Since(start); d < SilentChecks*20*time.Millisecond {
		t.Errorf("declared dead after %v, before %d intervals", d, SilentChecks)
	}
	if !Retryable(err) {
		t.Error("a silent server should be retried")
	}
}

func TestWatchdogKeptAliveByChecks(t *testing.T) {
	c, s := newScripted(t, Options{CheckInterval: 100 * time.Millisecond})
	login(t, c, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Checks every 40ms for 400ms keep the connection alive past
		// three intervals, then a relay arrives.
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 10; i++ {
			<-tick.C
			io.WriteString(s.conn, "CHECK \r\n")
		}
		io.WriteString(s.conn, "RELAY alice bob still here \r\n")
	}()
	ev, err := c.Receive()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if r, ok := ev.(Relay); !ok || r.Text != "still here" {
		t.Errorf("got %#v", ev)
	}
	if c.Checks() != 10 {
		t.Errorf("checks = %d, want 10", c.Checks())
	}
	<-done
}

func TestSendRefusedLocally(t *testing.T) {
	c, s := newScripted(t, Options{})
	if err := c.Send("bob", "early"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("send before login: %v", err)
	}
	login(t, c, s)
	// The seed shape's space before the line end counts.
	max := protocol.MaxLine - len("MSG bob alice  \r\n")
	tests := []struct {
		name, target, text string
		check              func(error) bool
	}{
		{"empty", "bob", "   \t", func(err error) bool { return errors.Is(err, ErrEmptyMessage) }},
		{"control", "bob", "a\x1bb", func(err error) bool { return errors.Is(err, ErrControlCharacter) }},
		{"c1", "bob", "a\u009bb", func(err error) bool { return errors.Is(err, ErrControlCharacter) }},
		{"bad target", "b b", "x", func(err error) bool { var e *NameError; return errors.As(err, &e) }},
		{"one too long", "bob", strings.Repeat("x", max+1), func(err error) bool {
			var e *TooLongError
			return errors.As(err, &e) && e.Len == protocol.MaxLine+1 && e.MaxText == max
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Send(tt.target, tt.text); !tt.check(err) {
				t.Errorf("Send(%q, %.20q) = %v", tt.target, tt.text, err)
			}
		})
	}
	// The longest message that fits goes out, proving nothing refused
	// above was sent.
	if err := c.Send("bob", strings.Repeat("x", max)); err != nil {
		t.Fatalf("longest message: %v", err)
	}
	s.expect("MSG bob alice " + strings.Repeat("x", max) + " \r\n")
}

// TestQueueOneQueryPerWrite: queued messages are sent together by one
// Flush, but each in a Write of its own, which on TLS is a record of its
// own: the original server takes each record as one query.
func TestQueueOneQueryPerWrite(t *testing.T) {
	c, s := newScripted(t, Options{})
	login(t, c, s)
	for i := 0; i < 3; i++ {
		if err := c.Queue("bob", "m"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendEnd(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		s.expect("MSG bob alice m \r\n")
	}
	s.expect("END \r\n")
}

func TestEnd(t *testing.T) {
	c, s := newScripted(t, Options{})
	login(t, c, s)
	s.write("RELAY alice bob before \r\n", "END <end accepted> \r\n")
	if err := c.End(context.Background()); err != nil {
		t.Fatalf("end: %v", err)
	}
	s.expect("END \r\n")
}

func TestEndOtherReason(t *testing.T) {
	c, s := newScripted(t, Options{})
	login(t, c, s)
	s.write("END <server shutting down> \r\n")
	err := c.End(context.Background())
	var end *EndError
	if !errors.As(err, &end) || end.Reason != protocol.ReasonShuttingDown {
		t.Fatalf("end: %v, want server shutting down", err)
	}
	if !Retryable(err) {
		t.Error("shutting down should be retryable")
	}
}

func TestEndContext(t *testing.T) {
	c, s := newScripted(t, Options{})
	login(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.End(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("end with a silent server: %v, want deadline exceeded", err)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.999999 }}
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, b.Next().Round(10*time.Millisecond))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	b.Reset()
	b.Rand = func() float64 { return 0 }
	if d := b.Next(); d != 50*time.Millisecond {
		t.Errorf("lowest jitter %v, want half of Min", d)
	}
}

func TestReconnect(t *testing.T) {
	var calls int
	b := &Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	var notified int
	want := &Conn{}
	c, err := Reconnect(context.Background(), b, func(context.Context) (*Conn, error) {
		calls++
		if calls < 3 {
			return nil, io.ErrUnexpectedEOF
		}
		return want, nil
	}, func(error, time.Duration) { notified++ })
	if err != nil || c != want || calls != 3 || notified != 2 || b.Attempts() != 3 {
		t.Fatalf("Reconnect = %v, %v after %d calls, %d notices", c, err, calls, notified)
	}

	refused := &EndError{Reason: protocol.ReasonBadLogin}
	_, err = Reconnect(context.Background(), b, func(context.Context) (*Conn, error) { return nil, refused }, nil)
	if err != refused {
		t.Fatalf("Reconnect after refusal = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Reconnect(ctx, b, func(context.Context) (*Conn, error) { return nil, io.EOF }, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reconnect with a cancelled context = %v", err)
	}
}

// virtualClock is a Backoff's clock that sleeps by moving time on.
type virtualClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *virtualClock) Now() time.Time { return c.now }

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

// TestReconnectAlwaysWaits: every attempt waits, even after a session
// that ended as soon as it started, and the waits grow from one short
// session to the next; only a session that lasted Stable resets them.
func TestReconnectAlwaysWaits(t *testing.T) {
	clock := &virtualClock{now: time.Unix(1000, 0)}
	b := &Backoff{Min: 100 * time.Millisecond, Max: time.Second, Stable: 30 * time.Second,
		Rand: func() float64 { return 0.999999 }, Now: clock.Now, Sleep: clock.Sleep}
	b.Up()
	connect := func(context.Context) (*Conn, error) { return &Conn{}, nil }
	for i := 0; i < 5; i++ {
		// The session ends at once: no time passes but the waits.
		if _, err := Reconnect(context.Background(), b, connect, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{100, 200, 400, 800, 1000}
	for i, d := range clock.slept {
		if d.Round(10*time.Millisecond) != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", clock.slept, want)
		}
	}
	clock.now = clock.now.Add(30 * time.Second)
	Reconnect(context.Background(), b, connect, nil)
	if d := clock.slept[len(clock.slept)-1]; d.Round(10*time.Millisecond) != 100*time.Millisecond {
		t.Errorf("wait after a stable session %v, want Min again", d)
	}
}
