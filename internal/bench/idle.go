package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Idle mode limits. Logins run loginConcurrency at a time (see there).
// One source address gets at most sessionsPerAddr sessions, under the
// kernel's usual 28,232 ephemeral ports; beyond that sessions come from
// further loopback addresses.
const (
	sessionsPerAddr  = 20_000
	closeConcurrency = 256
	probeInterval    = time.Millisecond
	// serverFileSlack: a server this close to its open-file limit is
	// taken to have reached it (files come and go during a handshake).
	serverFileSlack = 4
)

// idleRun holds N idle sessions and probes them.
type idleRun struct {
	cfg   *Config
	clock time.Time
	pid   int // the server's, when known

	mu       sync.Mutex
	sessions []*session
	stopped  string // why opening stopped early

	closing  atomic.Bool
	relayed  atomic.Uint64
	cnt      atomic.Uint64
	closedBy atomic.Uint64 // sessions the server closed
	latency  *shardedHist
	errs     errorLog
	readers  sync.WaitGroup
}

func (r *idleRun) now() uint64 { return uint64(time.Since(r.clock)) }

// runIdle opens cfg.Sessions idle sessions, measures the server's memory
// per session, sends probe messages to random ones while they are
// connected, holds them for cfg.Hold and closes them. It is one of the run
// modes; the others live beside it.
func runIdle(ctx context.Context, cfg *Config, t *target, rep *Report, fileLimit uint64) error {
	r := &idleRun{cfg: cfg, clock: time.Now(), pid: t.pid, latency: newShardedHist(1), sessions: make([]*session, 0, cfg.Sessions)}
	ir := &IdleReport{Requested: cfg.Sessions, FileLimit: fileLimit}
	rep.Idle = ir
	cpuStart := selfCPU()

	// The probe sender logs in first, so that reaching a limit later
	// cannot keep it out.
	sender, err := t.dial.login(ctx, senderName(cfg.UserPrefix, 0), cfg.Password, loginOptions{})
	if err != nil {
		return fmt.Errorf("log in the probe sender: %w", err)
	}
	defer sender.close()
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); r.watchSender(sender) }()

	var before procSample
	if t.pid != 0 {
		if before, err = readProc(t.pid); err != nil {
			return err
		}
		ir.RSSBefore = before.RSS
	}

	openStart := time.Now()
	stopProgress := r.progress()
	ir.SourceAddrs = r.open(ctx, t, fileLimit)
	stopProgress()
	ir.LoginSeconds = time.Since(openStart).Seconds()
	ir.Opened, ir.Stopped = len(r.sessions), r.stopped
	defer r.closeAll()

	if len(r.sessions) > 0 {
		r.probe(ctx, sender, ir)
	}
	if wait := cfg.Hold - time.Since(openStart); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	ir.HoldSeconds = time.Since(openStart).Seconds()

	if t.pid != 0 {
		after, err := readProc(t.pid)
		if err != nil {
			return err
		}
		ir.RSSAfter = after.RSS
		if ir.Opened > 0 {
			ir.PerSession = (float64(after.RSS) - float64(before.RSS)) / float64(ir.Opened)
		}
		rep.ServerUsage = &ServerUsage{PID: t.pid, CPUSeconds: (after.CPU - before.CPU).Seconds(), PeakRSS: after.HWM, RSS: after.RSS}
	}
	if n := r.closedBy.Load(); n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the server closed %d idle sessions while they were held", n))
	}
	r.closeAll()
	sender.close()
	<-senderDone
	r.readers.Wait()

	rep.Bench = benchUsage(rep.Bench, selfCPU()-cpuStart, time.Since(r.clock))
	rep.Errors, rep.ErrorList = r.errs.snapshot()
	return nil
}

// open logs the sessions in, stopping at the first error, which it
// explains. It returns how many source addresses it used.
func (r *idleRun) open(ctx context.Context, t *target, fileLimit uint64) int {
	n := r.cfg.Sessions
	loopback := isLoopback(t.addr)
	addrs := 1
	if loopback {
		addrs = (n + sessionsPerAddr - 1) / sessionsPerAddr
	}
	err := loginAll(ctx, n, func(ctx context.Context, i int) error {
		var local net.IP
		if k := i / sessionsPerAddr; loopback && k > 0 {
			local = loopbackAddr(k)
		}
		s, err := t.dial.login(ctx, idleName(r.cfg.UserPrefix, i), r.cfg.Password, loginOptions{local: local})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.sessions = append(r.sessions, s)
		r.mu.Unlock()
		r.readers.Add(1)
		go func() { defer r.readers.Done(); r.read(s) }()
		return nil
	})
	switch {
	case ctx.Err() != nil && len(r.sessions) < n:
		r.stopped = fmt.Sprintf("stopped at %d sessions: interrupted", len(r.sessions))
	case err != nil:
		r.stopped = fmt.Sprintf("stopped at %d sessions: %s", len(r.sessions), r.explain(err, fileLimit))
	}
	if !loopback && n > sessionsPerAddr && len(r.sessions) < n {
		r.stopped += fmt.Sprintf(" (the server is not on loopback, so all sessions come from one address, whose ports run out near %d)", sessionsPerAddr)
	}
	return min(addrs, max(1, (len(r.sessions)+sessionsPerAddr-1)/sessionsPerAddr))
}

