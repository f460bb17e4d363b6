package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

// Operations tests: the user file and certificate reloads, and the
// Prometheus metrics.

// logBuffer collects a server's logs so a test can wait for a line.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withLog sends the server's logs to b.
func withLog(b *logBuffer) servertest.Option {
	return func(c *server.Config) { c.Logger = slog.New(slog.NewTextHandler(b, nil)) }
}

// TestWatchUsers edits the user file on disk the ways an operator does:
// replaced by a rename ('messager user del'), rewritten in place, and
// broken by a bad edit.
func TestWatchUsers(t *testing.T) {
	var logs logBuffer
	srv := servertest.Start(t, testUsers, withLog(&logs))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the server stops: cleanups run last first
	if err := srv.Server.WatchUsers(ctx, srv.UsersFile); err != nil {
		t.Fatal(err)
	}
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	carol := login(t, srv, "carol", "pw-carol")

	// Replaced by a rename.
	if err := users.Delete(srv.UsersFile, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.expect("END <account removed> \r\n")
	alice.expectClosed()
	bob.send("MSG carol bob still here\r\n")
	carol.expect("RELAY carol bob still here \r\n")

	// Rewritten in place (an editor that truncates and writes).
	if err := os.WriteFile(srv.UsersFile, []byte(servertest.UsersCSV(t, servertest.Users{"bob": "pw-bob", "dave": "pw-dave"})), 0o600); err != nil {
		t.Fatal(err)
	}
	carol.expect("END <account removed> \r\n")
	carol.expectClosed()
	dave := login(t, srv, "dave", "pw-dave")
	bob.send("MSG dave bob welcome\r\n")
	dave.expect("RELAY dave bob welcome \r\n")

	// A bad edit keeps the old table, and the log names the line.
	good, err := os.ReadFile(srv.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(bytes.Clone(good), "eve;no-comma-here\n"...)
	if err := os.WriteFile(srv.UsersFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad edit to be logged", func() bool { return strings.Contains(logs.String(), "not valid") })
	if l := lastLine(logs.String(), "not valid"); !strings.Contains(l, "line 3") {
		t.Errorf("log does not name line 3: %s", l)
	}
	login(t, srv, "dave", "pw-dave") // replaces the session above: the table is intact
	bob.send("MSG bob bob and me\r\n")
	bob.expect("RELAY bob bob and me \r\n")
	err = srv.Server.ReloadUsers(srv.UsersFile)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("ReloadUsers of a bad file: %v, want an error naming line 3", err)
	}
}

// TestWatchUsersEmptied: the watcher never empties the table (a file
// caught halfway through a rewrite looks empty); SIGHUP still can.
func TestWatchUsersEmptied(t *testing.T) {
	var logs logBuffer
	srv := servertest.Start(t, testUsers, withLog(&logs))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Server.WatchUsers(ctx, srv.UsersFile); err != nil {
		t.Fatal(err)
	}
	alice := login(t, srv, "alice", "pw-alice")
	if err := os.WriteFile(srv.UsersFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the empty file to be logged", func() bool { return strings.Contains(logs.String(), "now empty") })
	alice.send("MSG alice alice still here\r\n")
	alice.expect("RELAY alice alice still here \r\n")
	// An operator who means it sends SIGHUP, which reloads as it is.
	if err := srv.Server.ReloadUsers(srv.UsersFile); err != nil {
		t.Fatal(err)
	}
	alice.expect("END <account removed> \r\n")
	alice.expectClosed()
}

// lastLine returns the last line of s that contains sub.
func lastLine(s, sub string) string {
	var last string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			last = l
		}
	}
	return last
}

// TestSetUsersKeepsSessions: a new table closes only the sessions of users
// it no longer holds; a changed password does not end a session.
func TestSetUsersKeepsSessions(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	carol := login(t, srv, "carol", "pw-carol")
	srv.ReloadUsers(servertest.Users{"alice": "new-pw", "bob": "pw-bob", "erin": "pw-erin"})
	carol.expect("END <account removed> \r\n")
	carol.expectClosed()
	waitOnline(t, srv, 2)
	alice.send("MSG bob alice same session\r\n")
	bob.expect("RELAY bob alice same session \r\n")
	// The new password counts from now on; the old one is refused.
	c := dial(t, srv)
	c.send("AUTH alice pw-alice\r\n")
	c.expect(endBadLogin)
	erin := login(t, srv, "erin", "pw-erin")
	alice.send("MSG erin alice hello erin\r\n")
	erin.expect("RELAY erin alice hello erin \r\n")
	if n := srv.Server.Stats().CloseCount("account_removed"); n != 1 {
		t.Errorf("account_removed closes = %d, want 1", n)
	}
}

// TestCertReload swaps the certificate under a running server: new
// connections see the new one, sessions that are up go on, and a broken
// file keeps the old certificate.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	src, created, err := server.NewCertSource(certFile, keyFile)
	if err != nil || !created {
		t.Fatalf("NewCertSource: created %v, %v", created, err)
	}
	first := src.Fingerprint()
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.TLS = src.TLSConfig() })
	if got := servedFingerprint(t, srv.Addr); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}
	alice := loginInsecure(t, srv.Addr, "alice", "pw-alice")

	if _, err := certs.WriteNew(certFile, keyFile, []string{"localhost", "127.0.0.1"}, true); err != nil {
		t.Fatal(err)
	}
	second, err := src.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("the new certificate has the old fingerprint")
	}
	if got := servedFingerprint(t, srv.Addr); got != second {
		t.Errorf("after reload served %s, want %s", got, second)
	}
	alice.send("MSG alice alice still connected\r\n")
	alice.expect("RELAY alice alice still connected \r\n")

	// A broken key: the reload fails and the current certificate stays.
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(); err == nil {
		t.Error("reload of a broken key succeeded")
	}
	if got := servedFingerprint(t, srv.Addr); got != second {
		t.Errorf("after a failed reload served %s, want %s", got, second)
	}
	if src.Fingerprint() != second {
		t.Errorf("Fingerprint() = %s after a failed reload, want %s", src.Fingerprint(), second)
	}
}

