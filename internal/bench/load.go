package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Concurrency of logins. A server counts logins still being checked per
// source address and, by default, blocks an address with more than ten
// for a minute (END <too many attempts>), so the bench stays below that.
const loginConcurrency = 8

// maxBatch bounds the messages a sender writes in one call, so that an
// open-loop sender far behind its schedule still writes in pieces.
const maxBatch = 256

// pair is one sender and its receiver with the counters they share. The
// receiver's delivery acknowledges a message for the sender's window.
type pair struct {
	index            int
	sender, receiver *session
	senderName       []byte
	prefix           []byte // "MSG <receiver> <sender> "
	relayPrefix      []byte // "RELAY <receiver> <sender> "
	lineLen          int    // every line of a pair has the same length

	sent      atomic.Uint64 // fully written
	delivered atomic.Uint64
	cnt       atomic.Uint64
	bytes     atomic.Uint64 // delivered text bytes
	disorder  atomic.Uint64 // delivered with a lower sequence than one before
	// wake nudges the sender: something was acknowledged (closed loop) or
	// released by the pacer (open loop).
	wake chan struct{}

	nextSeq uint64 // owned by the receiver goroutine
	reads   uint64 // owned by the receiver goroutine
	writes  uint64 // owned by the sender goroutine
}

func (p *pair) acknowledged() uint64 { return p.delivered.Load() + p.cnt.Load() }

// nudge wakes a goroutine waiting on c without ever blocking; one pending
// token is enough, the woken side rereads the counters.
func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loadRun is one closed- or open-loop run against a target.
type loadRun struct {
	cfg   *Config
	clock time.Time // zero of message timestamps
	pairs []*pair

	// The measured interval, as clock offsets in nanoseconds, fixed
	// before any message is sent: a message counts towards the latency
	// figures when its send time falls inside.
	sendStart, measureStart, measureEnd uint64

	// CPUs the bench and the server are pinned to, when apart.
	benchCores, serverCores []int

	stop     chan struct{} // closed when senders must stop
	closing  atomic.Bool   // connections are being closed on purpose
	released atomic.Uint64 // open loop: messages the pacer let go
	sched    schedule

	latency *shardedHist
	lag     *shardedHist
	errs    errorLog

	readers, senders        sync.WaitGroup
	pacerDone, progressDone chan struct{}
	stopProgress            chan struct{}
}

func (r *loadRun) now() uint64 { return uint64(time.Since(r.clock)) }

// runLoad logs in the pairs, runs the closed or open loop for warmup plus
// duration, drains, and reports. It is one of the run modes; the others
// live beside it.
func runLoad(ctx context.Context, cfg *Config, t *target, rep *Report) error {
	r := newLoadRun(cfg)
	if err := r.login(ctx, t); err != nil {
		return err
	}
	defer r.closeAll()
	r.cores(t)
	r.start(r.now() + uint64(time.Millisecond))

	// Measure: sample everything at the start and the end of the interval.
	interrupted := !r.sleepUntil(ctx, r.measureStart)
	before := r.sample(t)
	if !interrupted {
		interrupted = !r.sleepUntil(ctx, r.measureEnd)
	}
	after := r.sample(t)
	r.finish(ctx)

	r.fill(rep, t, before, after)
	if interrupted {
		rep.Warnings = append(rep.Warnings, "interrupted before the end of the run: figures cover the time it ran")
	}
	return nil
}

func newLoadRun(cfg *Config) *loadRun {
	return &loadRun{
		cfg:     cfg,
		clock:   time.Now(),
		stop:    make(chan struct{}),
		latency: newShardedHist(cfg.Pairs),
		lag:     newShardedHist(cfg.Pairs),
	}
}

