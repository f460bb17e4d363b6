package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave"}

func TestLoginAndRelay(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")

	alice.Send("MSG bob alice hello there, bob \r\n")
	bob.Expect("RELAY bob alice hello there, bob \r\n")

	// Tabs and inner spaces are kept verbatim; trailing blanks are not.
	bob.Send("MSG alice bob \tsee  you\t \r\n")
	alice.Expect("RELAY alice bob \tsee  you \r\n")

	// To oneself.
	alice.Send("MSG alice alice note to self\n")
	alice.Expect("RELAY alice alice note to self \r\n")

	// Not online, and unknown: CNT, and the session goes on.
	alice.Send("MSG carol alice are you there?\r\n")
	alice.Expect("CNT <user not online> \r\n")
	alice.Send("MSG nobody alice hello?\r\n")
	alice.Expect("CNT <user not online> \r\n")
	alice.Send("MSG bob alice still here\r\n")
	bob.Expect("RELAY bob alice still here \r\n")

	alice.Send("END\r\n")
	alice.Expect("END <end accepted> \r\n")
	alice.ExpectClosed()
	bob.Send("END and some words\r\n")
	bob.Expect("END <end accepted> \r\n")
	bob.ExpectClosed()
}

func TestFraming(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := login(t, srv, "bob", "pw-bob")
	alice := dial(t, srv)
	// Empty lines before and after AUTH are ignored; so are blank lines.
	alice.Send("\r\n\n  \t \r\nAUTH alice pw-alice\n")
	alice.Expect("ACCEPT alice \r\n")
	for _, line := range []string{
		"MSG bob alice one \r\n",
		"MSG bob alice two\r\n",
		"MSG bob alice three\n",
		"MSG bob alice four  \t  \r\n",
		// The seed-era client framed messages like this.
		"MSG bob alice five\n \r\n",
	} {
		alice.Send(line)
	}
	for _, want := range []string{"one", "two", "three", "four", "five"} {
		bob.Expect("RELAY bob alice " + want + " \r\n")
	}
	// A line split across many writes.
	for _, part := range []string{"MS", "G b", "ob ali", "ce si", "x\r", "\n"} {
		alice.Send(part)
	}
	bob.Expect("RELAY bob alice six \r\n")
	// UTF-8 text.
	alice.Send("MSG bob alice héllo wörld ✓\r\n")
	bob.Expect("RELAY bob alice héllo wörld ✓ \r\n")
}

func TestLineLimits(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := login(t, srv, "bob", "pw-bob")
	alice := login(t, srv, "alice", "pw-alice")

	prefix := "MSG bob alice "
	// 4096 bytes, terminator included, is the longest line allowed.
	text := strings.Repeat("x", protocol.MaxLine-len(prefix)-2)
	alice.Send(prefix + text + "\r\n")
	bob.Expect("RELAY bob alice " + text + " \r\n")
	text = strings.Repeat("y", protocol.MaxLine-len(prefix)-1)
	alice.Send(prefix + text + "\n")
	bob.Expect("RELAY bob alice " + text + " \r\n")

	// One byte more is too long.
	alice.Send(prefix + text + "z\n")
	alice.Expect("END * <line too long> \r\n")
	alice.ExpectClosed()

	// A line that never ends is cut off at the limit too.
	carol := login(t, srv, "carol", "pw-carol")
	carol.Send(strings.Repeat("a", protocol.MaxLine+10))
	carol.Expect("END * <line too long> \r\n")
	carol.ExpectClosed()

	// Before login as well.
	c := dial(t, srv)
	c.Send("AUTH " + strings.Repeat("b", 5000) + "\n")
	c.Expect("END * <line too long> \r\n")
	c.ExpectClosed()

	// Nobody else noticed.
	bob.Send("MSG bob bob fine\r\n")
	bob.Expect("RELAY bob bob fine \r\n")
}

