package metrics_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/metrics"
	"github.com/messager/messager/internal/server/servertest"
)

var testUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}

// TestMetrics scrapes the Prometheus handler after some traffic and checks
// every messager metric is there with the value the traffic implies.
func TestMetrics(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	hs := httptest.NewServer(metrics.Handler(srv.Server))
	defer hs.Close()

	alice := srv.Login(t, "alice", "pw-alice")
	bob := srv.Login(t, "bob", "pw-bob")
	for _, m := range []string{"one", "two", "three"} {
		alice.Send("MSG bob alice " + m + "\r\n")
		bob.Expect("RELAY bob alice " + m + " \r\n")
	}
	alice.Send("MSG carol alice hello?\r\n")
	alice.Expect("CNT <user not online> \r\n")
	c := srv.DialConn(t)
	c.Send("AUTH alice wrong\r\n")
	c.Expect("END <incorrect username or password> \r\n")
	c.ExpectClosed()
	c = srv.Login(t, "carol", "pw-carol")
	c.Send("HELLO\r\n")
	c.Expect("END * <incorrect protocol> \r\n")
	c.ExpectClosed()
	st := srv.Server.Stats()
	servertest.WaitFor(t, "the counters", func() bool {
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

// TestEndpointTimeouts: an idle keep-alive connection and a connection
// that never sends a request are both closed by the endpoint, and a
// scrape waiting behind the connection cap is answered once they are.
func TestEndpointTimeouts(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	ep, err := metrics.Listen("127.0.0.1:0", srv.Server, metrics.Options{
		ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxConns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := ep.Addr().String()

	// A keep-alive connection after one scrape, and one that sends nothing.
	kept := dialHTTP(t, addr)
	if _, err := io.WriteString(kept, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(kept), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	silent := dialHTTP(t, addr)

	// Both slots are taken; this scrape waits until the others are closed.
	start := time.Now()
	m := scrape(t, "http://"+addr+"/metrics")
	if _, ok := m["messager_sessions_online"]; !ok {
		t.Fatal("scrape behind the cap got no metrics")
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("scrape answered after %v with both connections taken; want it to wait for the cap", waited)
	}
	for name, c := range map[string]net.Conn{"idle keep-alive": kept, "silent": silent} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("%s connection: %v, want it closed by the endpoint", name, err)
		}
	}
}

func dialHTTP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