// servedFingerprint connects and returns the fingerprint of the
// certificate the server presents.
func servedFingerprint(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return certs.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

// loginInsecure logs in without checking the certificate, which the test
// is about to change.
func loginInsecure(t *testing.T, addr, user, password string) *lineConn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &lineConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.send("AUTH " + user + " " + password + "\r\n")
	c.expect("ACCEPT " + user + " \r\n")
	return c
}

// TestMetrics scrapes the Prometheus handler after some traffic and checks
// every messager metric is there with the value the traffic implies.
func TestMetrics(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	hs := httptest.NewServer(srv.Server.MetricsHandler())
	defer hs.Close()

	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	for _, m := range []string{"one", "two", "three"} {
		alice.send("MSG bob alice " + m + "\r\n")
		bob.expect("RELAY bob alice " + m + " \r\n")
	}
	alice.send("MSG carol alice hello?\r\n")
	alice.expect("CNT <user not online> \r\n")
	c := dial(t, srv)
	c.send("AUTH alice wrong\r\n")
	c.expect(endBadLogin)
	c.expectClosed()
	c = login(t, srv, "carol", "pw-carol")
	c.send("HELLO\r\n")
	c.expect("END * <incorrect protocol> \r\n")
	c.expectClosed()
	st := srv.Server.Stats()
	waitFor(t, "the counters", func() bool {
		return st.Relayed.Load() == 3 && st.NotOnline.Load() == 1 && srv.Server.Online() == 2
	})

	m := scrape(t, hs.URL)
	want := map[string]float64{
		"messager_sessions_online":                         2,
		"messager_connections_pending":                     0,
		`messager_logins_total{result="ok"}`:               3,
		`messager_logins_total{result="failed"}`:           1,
		`messager_logins_total{result="refused"}`:          0,
		"messager_messages_relayed_total":                  3,
		"messager_cnt_total":                               1,
		`messager_closes_total{reason="bad_login"}`:        1,
		`messager_closes_total{reason="protocol_error"}`:   1,
		`messager_closes_total{reason="too_slow"}`:         0,
		`messager_closes_total{reason="handshake_failed"}`: 0,
		"messager_queue_high_water_bytes":                  0,
	}
	for name, v := range want {
		got, ok := m[name]
		if !ok {
			t.Errorf("metric %s missing", name)
		} else if got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	// Bytes: at least the lines above went each way.
	if in := m[`messager_bytes_total{direction="in"}`]; in < float64(len("MSG bob alice one\r\n")*3) {
		t.Errorf("bytes in = %v", in)
	}
	if out := m[`messager_bytes_total{direction="out"}`]; out < float64(len("RELAY bob alice one \r\n")*3) {
		t.Errorf("bytes out = %v", out)
	}
	// Every close reason has a series, so dashboards need no guessing.
	for reason := range st.ClosesByReason() {
		if _, ok := m[`messager_closes_total{reason="`+reason+`"}`]; !ok {
			t.Errorf("no series for close reason %s", reason)
		}
	}
	// The Go runtime and process collectors are there too.
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := m[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
}

// scrape fetches url and returns its samples by "name{labels}".
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s, %v", resp.Status, err)
	}
	m := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}