// start fixes the timetable, sending from clock offset at, and starts
// the readers, the senders, the pacer of an open loop and the progress
// line; finish stops them.
func (r *loadRun) start(at uint64) {
	cfg := r.cfg
	// The timetable is fixed before any goroutine that reads it starts.
	r.sendStart = at
	r.measureStart = r.sendStart + uint64(cfg.Warmup)
	r.measureEnd = r.measureStart + uint64(cfg.Duration)
	if cfg.Rate > 0 {
		r.sched = schedule{start: r.sendStart, perMsg: 1e9 / cfg.Rate, pairs: uint64(cfg.Pairs)}
	}
	for _, p := range r.pairs {
		r.readers.Add(2)
		go func() { defer r.readers.Done(); r.receive(p) }()
		go func() { defer r.readers.Done(); r.watchSender(p) }()
	}
	for _, p := range r.pairs {
		r.senders.Add(1)
		go func() {
			defer r.senders.Done()
			if cfg.Rate > 0 {
				r.sendOpen(p)
			} else {
				r.sendClosed(p)
			}
		}()
	}
	r.pacerDone = make(chan struct{})
	if cfg.Rate > 0 {
		go func() { defer close(r.pacerDone); r.pace() }()
	} else {
		close(r.pacerDone)
	}
	r.progressDone = make(chan struct{})
	r.stopProgress = make(chan struct{})
	go func() { defer close(r.progressDone); r.progress(r.stopProgress) }()
}

// finish stops the senders, waits for messages in flight (up to Drain),
// closes every session and waits for the readers.
func (r *loadRun) finish(ctx context.Context) {
	close(r.stop)
	r.senders.Wait()
	<-r.pacerDone
	r.drain(ctx)
	close(r.stopProgress)
	<-r.progressDone
	r.closeAll()
	r.readers.Wait()
}

// login logs all receivers in first, so that no early message meets CNT,
// then all senders.
func (r *loadRun) login(ctx context.Context, t *target) error {
	n := r.cfg.Pairs
	r.pairs = make([]*pair, n)
	for i := range r.pairs {
		sn, rn := senderName(r.cfg.UserPrefix, i), receiverName(r.cfg.UserPrefix, i)
		prefix := fmt.Appendf(nil, "MSG %s %s ", rn, sn)
		r.pairs[i] = &pair{
			index:       i,
			senderName:  []byte(sn),
			prefix:      prefix,
			relayPrefix: fmt.Appendf(nil, "RELAY %s %s ", rn, sn),
			lineLen:     len(prefix) + r.cfg.Size + 2,
			wake:        make(chan struct{}, 1),
		}
	}
	err := loginAll(ctx, n, func(ctx context.Context, i int) error {
		s, err := t.recv.login(ctx, receiverName(r.cfg.UserPrefix, i), r.cfg.Password, loginOptions{busy: true, version2: r.cfg.Version2})
		r.pairs[i].receiver = s
		return err
	})
	if err == nil {
		err = loginAll(ctx, n, func(ctx context.Context, i int) error {
			s, err := t.dial.login(ctx, senderName(r.cfg.UserPrefix, i), r.cfg.Password, loginOptions{version2: r.cfg.Version2})
			r.pairs[i].sender = s
			return err
		})
	}
	if err != nil {
		r.closeAll()
		return fmt.Errorf("log in bench users: %w", err)
	}
	return nil
}

// loginAll runs login for 0..n-1 with bounded concurrency and returns the
// first error, cancelling the rest.
func loginAll(ctx context.Context, n int, login func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, loginConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := login(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// closeAll closes every session; reads failing from now on are expected.
func (r *loadRun) closeAll() {
	if r.closing.Swap(true) {
		return
	}
	var wg sync.WaitGroup
	for _, p := range r.pairs {
		for _, s := range []*session{p.sender, p.receiver} {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.close() }()
			}
		}
	}
	wg.Wait()
}

// sleepUntil waits until the clock reaches at; false when ctx ended first.
func (r *loadRun) sleepUntil(ctx context.Context, at uint64) bool {
	return sleepUntil(ctx, r.now, at)
}