// TestProtocolErrors covers every malformed query: each gets
// END * <incorrect protocol> and closes only the offending session.
func TestProtocolErrors(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bystanderA := login(t, srv, "carol", "pw-carol")
	bystanderB := login(t, srv, "dave", "pw-dave")
	const bad = "END * <incorrect protocol> \r\n"
	tests := []struct {
		name       string
		loggedIn   bool
		line       string
		wantAnswer string
	}{
		{"unknown word before login", false, "HELLO\r\n", bad},
		{"MSG before AUTH", false, "MSG bob alice hi\r\n", bad},
		{"AUTH without password", false, "AUTH alice\r\n", bad},
		{"AUTH with extra field", false, "AUTH alice pw-alice extra\r\n", bad},
		{"AUTH with double space", false, "AUTH  alice pw-alice\r\n", bad},
		{"AUTH with bad name", false, "AUTH al!ce pw\r\n", bad},
		{"AUTH with long name", false, "AUTH " + strings.Repeat("a", 33) + " pw\r\n", bad},
		{"AUTH with long password", false, "AUTH alice " + strings.Repeat("p", 129) + "\r\n", bad},
		{"lowercase auth", false, "auth alice pw-alice\r\n", bad},
		{"client sends CHECK", false, "CHECK\r\n", bad},
		{"NUL byte", false, "AUTH alice pw\x00\r\n", bad},
		{"END before login", false, "END\r\n", "END <end accepted> \r\n"},
		{"second AUTH", true, "AUTH alice pw-alice\r\n", bad},
		{"unknown word", true, "HELLO bob\r\n", bad},
		{"ACCEPT from client", true, "ACCEPT alice\r\n", bad},
		{"RELAY from client", true, "RELAY bob alice hi\r\n", bad},
		{"MSG without text", true, "MSG bob alice\r\n", bad},
		{"MSG with blank text", true, "MSG bob alice    \r\n", bad},
		{"MSG without sender", true, "MSG bob\r\n", bad},
		{"MSG bad target", true, "MSG b@b alice hi\r\n", bad},
		{"MSG double space", true, "MSG  bob alice hi\r\n", bad},
		{"spoofed sender", true, "MSG bob mallory hi\r\n", bad},
		{"sender differs in case", true, "MSG bob Alice hi\r\n", bad},
		{"control character", true, "MSG bob alice hi\x1b[2J\r\n", bad},
		{"DEL", true, "MSG bob alice hi\x7f\r\n", bad},
		{"C1 control", true, "MSG bob alice hi\u0085\r\n", bad},
		{"invalid UTF-8", true, "MSG bob alice hi\xff\xfe\r\n", bad},
		{"bare CR inside", true, "MSG bob alice a\rb\r\n", bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *lineConn
			if tt.loggedIn {
				c = login(t, srv, "alice", "pw-alice")
			} else {
				c = dial(t, srv)
			}
			c.Send(tt.line)
			c.Expect(tt.wantAnswer)
			c.ExpectClosed()
			// One bad client never affects another.
			bystanderA.Send("MSG dave carol ping " + tt.name + "\r\n")
			bystanderB.Expect("RELAY dave carol ping " + tt.name + " \r\n")
		})
	}
}

func TestBadLogin(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	for _, line := range []string{"AUTH alice wrong\r\n", "AUTH nobody pw-alice\r\n", "AUTH Alice pw-alice\r\n"} {
		c := dial(t, srv)
		c.Send(line)
		c.Expect("END <incorrect username or password> \r\n")
		c.ExpectClosed()
	}
	if got := srv.Server.Stats().LoginsFailed.Load(); got != 3 {
		t.Errorf("failed logins = %d, want 3", got)
	}
}

func TestLoggedInElsewhere(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	old := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	// Bob's reader caches alice's session; the new one must still get it.
	bob.Send("MSG alice bob first\r\n")
	old.Expect("RELAY alice bob first \r\n")
	fresh := login(t, srv, "alice", "pw-alice")
	old.Expect("END <logged in elsewhere> \r\n")
	old.ExpectClosed()
	bob.Send("MSG alice bob second\r\n")
	fresh.Expect("RELAY alice bob second \r\n")
}

func TestLoginTimeout(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.LoginTimeout = 300 * time.Millisecond })
	// TLS done, no AUTH.
	c := dial(t, srv)
	c.Expect("END <timeout> \r\n")
	c.ExpectClosed()
	// AUTH never finished.
	c = dial(t, srv)
	c.Send("AUTH alice pw-al")
	c.Expect("END <timeout> \r\n")
	c.ExpectClosed()
	// No TLS at all: the server closes the TCP connection.
	raw := rawDial(t, srv.Addr)
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("plain TCP connection not closed: %v", err)
	}
	// Once logged in, there is no read deadline.
	alice := login(t, srv, "alice", "pw-alice")
	time.Sleep(500 * time.Millisecond) // longer than the login timeout: that is the point
	alice.Send("MSG alice alice still here\r\n")
	alice.Expect("RELAY alice alice still here \r\n")
}

func TestCheck(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.CheckInterval = 20 * time.Millisecond })
	alice := login(t, srv, "alice", "pw-alice")
	if got := alice.Line(); got != "CHECK \r\n" {
		t.Fatalf("got %q, want CHECK", got)
	}
}

func TestOrderAndFanIn(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	dave := login(t, srv, "dave", "pw-dave")
	const n = 2000
	var wg sync.WaitGroup
	for _, name := range []string{"alice", "bob", "carol"} {
		c := login(t, srv, name, "pw-"+name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "MSG dave %s %d\r\n", name, i)
			}
			_, _ = c.Conn.Write([]byte(b.String()))
		}()
	}
	next := map[string]int{}
	for i := 0; i < 3*n; i++ {
		var from string
		var seq int
		line := dave.Line()
		if _, err := fmt.Sscanf(line, "RELAY dave %s %d \r\n", &from, &seq); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		if seq != next[from] {
			t.Fatalf("from %s got %d, want %d", from, seq, next[from])
		}
		next[from]++
	}
	wg.Wait()
}

