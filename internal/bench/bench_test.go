package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

// startServer starts a real server with the bench users of pairs pairs and
// sessions idle sessions.
func startServer(t *testing.T, pairs, sessions int) *servertest.Server {
	t.Helper()
	return startServerFor(t, Config{Pairs: pairs, Sessions: sessions})
}

// startServerFor starts a real server with the bench users a run as cfg
// describes needs.
func startServerFor(t *testing.T, cfg Config, opts ...servertest.Option) *servertest.Server {
	t.Helper()
	u := servertest.Users{}
	for _, name := range UserNames(cfg) {
		u[name] = DefaultPassword
	}
	return servertest.Start(t, u, opts...)
}

// baseConfig is a short run against srv; the server runs in this process.
func baseConfig(srv *servertest.Server, pairs int) Config {
	return Config{
		Server:    srv.Addr,
		ServerPID: os.Getpid(),
		TLS:       TLS{Fingerprint: srv.Fingerprint},
		Pairs:     pairs,
		Size:      100,
		Warmup:    50 * time.Millisecond,
		Duration:  200 * time.Millisecond,
		Drain:     2 * time.Second,
	}
}

// checkLoad checks what every load run must report: everything sent was
// delivered, in order, without errors, and the figures add up.
func checkLoad(t *testing.T, rep *Report) {
	t.Helper()
	if rep.Sent == 0 || rep.Delivered != rep.Sent {
		t.Errorf("sent %d, delivered %d: want all delivered", rep.Sent, rep.Delivered)
	}
	if rep.Lost != 0 || rep.OutOfOrder != 0 || rep.CNT != 0 || rep.Errors != 0 {
		t.Errorf("lost %d, out of order %d, CNT %d, errors %d %q: want none", rep.Lost, rep.OutOfOrder, rep.CNT, rep.Errors, rep.ErrorList)
	}
	if rep.MeasuredDelivered == 0 || rep.MeasuredDelivered > rep.Delivered || rep.MsgsPerSec <= 0 || rep.MBPerSec <= 0 {
		t.Errorf("measured %d of %d, %.0f msgs/s, %.3f MB/s: want positive figures within the run",
			rep.MeasuredDelivered, rep.Delivered, rep.MsgsPerSec, rep.MBPerSec)
	}
	l := rep.Latency
	if l.Count == 0 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Errorf("latency %+v: want ordered positive percentiles", l)
	}
	if rep.ServerUsage == nil || rep.ServerUsage.PeakRSS == 0 || rep.ServerUsage.CPUSeconds < 0 {
		t.Errorf("server usage %+v: want figures from /proc", rep.ServerUsage)
	}
	if rep.Bench.GOMAXPROCS != runtime.GOMAXPROCS(0) {
		t.Errorf("bench GOMAXPROCS %d", rep.Bench.GOMAXPROCS)
	}
	if rep.Certificate != "pinned by fingerprint" {
		t.Errorf("certificate %q", rep.Certificate)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"msgs/s", "p99.9", "lost 0", "server cpu"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestClosedLoop(t *testing.T) {
	srv := startServer(t, 2, 0)
	cfg := baseConfig(srv, 2)
	cfg.Window = 16
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, rep)
	if rep.Mode != ModeClosedLoop || rep.ScheduleLag != nil {
		t.Errorf("mode %q, schedule lag %v: want a closed loop without lag", rep.Mode, rep.ScheduleLag)
	}
}

func TestOpenLoop(t *testing.T) {
	srv := startServer(t, 3, 0)
	cfg := baseConfig(srv, 3)
	cfg.Rate = 3000
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, rep)
	if rep.Mode != ModeOpenLoop || rep.ScheduleLag == nil || rep.ScheduleLag.Count == 0 {
		t.Fatalf("mode %q, schedule lag %+v: want an open loop with lag figures", rep.Mode, rep.ScheduleLag)
	}
	// The schedule over warmup, measurement and no more: about rate ×
	// (warmup + duration) messages, give or take the last slot.
	want := cfg.Rate * (cfg.Warmup + cfg.Duration).Seconds()
	if got := float64(rep.Sent); got < want*0.7 || got > want*1.1 {
		t.Errorf("sent %d messages, want about %.0f", rep.Sent, want)
	}
}