// sample is the state at one end of the measured interval.
type sample struct {
	at        uint64 // clock offset
	delivered uint64
	messages  uint64 // fan-out: messages done
	bytes     uint64
	benchCPU  time.Duration
	// server is the sum over the server processes, nodes each one.
	server    procSample
	nodes     []procSample
	serverErr error
	// Busy time of the bench's and the server's CPUs, to tell what other
	// processes took from them; zero when not known.
	benchCores, serverCores time.Duration
}

func (r *loadRun) sample(t *target) sample {
	var delivered, bytes uint64
	for _, p := range r.pairs {
		delivered += p.delivered.Load()
		bytes += p.bytes.Load()
	}
	return takeSample(r.now(), t.pids(), r.benchCores, r.serverCores, delivered, bytes)
}

// takeSample reads the bench's CPU, the servers' (none: unknown) and
// the busy time of the CPUs each is pinned to (nil: not pinned apart),
// with the counts the run has at clock offset at.
func takeSample(at uint64, pids []int, benchCores, serverCores []int, delivered, bytes uint64) sample {
	s := sample{at: at, benchCPU: selfCPU(), delivered: delivered, bytes: bytes}
	if benchCores != nil {
		s.benchCores, _ = coresBusy(benchCores)
	}
	if serverCores != nil {
		s.serverCores, _ = coresBusy(serverCores)
	}
	for _, pid := range pids {
		ps, err := readProc(pid)
		s.serverErr = errors.Join(s.serverErr, err)
		s.nodes = append(s.nodes, ps)
		s.server.CPU += ps.CPU
		s.server.RSS += ps.RSS
		s.server.HWM += ps.HWM
	}
	return s
}

// sendClosed keeps up to Window messages of its pair in flight: it writes
// as many as the window allows in one call, then waits for deliveries.
func (r *loadRun) sendClosed(p *pair) {
	window := uint64(r.cfg.Window)
	buf := make([]byte, 0, min(window, maxBatch)*uint64(p.lineLen))
	var sent uint64
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		inflight := sent - min(p.acknowledged(), sent)
		if inflight >= window {
			select {
			case <-p.wake:
			case <-r.stop:
				return
			}
			continue
		}
		n := min(window-inflight, maxBatch)
		ts := r.now()
		buf = buf[:0]
		for k := range n {
			buf = r.appendLine(buf, p, sent+k, ts)
		}
		if !r.write(p, buf, &sent) {
			return
		}
	}
}

// appendLine appends one MSG line of p carrying seq and the send time.
func (r *loadRun) appendLine(buf []byte, p *pair, seq, ts uint64) []byte {
	buf = append(buf, p.prefix...)
	buf = AppendPayload(buf, seq, ts, r.cfg.Size)
	return append(buf, '\r', '\n')
}

// write sends a batch in one call (on TLS, one call is one record per
// 16 KiB) and counts the whole lines that went out.
func (r *loadRun) write(p *pair, buf []byte, sent *uint64) bool {
	n, err := p.sender.conn.Write(buf)
	p.writes++
	*sent += uint64(n / p.lineLen)
	p.sent.Store(*sent)
	if err != nil {
		if !r.closing.Load() {
			r.errs.add("sender %s: write: %v", p.senderName, err)
		}
		return false
	}
	return true
}

// sendOpen sends its pair's share of the open-loop schedule: whenever the
// pacer releases messages, it writes all that are due in one call and
// records how late each one went out.
func (r *loadRun) sendOpen(p *pair) {
	buf := make([]byte, 0, 4*p.lineLen)
	lags := make([]int64, 0, 16)
	var sent uint64
	for {
		select {
		case <-p.wake:
		case <-r.stop:
			return
		}
		for due := r.sched.allowed(p.index, r.released.Load()); sent < due; {
			n := min(due-sent, maxBatch)
			ts := r.now()
			buf, lags = buf[:0], lags[:0]
			for k := range n {
				buf = r.appendLine(buf, p, sent+k, ts)
				at := r.sched.due(p.index, sent+k)
				if at >= r.measureStart && at < r.measureEnd {
					lags = append(lags, int64(ts)-int64(at))
				}
			}
			if len(lags) > 0 {
				r.lag.record(p.index, lags)
			}
			if !r.write(p, buf, &sent) {
				return
			}
		}
	}
}