func TestSlowReceiver(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.MaxQueue = 64 << 10
		c.WriteTimeout = 2 * time.Second
	})
	frozen := login(t, srv, "bob", "pw-bob") // never reads again
	_ = frozen
	alice := login(t, srv, "alice", "pw-alice")
	carol := login(t, srv, "carol", "pw-carol")
	dave := login(t, srv, "dave", "pw-dave")

	// Flood bob until the server gives up on him; alice must get CNT.
	text := strings.Repeat("z", 1000)
	line := "MSG bob alice " + text + "\r\n"
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			if _, err := alice.Conn.Write([]byte(line)); err != nil {
				return
			}
			select {
			case <-time.After(0):
			default:
			}
			if srv.Server.Stats().CloseCount("too_slow") > 0 {
				return
			}
		}
	}()
	for {
		got := alice.Line()
		if got == "CNT <user not online> \r\n" {
			break
		}
	}
	<-done
	if n := srv.Server.Stats().CloseCount("too_slow"); n != 1 {
		t.Fatalf("too_slow closes = %d, want 1", n)
	}
	// Everybody else is served as before.
	carol.Send("MSG dave carol unaffected\r\n")
	dave.Expect("RELAY dave carol unaffected \r\n")
	alice.Send("MSG dave alice me too\r\n")
	dave.Expect("RELAY dave alice me too \r\n")
}

func TestThrottle(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.Throttle = server.ThrottleConfig{FreeFailures: 2, MaxAttempts: 4, Window: time.Minute, Block: time.Minute, Delay: time.Millisecond, MaxDelay: time.Millisecond}
	})
	for i := 0; i < 4; i++ {
		c := dial(t, srv)
		c.Send("AUTH alice wrong\r\n")
		c.Expect("END <incorrect username or password> \r\n")
	}
	// Blocked now, even with the right password.
	c := dial(t, srv)
	c.Send("AUTH alice pw-alice\r\n")
	c.Expect("END <too many attempts> \r\n")
	c.ExpectClosed()
}

func TestLimits(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.MaxSessions = 2
		c.MaxUnauthPerAddr = 2
	})
	login(t, srv, "alice", "pw-alice")
	login(t, srv, "bob", "pw-bob")
	c := dial(t, srv)
	c.Send("AUTH carol pw-carol\r\n")
	c.Expect("END <server full> \r\n")
	c.ExpectClosed()
	// A user already online may still replace their session.
	login(t, srv, "bob", "pw-bob")

	idle1, idle2 := dial(t, srv), dial(t, srv)
	third := dial(t, srv)
	third.Expect("END <too many connections> \r\n")
	third.ExpectClosed()
	_, _ = idle1, idle2
}

func TestAccountRemoved(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	srv.ReloadUsers(servertest.Users{"bob": "pw-bob"})
	alice.Expect("END <account removed> \r\n")
	alice.ExpectClosed()
	bob.Send("MSG bob bob still here\r\n")
	bob.Expect("RELAY bob bob still here \r\n")
}

func TestShutdown(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	waiting := dial(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = srv.Server.Shutdown(ctx) }()
	alice.Expect("END <server shutting down> \r\n")
	alice.ExpectClosed()
	waiting.Expect("END <server shutting down> \r\n")
	waiting.ExpectClosed()
	srv.Stop()
}

// TestCNTFlood: a client that pipelines many messages to someone offline
// gets a CNT for each and, reading them promptly, is never closed as too
// slow by its own answers, even with a small queue bound.
func TestCNTFlood(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = server.MinMaxQueue })
	alice := login(t, srv, "alice", "pw-alice")
	const n = 20000
	go func() {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("MSG carol alice are you there?\r\n")
		}
		_, _ = alice.Conn.Write([]byte(b.String()))
	}()
	for i := 0; i < n; i++ {
		alice.Expect("CNT <user not online> \r\n")
	}
	if got := srv.Server.Stats().CloseCount("too_slow"); got != 0 {
		t.Fatalf("too_slow closes = %d", got)
	}
	alice.Send("END\r\n")
	alice.Expect("END <end accepted> \r\n")
}

// TestRelayRuns mixes runs of messages to one target, to oneself and to
// nobody in single reads: the relay keeps a target's lock across a run
// and must let go of it at every change.
func TestRelayRuns(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	alice.Send("MSG alice alice 1\r\nMSG nobody alice 2\r\nMSG bob alice 3\r\nMSG bob alice 4\r\n" +
		"MSG alice alice 5\r\nMSG alice alice 6\r\nMSG carol alice 7\r\nMSG bob alice 8\r\nEND\r\n")
	alice.Expect("RELAY alice alice 1 \r\n")
	alice.Expect("CNT <user not online> \r\n")
	alice.Expect("RELAY alice alice 5 \r\n")
	alice.Expect("RELAY alice alice 6 \r\n")
	alice.Expect("CNT <user not online> \r\n")
	alice.Expect("END <end accepted> \r\n")
	for _, want := range []string{"3", "4", "8"} {
		bob.Expect("RELAY bob alice " + want + " \r\n")
	}
}
