package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

// Tests of the findings of the first outside trials, one per finding.

// TestRemovedDuringLogin: a user removed from the table while its
// password is being checked must not get a session, whatever the
// interleaving; here the reload lands exactly between the check and the
// registration.
func TestRemovedDuringLogin(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	without := servertest.Users{"bob": "pw-bob", "carol": "pw-carol"}
	server.SetAfterVerify(srv.Server, func(name string) {
		if name == "alice" {
			srv.ReloadUsers(without)
		}
	})
	c := dial(t, srv)
	c.Send("AUTH alice pw-alice \r\n")
	c.Expect("END <incorrect username or password> \r\n")
	c.ExpectClosed()
	if n := srv.Server.Online(); n != 0 {
		t.Fatalf("online = %d after the removed user's login, want 0", n)
	}
}

// frozenDial logs in with a small receive buffer and never reads, so the
// server's writer to it blocks once a few hundred kilobytes are queued.
func frozenDial(t *testing.T, srv *servertest.Server, user, password string) *lineConn {
	t.Helper()
	return frozenLogin(t, srv, "AUTH "+user+" "+password+" \r\n", "ACCEPT "+user+" \r\n")
}

// frozenLogin dials with a small receive buffer, sends send and expects
// the lines of want.
func frozenLogin(t *testing.T, srv *servertest.Server, send string, want ...string) *lineConn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(4096)
	tc := tls.Client(raw, srv.ClientTLS())
	t.Cleanup(func() { tc.Close() })
	c := servertest.NewConn(t, tc)
	c.Send(send)
	for _, w := range want {
		c.Expect(w)
	}
	return c
}

// TestClosedSessionStopsReading: a session closed by someone else (here
// replaced by a new login) while its writer is stuck on a peer that does
// not read must not relay another line, though its END is not written yet.
func TestClosedSessionStopsReading(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = 64 << 20 })
	alice := frozenDial(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	carol := login(t, srv, "carol", "pw-carol")
	// Fill alice's socket so her writer blocks.
	big := strings.Repeat("x", 3000)
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		b.WriteString("MSG alice bob " + big + " \r\n")
	}
	bob.Send(b.String())
	bob.Send("MSG bob bob synced \r\n")
	bob.Expect("RELAY bob bob synced \r\n")

	login(t, srv, "alice", "pw-alice") // replaces the frozen session
	alice.Send("MSG carol alice after-replacement \r\n")
	time.Sleep(300 * time.Millisecond) // the old reader would have relayed it by now
	carol.Send("MSG carol carol marker \r\n")
	carol.Expect("RELAY carol carol marker \r\n")
}

// TestPreLoginOnlyAUTHIsChecked: before login, only AUTH is a login
// attempt; any other well-formed query is a protocol error that costs no
// password check and does not count with the throttle.
func TestPreLoginOnlyAUTHIsChecked(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	for _, line := range []string{"WHO *", "WATCH bob", "JOIN #team", "PUT zed password1", "MSG bob alice hi",
		"HELLO 2 \r\nWHO *", "HELLO 2 \r\nMSG #team alice hi", "HELLO 2 \r\nPUT alice pw-alice"} {
		if strings.HasPrefix(line, "HELLO 2") {
			c := dial(t, srv)
			c.Send(line + " \r\n")
			c.Expect("HELLO 2 presence=100 groups=20,500 \r\n")
			c.Expect("END * <incorrect protocol> \r\n")
			c.ExpectClosed()
			continue
		}
		c := dial(t, srv)
		c.Send(line + " \r\n")
		c.Expect("END * <incorrect protocol> \r\n")
		c.ExpectClosed()
	}
	if n := srv.Server.Stats().LoginsFailed.Load(); n != 0 {
		t.Fatalf("failed logins = %d, want 0", n)
	}
	login(t, srv, "alice", "pw-alice")
}

// TestSmallQueuePromptReader: with the smallest queue bound the server
// accepts, a receiver that reads promptly is never closed as too slow by
// a sender that writes a full read's worth (32 KiB) at a time.
func TestSmallQueuePromptReader(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = server.MinMaxQueue })
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	text := strings.Repeat("y", 100)
	for chunk := 0; chunk < 50; chunk++ {
		var b strings.Builder
		for i := 0; i < 256; i++ {
			fmt.Fprintf(&b, "MSG bob alice %d %s \r\n", i, text)
		}
		alice.Send(b.String())
		for i := 0; i < 256; i++ {
			bob.Expect(fmt.Sprintf("RELAY bob alice %d %s \r\n", i, text))
		}
	}
	if got := srv.Server.Stats().CloseCount("too_slow"); got != 0 {
		t.Fatalf("too_slow closes = %d", got)
	}
}