// receive reads the receiver of p: every RELAY is counted, checked for
// order and, when sent in the measured interval, timed. Counters are
// published once per network read.
func (r *loadRun) receive(p *pair) {
	rd := p.receiver.reader
	closedLoop := r.cfg.Rate == 0
	lats := make([]int64, 0, 256)
	var err error
	for {
		now := r.now()
		var n, size uint64
		lats = lats[:0]
		for {
			raw, lerr := rd.Next()
			if lerr != nil {
				r.errs.add("receiver %s: %v", p.receiver.user, lerr)
				return
			}
			if raw == nil {
				break
			}
			// Fast path: nearly every line is a RELAY from the pair's
			// sender, whose prefix is known. Anything else is parsed.
			text, ok := bytes.CutPrefix(raw, p.relayPrefix)
			if !ok {
				r.receiveOther(p, raw)
				continue
			}
			seq, sent, perr := ParsePayload(text)
			if perr != nil {
				r.errs.add("receiver %s: a message the bench did not send", p.receiver.user)
				continue
			}
			n++
			size += uint64(len(protocol.TrimLine(text)))
			if seq < p.nextSeq {
				p.disorder.Add(1)
			} else {
				p.nextSeq = seq + 1
			}
			if sent >= r.measureStart && sent < r.measureEnd {
				lats = append(lats, int64(now)-int64(sent))
			}
		}
		if n > 0 {
			p.bytes.Add(size)
			p.delivered.Add(n)
			if closedLoop {
				nudge(p.wake) // open-loop senders wait for the pacer only
			}
		}
		if len(lats) > 0 {
			r.latency.record(p.index, lats)
		}
		if err != nil {
			r.readFailed(p.receiver.user, err)
			return
		}
		err = rd.Fill()
		p.reads++
	}
}

// receiveOther handles a receiver's line that is not a RELAY from its
// sender.
func (r *loadRun) receiveOther(p *pair, raw []byte) {
	sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
	switch {
	case err != nil:
		r.errs.add("receiver %s: malformed line from the server", p.receiver.user)
	case sl.Kind == protocol.KindRelay:
		r.errs.add("receiver %s: a message that is not from its sender", p.receiver.user)
	case sl.Kind == protocol.KindEnd:
		r.serverEnded(p.receiver.user, sl)
	case sl.Kind == protocol.KindCNT:
		r.errs.add("receiver %s: unexpected CNT", p.receiver.user)
	}
}

// watchSender reads the sender's own connection: CNT answers acknowledge
// messages that will not be delivered.
func (r *loadRun) watchSender(p *pair) {
	rd := p.sender.reader
	for {
		raw, err := rd.ReadLine()
		if err != nil {
			r.readFailed(p.sender.user, err)
			return
		}
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err != nil {
			r.errs.add("sender %s: malformed line from the server", p.sender.user)
			continue
		}
		switch sl.Kind {
		case protocol.KindCNT:
			p.cnt.Add(1)
			nudge(p.wake)
		case protocol.KindEnd:
			r.serverEnded(p.sender.user, sl)
		case protocol.KindRelay:
			r.errs.add("sender %s: unexpected RELAY", p.sender.user)
		}
	}
}

func (r *loadRun) serverEnded(user string, sl protocol.ServerLine) {
	if r.closing.Load() {
		return
	}
	star := ""
	if sl.ProtocolError {
		star = "* "
	}
	r.errs.add("%s: server closed the session: END %s<%s>", user, star, sl.Reason)
}

func (r *loadRun) readFailed(user string, err error) {
	if r.closing.Load() {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		r.errs.add("%s: server closed the connection", user)
		return
	}
	r.errs.add("%s: read: %v", user, err)
}

