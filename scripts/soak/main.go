// Command soak runs a messager server under mixed traffic for a long time
// and reports whether it stayed flat: server goroutines and memory at the
// start and at the end, and any message lost.
//
// It builds the binary (or takes --bin), creates users in a temporary
// folder, starts "messager serve" on a loopback port with metrics on, and
// runs, for --duration (30 minutes by default):
//
//   - chatters that log in, message each other at a steady rate and log
//     out again, over and over; every message they send is accounted for:
//     received by its target, in order, or answered with CNT;
//   - slow receivers, flooded by one sender, that read slowly or not at
//     all and are closed by the server as too slow, then come back;
//   - idle sessions that only get CHECK lines;
//   - an abuser that sends malformed lines, half lines, wrong passwords
//     (from 127.0.0.2, so the throttle blocks it and nobody else), and
//     connections that never start TLS.
//
// Usage:
//
//	go run ./scripts/soak                      # 30 minutes
//	go run ./scripts/soak --duration 2m        # a short try
//	go run ./scripts/soak --bin ./messager --chatters 40 --rate 50
//
// The exit status is 0 when no message was lost, no line was out of order
// or unexpected, and the server's goroutines ended where they started.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	duration  time.Duration
	bin       string
	chatters  int
	rate      float64
	slow      int
	idle      int
	maxQueue  int
	keep      bool
	interval  time.Duration
	serverLog bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "how long to run the traffic")
	flag.StringVar(&o.bin, "bin", "", "messager binary to run (default: build ./cmd/messager)")
	flag.IntVar(&o.chatters, "chatters", 20, "users that message each other")
	flag.Float64Var(&o.rate, "rate", 20, "messages a second from each chatter")
	flag.IntVar(&o.slow, "slow", 2, "slow receivers, flooded until the server closes them")
	flag.IntVar(&o.idle, "idle", 10, "idle sessions")
	flag.IntVar(&o.maxQueue, "max-queue", 256<<10, "the server's --max-queue, in bytes")
	flag.DurationVar(&o.interval, "report-every", 0, "progress line interval (default: a tenth of --duration, at least 5s)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (user file, certificate, server log)")
	flag.BoolVar(&o.serverLog, "server-log", false, "copy the server's log to stderr")
	flag.Parse()
	if o.interval <= 0 {
		o.interval = max(o.duration/10, 5*time.Second)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// counters are the client side's account of the run.
type counters struct {
	sent, received, cnt     atomic.Int64 // chatters' messages
	orderErrors, unexpected atomic.Int64
	writeErrors             atomic.Int64
	logins, loginRetries    atomic.Int64
	chatterDrops            atomic.Int64 // chatter sessions the server ended
	slowSessions, floodSent atomic.Int64
	abuses                  atomic.Int64
	abuseAnswers            sync.Map // answer line -> *atomic.Int64
}

func (c *counters) noteAbuse(answer string) {
	v, _ := c.abuseAnswers.LoadOrStore(answer, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func run(o options) (ok bool, err error) {
	dir, err := os.MkdirTemp("", "messager-soak-")
	if err != nil {
		return false, err
	}
	if o.keep {
		fmt.Println("folder:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "messager")
		fmt.Println("building messager")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/messager")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return false, fmt.Errorf("build (run from the repository root, or pass --bin): %w", err)
		}
	}

	// Users: chatters c0..., slow receivers s0..., the flooder, idle
	// users i0..., and the abuser.
	usersFile := filepath.Join(dir, "user.csv")
	var names []string
	for i := 0; i < o.chatters; i++ {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	for i := 0; i < o.slow; i++ {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	for i := 0; i < o.idle; i++ {
		names = append(names, fmt.Sprintf("i%d", i))
	}
	names = append(names, "flood", "abuser")
	fmt.Printf("adding %d users\n", len(names))
	for _, n := range names {
		cmd := exec.Command(bin, "user", "add", n, "--users", usersFile, "--password-stdin")
		cmd.Stdin = strings.NewReader(password(n) + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return false, fmt.Errorf("user add %s: %v: %s", n, err, out)
		}
	}

	srv, err := startServer(bin, dir, usersFile, o)
	if err != nil {
		return false, err
	}
	defer srv.kill()
	fmt.Printf("server %s (metrics %s), running %v\n", srv.addr, srv.metrics, o.duration)

	start, err := scrape(srv.metrics)
	if err != nil {
		return false, err
	}
	s := &soaker{o: o, srv: srv, tls: pinnedTLS(srv.fingerprint)}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	go func() {
		if _, ok := <-stop; ok {
			fmt.Println("interrupted: finishing early")
			cancel()
		}
	}()
	defer signal.Stop(stop)

	began := time.Now()
	var wg sync.WaitGroup
	s.receivers = make([]*receiverState, o.chatters)
	for i := range s.receivers {
		s.receivers[i] = &receiverState{last: make([]int64, o.chatters)}
		for j := range s.receivers[i].last {
			s.receivers[i].last[j] = -1
		}
	}
	for i := 0; i < o.chatters; i++ {
		wg.Go(func() { s.chatter(ctx, i) })
	}
	for i := 0; i < o.slow; i++ {
		wg.Go(func() { s.slowReceiver(ctx, i) })
	}
	if o.slow > 0 {
		wg.Go(func() { s.flooder(ctx) })
	}
	for i := 0; i < o.idle; i++ {
		wg.Go(func() { s.idler(ctx, i) })
	}
	wg.Go(func() { s.abuser(ctx) })

	// The first and last samples under load: flat is the goal.
	var firstLoad, lastLoad map[string]float64
	tick := time.NewTicker(o.interval)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			m, err := scrape(srv.metrics)
			if err != nil {
				fmt.Println("scrape:", err)
				continue
			}
			if firstLoad == nil {
				firstLoad = m
			}
			lastLoad = m
			fmt.Printf("%8v online %4.0f  goroutines %5.0f  heap %6.1f MiB  rss %6.1f MiB  sent %9d  received %9d  cnt %7d  too slow %5.0f\n",
				time.Since(began).Round(time.Second), m["messager_sessions_online"], m["go_goroutines"],
				m["go_memstats_heap_inuse_bytes"]/(1<<20), m["process_resident_memory_bytes"]/(1<<20),
				s.c.sent.Load(), s.c.received.Load(), s.c.cnt.Load(), m[`messager_closes_total{reason="too_slow"}`])
		}
	}
	tick.Stop()
	fmt.Println("traffic stopped; waiting for clients to log out")
	wg.Wait()

	// Let the server settle: every session closed, nothing waiting to log
	// in, then compare with the start.
	var end map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	collect(srv.metrics) // so the end figures show what is live, not garbage
	for {
		end, err = scrape(srv.metrics)
		if err != nil {
			return false, err
		}
		settled := end["messager_sessions_online"] == 0 && end["messager_connections_pending"] == 0 && end["go_goroutines"] <= start["go_goroutines"]
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var dump string
	if end["go_goroutines"] > start["go_goroutines"] {
		dump = goroutineDump(srv.metrics)
	}
	status := srv.stop()

	c := &s.c
	lost := c.sent.Load() - c.received.Load() - c.cnt.Load()
	fmt.Printf("\nsoak of %v (%d chatters at %.0f msg/s, %d slow receivers, %d idle)\n", time.Since(began).Round(time.Second), o.chatters, o.rate, o.slow, o.idle)
	fmt.Printf("  messages: sent %d, received %d, answered CNT %d, lost %d, out of order %d\n", c.sent.Load(), c.received.Load(), c.cnt.Load(), lost, c.orderErrors.Load())
	fmt.Printf("  unexpected lines %d, write errors %d, chatter sessions ended by the server %d\n", c.unexpected.Load(), c.writeErrors.Load(), c.chatterDrops.Load())
	fmt.Printf("  logins %d (retried %d), flood messages %d, slow receiver sessions %d, abuses %d\n", c.logins.Load(), c.loginRetries.Load(), c.floodSent.Load(), c.slowSessions.Load(), c.abuses.Load())
	c.abuseAnswers.Range(func(k, v any) bool {
		fmt.Printf("    abuse answer %-45q %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Printf("  server closes:")
	for k, v := range end {
		if r, ok := strings.CutPrefix(k, `messager_closes_total{reason="`); ok && v > 0 {
			fmt.Printf(" %s=%.0f", strings.TrimSuffix(r, `"}`), v)
		}
	}
	fmt.Println()
	fmt.Printf("  server goroutines: start %.0f, end %.0f\n", start["go_goroutines"], end["go_goroutines"])
	fmt.Printf("  server heap in use: start %.1f MiB, end %.1f MiB\n", start["go_memstats_heap_inuse_bytes"]/(1<<20), end["go_memstats_heap_inuse_bytes"]/(1<<20))
	fmt.Printf("  server resident memory: start %.1f MiB, end %.1f MiB\n", start["process_resident_memory_bytes"]/(1<<20), end["process_resident_memory_bytes"]/(1<<20))
	if firstLoad != nil {
		fmt.Printf("  under load, first and last sample: goroutines %.0f -> %.0f, heap in use %.1f -> %.1f MiB, resident %.1f -> %.1f MiB\n",
			firstLoad["go_goroutines"], lastLoad["go_goroutines"],
			firstLoad["go_memstats_heap_inuse_bytes"]/(1<<20), lastLoad["go_memstats_heap_inuse_bytes"]/(1<<20),
			firstLoad["process_resident_memory_bytes"]/(1<<20), lastLoad["process_resident_memory_bytes"]/(1<<20))
	}
	fmt.Printf("  server exit: %v\n", status)

	ok = true
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL: "+format+"\n", args...)
		ok = false
	}
	if lost != 0 {
		fail("%d messages neither received nor answered with CNT", lost)
	}
	if n := c.orderErrors.Load(); n != 0 {
		fail("%d messages out of order", n)
	}
	if n := c.unexpected.Load(); n != 0 {
		fail("%d unexpected lines", n)
	}
	if end["go_goroutines"] > start["go_goroutines"] {
		fail("server goroutines grew from %.0f to %.0f", start["go_goroutines"], end["go_goroutines"])
		if dump != "" {
			fmt.Printf("server goroutines at the end:\n%s\n", dump)
		}
	}
	if status != nil {
		fail("server exit: %v", status)
	}
	if ok {
		fmt.Println("PASS")
	}
	return ok, nil
}

// password is the soak password of user name.
func password(name string) string { return "soak-" + name + "-pw" }

// server is the messager serve process.
type server struct {
	cmd                        *exec.Cmd
	addr, metrics, fingerprint string
	exited                     chan error
}

func startServer(bin, dir, usersFile string, o options) (*server, error) {
	cmd := exec.Command(bin, "serve",
		"--listen", "127.0.0.1:0",
		"--metrics", "127.0.0.1:0",
		"--pprof", // for the goroutine dump when the count grew
		"--users", usersFile,
		"--cert", filepath.Join(dir, "cert.pem"),
		"--key", filepath.Join(dir, "key.pem"),
		"--check-interval", "5s",
		"--max-queue", strconv.Itoa(o.maxQueue),
		"--log-format", "json",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1)}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(append(line, '\n'))
			if o.serverLog {
				fmt.Fprintf(os.Stderr, "server: %s\n", line)
			}
			var rec struct{ Msg, Addr, Fingerprint string }
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "listening":
				s.addr, s.fingerprint = rec.Addr, rec.Fingerprint
			case "serving metrics":
				s.metrics = rec.Addr
			}
			if s.addr != "" && s.metrics != "" && ready != nil {
				close(ready)
				ready = nil
			}
		}
	}()
	go func() { s.exited <- cmd.Wait() }()
	select {
	case <-ready:
		return s, nil
	case err := <-s.exited:
		return nil, fmt.Errorf("server exited at start: %v (see its log in %s)", err, dir)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("server did not log its addresses within 30s")
	}
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		return err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("no exit within 30s of SIGTERM")
	}
}

func (s *server) kill() {
	select {
	case err := <-s.exited:
		s.exited <- err
	default:
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// collect makes the server run a garbage collection (through the heap
// profile's gc=1), so that memory read afterwards is what is live.
func collect(addr string) {
	cl := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := cl.Get("http://" + addr + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// goroutineDump returns the server's goroutine stacks, or "" when they
// cannot be read.
func goroutineDump(addr string) string {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// scrape reads the server's metrics into name{labels} -> value.
// Each scrape uses a fresh connection: a kept-alive one would hold a
// goroutine in the server and blur the start and end counts.
func scrape(addr string) (map[string]float64, error) {
	cl := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// pinnedTLS trusts exactly the certificate with the given fingerprint.
func pinnedTLS(fingerprint string) *tls.Config {
	want := strings.TrimPrefix(fingerprint, "sha256:")
	return &tls.Config{
		InsecureSkipVerify: true, // verified below, by fingerprint
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != want {
				return errors.New("certificate fingerprint mismatch")
			}
			return nil
		},
	}
}

type soaker struct {
	o         options
	srv       *server
	tls       *tls.Config
	c         counters
	receivers []*receiverState
}

// receiverState is what chatter j has received, kept across its sessions:
// the last sequence number from each sender.
type receiverState struct{ last []int64 }

// conn is a client connection with a line reader.
type conn struct {
	*tls.Conn
	r *bufio.Reader
}

// dial connects from the given local address ("" for any).
func (s *soaker) dial(local string) (*conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := tls.DialWithDialer(d, "tcp", s.srv.addr, s.tls)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// login logs in as name, retrying while the server asks to come back
// later, until ctx ends.
func (s *soaker) login(ctx context.Context, name string) (*conn, error) {
	backoff := 50 * time.Millisecond
	for {
		c, err := s.dial("")
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			_, err = io.WriteString(c, "AUTH "+name+" "+password(name)+"\r\n")
			var line string
			if err == nil {
				line, err = c.r.ReadString('\n')
			}
			_ = c.SetDeadline(time.Time{})
			if err == nil && line == "ACCEPT "+name+" \r\n" {
				s.c.logins.Add(1)
				return c, nil
			}
			c.Close()
			if err == nil && line != "END <too many attempts> \r\n" && line != "END <too many connections> \r\n" {
				s.c.unexpected.Add(1)
				return nil, fmt.Errorf("login %s: %q", name, line)
			}
		}
		s.c.loginRetries.Add(1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// chatter i logs in, messages random chatters for a random while, logs out,
// and starts again. Its messages carry "<seq>" so receivers check order.
func (s *soaker) chatter(ctx context.Context, i int) {
	name := fmt.Sprintf("c%d", i)
	var seq int64
	for ctx.Err() == nil {
		c, err := s.login(ctx, name)
		if err != nil {
			return
		}
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			s.readChatter(c, i)
		}()
		session := time.Duration(2+rand.IntN(18)) * time.Second
		end := time.Now().Add(session)
		interval := time.Duration(float64(time.Second) / s.o.rate)
		tick := time.NewTicker(interval)
		var buf []byte
	send:
		for time.Now().Before(end) {
			select {
			case <-ctx.Done():
				break send
			case <-readDone:
				break send // the server ended the session
			case <-tick.C:
			}
			target := rand.IntN(s.o.chatters)
			buf = fmt.Appendf(buf[:0], "MSG c%d %s %d %s\r\n", target, name, seq, strings.Repeat("x", rand.IntN(200)))
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(buf); err != nil {
				s.c.writeErrors.Add(1)
				break send
			}
			s.c.sent.Add(1)
			seq++
		}
		tick.Stop()
		_, _ = io.WriteString(c, "END\r\n")
		select {
		case <-readDone:
		case <-time.After(60 * time.Second):
			s.c.unexpected.Add(1)
			fmt.Printf("%s: no end of session 60s after END\n", name)
		}
		c.Close()
		if !sleep(ctx, time.Duration(rand.IntN(1000))*time.Millisecond) {
			return
		}
	}
}

// readChatter reads chatter i's session until it ends, accounting for
// every line.
func (s *soaker) readChatter(c *conn, i int) {
	rs := s.receivers[i]
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := c.r.ReadString('\n')
		if err != nil {
			if line != "" || !errors.Is(err, io.EOF) {
				s.c.unexpected.Add(1)
				fmt.Printf("c%d: read: %v (partial %q)\n", i, err, line)
			}
			return
		}
		switch {
		case strings.HasPrefix(line, "RELAY "):
			f := strings.Fields(line)
			var from int
			seq, err := strconv.ParseInt(f[3], 10, 64)
			if _, err2 := fmt.Sscanf(f[2], "c%d", &from); err != nil || err2 != nil || f[1] != fmt.Sprintf("c%d", i) || from >= len(rs.last) {
				s.c.unexpected.Add(1)
				continue
			}
			if seq <= rs.last[from] {
				s.c.orderErrors.Add(1)
			}
			rs.last[from] = seq
			s.c.received.Add(1)
		case line == "CNT <user not online> \r\n":
			s.c.cnt.Add(1)
		case line == "CHECK \r\n":
		case line == "END <end accepted> \r\n":
		case strings.HasPrefix(line, "END "):
			s.c.chatterDrops.Add(1)
			fmt.Printf("c%d: server ended the session: %q\n", i, line)
		default:
			s.c.unexpected.Add(1)
			fmt.Printf("c%d: unexpected %q\n", i, line)
		}
	}
}

// slowReceiver i alternates between reading a line every 200 ms and not
// reading at all for a few seconds; the flooder fills its queue until the
// server closes it as too slow.
func (s *soaker) slowReceiver(ctx context.Context, i int) {
	name := fmt.Sprintf("s%d", i)
	for ctx.Err() == nil {
		c, err := s.login(ctx, name)
		if err != nil {
			return
		}
		if rand.IntN(2) == 0 {
			// Frozen for a while, then read what is left, briefly.
			sleep(ctx, time.Duration(3+rand.IntN(8))*time.Second)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.Copy(io.Discard, c)
		} else {
			stop := context.AfterFunc(ctx, func() { c.Close() })
			for ctx.Err() == nil {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				line, err := c.r.ReadString('\n')
				if err != nil || line == "END <too slow> \r\n" {
					break
				}
				sleep(ctx, 200*time.Millisecond)
			}
			stop()
		}
		c.Close()
		s.c.slowSessions.Add(1)
		if !sleep(ctx, time.Duration(500+rand.IntN(2000))*time.Millisecond) {
			return
		}
	}
}

// flooder sends 4 KB messages to the slow receivers at about 1 MB/s in
// all, and reads its CNTs.
func (s *soaker) flooder(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := s.login(ctx, "flood")
		if err != nil {
			return
		}
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			for {
				_ = c.SetReadDeadline(time.Time{})
				line, err := c.r.ReadString('\n')
				if err != nil {
					return
				}
				if line != "CNT <user not online> \r\n" && line != "CHECK \r\n" && line != "END <end accepted> \r\n" {
					s.c.unexpected.Add(1)
					fmt.Printf("flood: unexpected %q\n", line)
				}
			}
		}()
		text := strings.Repeat("f", 4000)
		tick := time.NewTicker(4 * time.Millisecond)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-readDone:
			case <-tick.C:
			}
			if ctx.Err() != nil {
				break
			}
			msg := fmt.Sprintf("MSG s%d flood %s\r\n", rand.IntN(s.o.slow), text)
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(c, msg); err != nil {
				s.c.writeErrors.Add(1)
				break
			}
			s.c.floodSent.Add(1)
		}
		tick.Stop()
		_, _ = io.WriteString(c, "END\r\n")
		<-readDone
		c.Close()
	}
}

// idler i stays logged in, reading CHECK lines.
func (s *soaker) idler(ctx context.Context, i int) {
	name := fmt.Sprintf("i%d", i)
	for ctx.Err() == nil {
		c, err := s.login(ctx, name)
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { _, _ = io.WriteString(c, "END\r\n") })
		for {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			line, err := c.r.ReadString('\n')
			if err != nil {
				break
			}
			if line != "CHECK \r\n" && line != "END <end accepted> \r\n" {
				s.c.unexpected.Add(1)
				fmt.Printf("%s: unexpected %q\n", name, line)
			}
		}
		stop()
		c.Close()
	}
}

// abuses are what the abuser does, each on a new connection.
var abuses = []struct {
	name  string
	login bool   // log in as the abuser first
	send  string // then send this
	local string // from this local address
	noTLS bool
}{
	{name: "control character", login: true, send: "MSG c0 abuser hi\x1b[2J\r\n"},
	{name: "spoofed sender", login: true, send: "MSG c0 c1 hi\r\n"},
	{name: "overlong line", login: true, send: strings.Repeat("o", 5000) + "\r\n"},
	{name: "second AUTH", login: true, send: "AUTH abuser x\r\n"},
	{name: "unknown word", send: "HELLO\r\n"},
	{name: "half line then close", login: true, send: "MSG c0 abuser half"},
	{name: "wrong password", send: "AUTH c0 wrong\r\n", local: "127.0.0.2"},
	{name: "no TLS", noTLS: true},
}

// abuser misbehaves twice a second.
func (s *soaker) abuser(ctx context.Context) {
	for sleep(ctx, 500*time.Millisecond) {
		a := abuses[rand.IntN(len(abuses))]
		s.c.abuses.Add(1)
		if a.noTLS {
			raw, err := net.DialTimeout("tcp", s.srv.addr, 10*time.Second)
			if err == nil {
				sleep(ctx, time.Duration(rand.IntN(500))*time.Millisecond)
				raw.Close()
			}
			continue
		}
		var c *conn
		var err error
		if a.login {
			c, err = s.login(ctx, "abuser")
		} else {
			c, err = s.dial(a.local)
		}
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.WriteString(c, a.send)
		if strings.HasSuffix(a.send, "\n") {
			line, _ := c.r.ReadString('\n')
			s.c.noteAbuse(line)
		}
		c.Close()
	}
}