// progress writes how many sessions are open once a second, until the
// returned function is called.
func (r *idleRun) progress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-tick.C:
				r.mu.Lock()
				n := len(r.sessions)
				r.mu.Unlock()
				fmt.Fprintf(w, "\r\033[Kbench: %s of %s sessions open", countText(uint64(n)), countText(uint64(r.cfg.Sessions)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// explain says in words why a login failed while opening sessions.
func (r *idleRun) explain(err error, fileLimit uint64) string {
	var le *loginError
	switch {
	case errors.Is(err, syscall.EMFILE):
		return fmt.Sprintf("open-file limit (%d) reached: the bench cannot open more connections; a process may hold at most its hard limit of files (ulimit -Hn)", fileLimit)
	case errors.Is(err, syscall.ENFILE):
		return "the system's open-file limit (fs.file-max) reached"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "out of local ports (net.ipv4.ip_local_port_range)"
	case errors.As(err, &le):
		return fmt.Sprintf("the server refused a login with END <%s>", le.reason)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED):
		// A server out of files cannot accept: connections wait in its
		// backlog until the handshake times out. Say so when /proc can
		// tell.
		if r.pid != 0 {
			if open, limit, perr := procFiles(r.pid); perr == nil && limit > 0 && uint64(open)+serverFileSlack >= limit {
				return fmt.Sprintf("the server's open-file limit (%d) reached: it has %d files open and cannot accept more connections", limit, open)
			}
		}
		return fmt.Sprintf("the server stopped accepting connections (it may have reached its own open-file limit): %v", err)
	}
	return err.Error()
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

// loopbackAddr returns the k-th extra source address: 127.0.0.2 for 1,
// and on through 127.0.0.0/8.
func loopbackAddr(k int) net.IP {
	n := k + 1
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// read reads an idle session: probes are counted and timed, END noted.
func (r *idleRun) read(s *session) {
	lat := make([]int64, 1)
	for {
		raw, err := s.reader.ReadLine()
		if err != nil {
			if !r.closing.Load() {
				r.closedBy.Add(1)
				r.errs.add("idle session closed: %v", err)
			}
			return
		}
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err != nil {
			r.errs.add("idle session: malformed line from the server")
			continue
		}
		switch sl.Kind {
		case protocol.KindRelay:
			_, sent, err := ParsePayload(sl.Text)
			if err != nil {
				r.errs.add("idle session: a message the bench did not send")
				continue
			}
			lat[0] = int64(r.now()) - int64(sent)
			r.latency.record(0, lat)
			r.relayed.Add(1)
		case protocol.KindEnd:
			if !r.closing.Load() {
				r.errs.add("server closed an idle session: END <%s>", sl.Reason)
			}
		}
	}
}

// watchSender counts CNT answers to the probe sender.
func (r *idleRun) watchSender(s *session) {
	for {
		raw, err := s.reader.ReadLine()
		if err != nil {
			if !r.closing.Load() {
				r.errs.add("probe sender: %v", err)
			}
			return
		}
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err == nil && sl.Kind == protocol.KindCNT {
			r.cnt.Add(1)
		}
	}
}

// probe sends cfg.Probes messages, one per probeInterval, each to a random
// idle session, then waits up to Drain for them all to arrive.
func (r *idleRun) probe(ctx context.Context, sender *session, ir *IdleReport) {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	buf := make([]byte, 0, 256)
	var sent uint64
	for i := range r.cfg.Probes {
		target := r.sessions[rand.IntN(len(r.sessions))].user
		buf = fmt.Appendf(buf[:0], "MSG %s %s ", target, sender.user)
		buf = AppendPayload(buf, uint64(i), r.now(), r.cfg.Size)
		buf = append(buf, '\r', '\n')
		if _, err := sender.conn.Write(buf); err != nil {
			r.errs.add("probe sender: write: %v", err)
			break
		}
		sent++
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	deadline := time.Now().Add(r.cfg.Drain)
	for r.relayed.Load()+r.cnt.Load() < sent && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	ir.ProbesSent, ir.ProbesRelayed, ir.ProbesCNT = sent, r.relayed.Load(), r.cnt.Load()
	ir.ProbeLatency = summarize(r.latency.merged())
}

// closeAll closes every idle session, a bounded number at a time.
func (r *idleRun) closeAll() {
	if r.closing.Swap(true) {
		return
	}
	sem := make(chan struct{}, closeConcurrency)
	var wg sync.WaitGroup
	for _, s := range r.sessions {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); s.close() }()
	}
	wg.Wait()
}