// drain waits until every message sent is delivered or answered with CNT,
// or Drain has passed. It polls: the wait is short and ends a run.
func (r *loadRun) drain(ctx context.Context) {
	waitDrained(ctx, r.cfg.Drain, func() bool {
		for _, p := range r.pairs {
			if p.acknowledged() < p.sent.Load() {
				return true
			}
		}
		return false
	})
}

// progress writes a live line once a second until stop is closed.
func (r *loadRun) progress(stop chan struct{}) {
	delivered := func() uint64 {
		var n uint64
		for _, p := range r.pairs {
			n += p.delivered.Load()
		}
		return n
	}
	showProgress(r.cfg.Progress, stop, delivered, func(rate float64) string {
		var sent, cnt uint64
		for _, p := range r.pairs {
			sent += p.sent.Load()
			cnt += p.cnt.Load()
		}
		d := delivered()
		errs, _ := r.errs.snapshot()
		return fmt.Sprintf("%s  %s msgs/s  delivered %s  in flight %s  CNT %d  errors %d",
			phase(r.now(), r.measureStart, r.measureEnd), countText(uint64(rate)), countText(d), countText(sent-min(sent, d+cnt)), cnt, errs)
	})
}

// fill writes the run's figures into the report.
func (r *loadRun) fill(rep *Report, t *target, before, after sample) {
	for _, p := range r.pairs {
		rep.Sent += p.sent.Load()
		rep.Delivered += p.delivered.Load()
		rep.CNT += p.cnt.Load()
		rep.OutOfOrder += p.disorder.Load()
	}
	rep.Lost = rep.Sent - min(rep.Sent, rep.Delivered+rep.CNT)
	var writes, reads uint64
	for _, p := range r.pairs {
		writes += p.writes
		reads += p.reads
	}
	if writes > 0 && reads > 0 {
		rep.Bench.MsgsPerWrite = float64(rep.Sent) / float64(writes)
		rep.Bench.MsgsPerRead = float64(rep.Delivered) / float64(reads)
	}
	rep.Errors, rep.ErrorList = r.errs.snapshot()
	if rep.Lost > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d messages neither delivered nor answered with CNT within the %s drain", rep.Lost, r.cfg.Drain))
	}

	elapsed := time.Duration(after.at - before.at)
	rep.MeasuredDelivered = after.delivered - before.delivered
	if secs := elapsed.Seconds(); secs > 0 {
		rep.MsgsPerSec = float64(rep.MeasuredDelivered) / secs
		rep.MBPerSec = float64(after.bytes-before.bytes) / secs / 1e6
	}
	rep.Latency = summarize(r.latency.merged())
	if r.cfg.Rate > 0 {
		lag := summarize(r.lag.merged())
		rep.ScheduleLag = &lag
		if lag.P99 > lagWarning.Seconds()*1e6 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the bench fell behind its timetable (send lag p99 %s) and caught up in bursts: the load was burstier than --rate", usText(lag.P99)))
		}
	}
	fillUsage(rep, t.pids(), r.benchCores, r.serverCores, before, after)
}

// fillUsage writes what the bench and the server spent between two
// samples into the report, with a warning for each figure that cannot be
// trusted; the servers' CPU is divided by the deliveries between them.
func fillUsage(rep *Report, pids []int, benchCores, serverCores []int, before, after sample) {
	elapsed := time.Duration(after.at - before.at)
	rep.Bench = benchUsage(rep.Bench, after.benchCPU-before.benchCPU, elapsed)
	if benchCores != nil {
		rep.Bench.CPUs = benchCores
		rep.Bench.OthersShare = othersShare(after.benchCores-before.benchCores, after.benchCPU-before.benchCPU, elapsed, len(benchCores))
		if rep.Bench.OthersShare > othersWarning {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes used %.0f%% of the bench's CPUs %v: figures are disturbed", 100*rep.Bench.OthersShare, benchCores))
		}
	}
	if rep.Bench.Saturated {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the bench used %.0f%% of its %d core(s): it may be the bottleneck, not the server", 100*rep.Bench.Utilization, rep.Bench.GOMAXPROCS))
	}
	if len(pids) > 0 {
		rep.ServerUsage = serverUsage(pids, before, after, after.delivered-before.delivered)
		if serverCores != nil {
			rep.ServerUsage.CPUs = serverCores
			rep.ServerUsage.OthersShare = othersShare(after.serverCores-before.serverCores, after.server.CPU-before.server.CPU, elapsed, len(serverCores))
			if rep.ServerUsage.OthersShare > othersWarning {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes used %.0f%% of the server's CPUs %v: figures are disturbed", 100*rep.ServerUsage.OthersShare, serverCores))
			}
		}
		if err := errors.Join(before.serverErr, after.serverErr); err != nil {
			rep.ServerUsage = nil
			rep.Warnings = append(rep.Warnings, err.Error())
		}
	}
}