// TestQueueBoundTooSmall: a bound below what one read can queue is
// refused with a clear error rather than run.
func TestQueueBoundTooSmall(t *testing.T) {
	table, err := users.Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(server.Config{Users: table, MaxQueue: 8192})
	if err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("New with an 8192-byte queue bound: err = %v, want a refusal", err)
	}
}

// TestPendingCap: connections that never log in are capped server-wide;
// over the cap they are closed at once, logged-in users keep relaying,
// the warnings are rate-limited, and logins work again once the flood
// goes away.
func TestPendingCap(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs), func(c *server.Config) { c.MaxPending = 8 })
	alice := login(t, srv, "alice", "pw-alice")
	var flood []net.Conn
	for i := 0; i < 8; i++ {
		flood = append(flood, rawDial(t, srv.Addr))
	}
	waitFor(t, "condition", func() bool { return pendingCount(srv) == 8 })
	for i := 0; i < 30; i++ {
		c := rawDial(t, srv.Addr)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
			t.Fatalf("connection over the cap: read err = %v, want it closed at once", err)
		}
	}
	alice.Send("MSG alice alice still here \r\n")
	alice.Expect("RELAY alice alice still here \r\n")
	if n := strings.Count(logs.String(), "too many connections waiting"); n < 1 || n > 2 {
		t.Fatalf("%d warning lines for 30 refusals, want 1 or 2 (rate-limited):\n%s", n, logs.String())
	}
	for _, c := range flood {
		c.Close()
	}
	waitFor(t, "condition", func() bool { return pendingCount(srv) == 0 })
	login(t, srv, "bob", "pw-bob")
}

// TestFileReserve: no new connection is taken when it would eat into the
// open files kept for logged-in users.
func TestFileReserve(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.FileLimit, c.FileReserve = 6, 3 })
	login(t, srv, "alice", "pw-alice")
	login(t, srv, "bob", "pw-bob")
	login(t, srv, "carol", "pw-carol")
	c := rawDial(t, srv.Addr)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("connection past the reserve: read err = %v, want it closed at once", err)
	}
}

// TestNoCBCSuites: TLS 1.2 offers AEAD suites only.
func TestNoCBCSuites(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	for _, tc := range []struct {
		suite uint16
		ok    bool
	}{
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
	} {
		cfg := srv.ClientTLS()
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tc.suite}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.Addr, cfg)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake err = %v, want ok=%v", tls.CipherSuiteName(tc.suite), err, tc.ok)
		}
	}
}

// TestDroppedAreCounted: messages lost with a too-slow receiver's queue
// are counted as dropped, so relayed minus dropped is what it received.
func TestDroppedAreCounted(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = server.MinMaxQueue })
	bob := frozenDial(t, srv, "bob", "pw-bob")
	alice := login(t, srv, "alice", "pw-alice")
	text := strings.Repeat("z", 1000)
	const n = 3000
	go func() {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "MSG bob alice %s \r\n", text)
		}
		b.WriteString("END \r\n")
		_, _ = io.WriteString(alice.Conn, b.String())
	}()
	cnt := 0
	for {
		l := alice.Line()
		if l == "END <end accepted> \r\n" {
			break
		}
		if l == "CNT <user not online> \r\n" {
			cnt++
		}
	}
	st := srv.Server.Stats()
	waitFor(t, "condition", func() bool { return st.CloseCount("too_slow") == 1 })
	got := 0
	_ = bob.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := bob.R.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(l, "RELAY ") {
			got++
		}
	}
	relayed, dropped := st.Relayed.Load(), st.Dropped.Load()
	if relayed+int64(cnt) != n {
		t.Fatalf("relayed %d + CNT %d != %d sent", relayed, cnt, n)
	}
	if dropped == 0 || relayed-dropped != int64(got) {
		t.Fatalf("relayed %d, dropped %d, received %d: want relayed-dropped == received", relayed, dropped, got)
	}
}

func pendingCount(srv *servertest.Server) int { return srv.Server.Pending() }

// TestLoginTimeoutLogged: a connection that never sends AUTH is told
// END <timeout>, and the log says the login timed out (not "connection
// refused").
func TestLoginTimeoutLogged(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs), func(c *server.Config) { c.LoginTimeout = 200 * time.Millisecond })
	c := dial(t, srv)
	c.Expect("END <timeout> \r\n")
	c.ExpectClosed()
	waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "login timed out") })
	if strings.Contains(logs.String(), "connection refused") {
		t.Errorf("a login timeout logged as a refusal:\n%s", logs.String())
	}
}