func TestIdleSessions(t *testing.T) {
	srv := startServer(t, 1, 30)
	cfg := baseConfig(srv, 1)
	cfg.Sessions = 30
	cfg.Probes = 50
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ir := rep.Idle
	if rep.Mode != ModeIdle || ir == nil {
		t.Fatalf("mode %q, idle %v", rep.Mode, ir)
	}
	if ir.Opened != 30 || ir.Stopped != "" || ir.SourceAddrs != 1 {
		t.Errorf("opened %d from %d addresses, stopped %q: want all 30 from one", ir.Opened, ir.SourceAddrs, ir.Stopped)
	}
	if ir.ProbesSent != 50 || ir.ProbesRelayed != 50 || ir.ProbeLatency.Count != 50 {
		t.Errorf("probes sent %d, relayed %d, timed %d: want 50", ir.ProbesSent, ir.ProbesRelayed, ir.ProbeLatency.Count)
	}
	if ir.RSSBefore == 0 || ir.RSSAfter == 0 || rep.Errors != 0 {
		t.Errorf("rss %d → %d, errors %d %q", ir.RSSBefore, ir.RSSAfter, rep.Errors, rep.ErrorList)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	if !strings.Contains(text.String(), "30 of 30 idle sessions") {
		t.Errorf("text report:\n%s", text.String())
	}
}

func TestIdleStopsWithReason(t *testing.T) {
	// Only 5 of the 8 idle users exist: the sixth login is refused and
	// the bench says so instead of failing.
	srv := startServer(t, 1, 5)
	cfg := baseConfig(srv, 1)
	cfg.Sessions = 8
	cfg.Probes = 5
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ir := rep.Idle
	if ir.Opened > 5 || !strings.Contains(ir.Stopped, "incorrect username or password") ||
		!strings.HasPrefix(ir.Stopped, "stopped at ") {
		t.Errorf("opened %d, stopped %q: want a stop at most 5 with the server's reason", ir.Opened, ir.Stopped)
	}
}

func TestNoServerPID(t *testing.T) {
	srv := startServer(t, 1, 0)
	cfg := baseConfig(srv, 1)
	cfg.ServerPID = 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	if rep.ServerUsage != nil || !strings.Contains(text.String(), "not measured") {
		t.Errorf("server usage %+v without a pid; text:\n%s", rep.ServerUsage, text.String())
	}
	cfg.ServerPID = -5
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--server-pid") {
		t.Errorf("err = %v for a missing process, want one naming --server-pid", err)
	}
}

func TestBadPassword(t *testing.T) {
	srv := startServer(t, 1, 0)
	cfg := baseConfig(srv, 1)
	cfg.Password = "wrong"
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("err = %v, want the server's refusal", err)
	}
}

func TestWrongFingerprint(t *testing.T) {
	srv := startServer(t, 1, 0)
	cfg := baseConfig(srv, 1)
	cfg.TLS.Fingerprint = "sha256:" + strings.Repeat("0", 64)
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("err = %v, want a fingerprint mismatch", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"window and rate", Config{Window: 4, Rate: 10}, "exclude"},
		{"small size", Config{Size: 10}, "--size"},
		{"huge size", Config{Size: MaxSize + 1}, "--size"},
		{"negative pairs", Config{Pairs: -1}, "--pairs"},
		{"bad password", Config{Password: "a b"}, "--password"},
		{"pid without server", Config{ServerPID: 1}, "--server-pid"},
		{"long prefix", Config{UserPrefix: strings.Repeat("p", 30)}, "--user-prefix"},
		{"bad prefix", Config{UserPrefix: "b/"}, "--user-prefix"},
		{"bad transport", Config{Transport: "udp"}, "--transport must be tls or ws"},
		{"server b alone", Config{ServerB: "127.0.0.1:1"}, "--server-b needs --server"},
		{"pid b without server b", Config{Server: "127.0.0.1:1", ServerPIDB: 1}, "go with --server-b"},
		{"fingerprint b without server b", Config{Server: "127.0.0.1:1", TLSB: TLS{Fingerprint: "sha256:00"}}, "go with --server-b"},
		{"pid b without pid", Config{Server: "127.0.0.1:1", ServerB: "127.0.0.1:2", ServerPIDB: 1}, "--server-pid-b goes with --server-pid"},
		{"server b idle", Config{Server: "127.0.0.1:1", ServerB: "127.0.0.1:2", Sessions: 3}, "--server-b is for the 1:1 and group loads"},
		{"server b presence", Config{Server: "127.0.0.1:1", ServerB: "127.0.0.1:2", Sessions: 3, Presence: true}, "--server-b is for the 1:1 and group loads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestWriteUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.csv")
	n, err := WriteUsers(path, Config{Pairs: 3, Sessions: 4})
	if err != nil {
		t.Fatal(err)
	}
	table, err := users.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 || table.Len() != 10 || !table.Has("b-s-0003") || !table.Has("b-r-0001") || !table.Has("b-i-000004") {
		t.Errorf("wrote %d users, table has %d: %v", n, table.Len(), table.Names())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v: want 0600", fi.Mode(), err)
	}
	if _, err := WriteUsers(path, Config{Pairs: 1}); err == nil {
		t.Error("WriteUsers overwrote an existing file")
	}
}

// TestClosedLoopVersion2: the 1:1 load with sessions that say HELLO 2
// first counts as the version-1 one does.
func TestClosedLoopVersion2(t *testing.T) {
	srv := startServer(t, 2, 0)
	cfg := baseConfig(srv, 2)
	cfg.Window = 16
	cfg.Version2 = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, rep)
}