// lagWarning is the send lag p99 above which the open loop warns that it
// was not the steady load asked for.
const lagWarning = time.Millisecond

// othersWarning is the share of a process's CPUs that other processes
// may take in the measured interval before the figures are called
// disturbed.
const othersWarning = 0.05

// othersShare is the share of n CPUs' time in wall that went to processes
// other than the one that used own of it.
func othersShare(busy, own, wall time.Duration, n int) float64 {
	if wall <= 0 || n == 0 {
		return 0
	}
	return max(0, (busy-own).Seconds()/(wall.Seconds()*float64(n)))
}

// cores finds the CPUs of the bench and of the server, when they are
// pinned apart: only then can /proc/stat tell what other processes took
// from each.
func (r *loadRun) cores(t *target) {
	r.benchCores, r.serverCores = pinnedCores(t.pids())
}

// pinnedCores returns the CPUs of the bench and of the server processes
// (all the CPUs any of them may use), or nil when no server is known or
// the bench shares a CPU with one.
func pinnedCores(pids []int) (bench, server []int) {
	bench, err := affinity(0)
	if err != nil || len(pids) == 0 {
		return nil, nil
	}
	for _, pid := range pids {
		cpus, err := affinity(pid)
		if err != nil {
			return nil, nil
		}
		for _, c := range cpus {
			if !slices.Contains(server, c) {
				server = append(server, c)
			}
		}
	}
	if overlap(bench, server) {
		return nil, nil
	}
	slices.Sort(server)
	return bench, server
}

// saturation is the share of its cores above which the bench says it may
// be the bottleneck.
const saturation = 0.9

func benchUsage(u BenchUsage, cpu, wall time.Duration) BenchUsage {
	u.CPUSeconds, u.GOMAXPROCS = cpu.Seconds(), runtime.GOMAXPROCS(0)
	if wall > 0 {
		u.Utilization = cpu.Seconds() / (wall.Seconds() * float64(u.GOMAXPROCS))
	}
	u.Saturated = u.Utilization > saturation
	return u
}

// serverUsage is what the servers pids spent between two samples, in
// all and, for more than one, each.
func serverUsage(pids []int, before, after sample, delivered uint64) *ServerUsage {
	u := &ServerUsage{
		PID:        pids[0],
		CPUSeconds: (after.server.CPU - before.server.CPU).Seconds(),
		PeakRSS:    after.server.HWM,
		RSS:        after.server.RSS,
	}
	if delivered > 0 {
		u.CPUPerMsg = u.CPUSeconds * 1e6 / float64(delivered)
	}
	if len(pids) > 1 && len(after.nodes) == len(pids) && len(before.nodes) == len(pids) {
		for i, pid := range pids {
			n := NodeUsage{PID: pid, CPUSeconds: (after.nodes[i].CPU - before.nodes[i].CPU).Seconds(), PeakRSS: after.nodes[i].HWM, RSS: after.nodes[i].RSS}
			if delivered > 0 {
				n.CPUPerMsg = n.CPUSeconds * 1e6 / float64(delivered)
			}
			u.Nodes = append(u.Nodes, n)
		}
	}
	return u
}
