package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Fanout is a one-to-many load through any server: each sender keeps up
// to Window messages in flight, every receiver gets every message of
// every sender but its own (with Pairs, of its one sender), and a message
// is done, and leaves its sender's window, when its last recipient has
// it. The group mode runs on it, and so do the reference loads against
// another server, so that both count, time and check alike.
//
// Every message is a sender's Prefix, a payload of Size bytes (see
// AppendPayload) and its Suffix. A receiver's read loop hands each
// payload to its Deliveries with the index of the sender, and calls Flush
// once it has handled everything one network read brought.
type Fanout struct {
	// Mode is the report's mode.
	Mode   string
	Size   int
	Window int
	// Warmup, Duration and Drain are as in Config.
	Warmup, Duration, Drain time.Duration
	// ServerPIDs are the server's processes on this machine (two for a
	// load across two nodes), whose CPU and memory count together; none
	// when unknown.
	ServerPIDs []int
	// Progress receives a live progress line once a second; nil for none.
	Progress  io.Writer
	Senders   []FanoutSender
	Receivers []FanoutReceiver
	// Pairs makes it the 1:1 load instead: each receiver gets the
	// messages of one sender (its Pair) alone, and the report is that of
	// the pairs mode (Pairs set, no group figures).
	Pairs bool
	// Close closes every connection; the read loops return after it.
	Close func()
}

// FanoutSender is one sending connection.
type FanoutSender struct {
	Name           string
	Conn           io.Writer
	Prefix, Suffix []byte
}

// FanoutReceiver is one receiving connection.
type FanoutReceiver struct {
	Name string
	// Self is the index of the sender whose messages this connection does
	// not get (the same session sends them), or -1.
	Self int
	// Pair, in a Pairs run, is the index of the one sender whose
	// messages this connection gets, or -1 for none (a sender's own
	// connection, read for the server's other lines).
	Pair int
	// Read is the connection's read loop. It returns when the connection
	// fails or is closed.
	Read func(d *Deliveries) error
}

// fanSender is a sender's window. ring counts, for each message in
// flight, how many recipients have it; the recipient that completes the
// count frees the slot and moves done on. Each recipient gets a sender's
// messages in order, so the counts of older messages are never behind
// those of newer ones, and messages complete in order.
type fanSender struct {
	FanoutSender
	index      int
	recipients uint32 // receivers that get its messages
	ring       []atomic.Uint32
	mask       uint64
	lineLen    int

	sent atomic.Uint64 // fully written
	done atomic.Uint64 // every recipient has messages 0 … done-1
	wake chan struct{}

	writes uint64 // owned by the sender goroutine
}

// complete records that messages up to next are done.
func (s *fanSender) complete(next uint64) {
	for {
		cur := s.done.Load()
		if next <= cur || s.done.CompareAndSwap(cur, next) {
			return
		}
	}
}

// fanRun is one run of a Fanout.
type fanRun struct {
	f       *Fanout
	clock   time.Time
	senders []*fanSender
	recv    []*Deliveries

	sendStart, measureStart, measureEnd uint64
	benchCores, serverCores             []int

	stop    chan struct{}
	closing atomic.Bool
	latency *shardedHist
	errs    errorLog
}

func (r *fanRun) now() uint64 { return uint64(time.Since(r.clock)) }

// Deliveries is what a receiver's read loop reports to. Its methods are
// for that one goroutine.
type Deliveries struct {
	run   *fanRun
	name  string
	index int
	self  int
	hears []bool // per sender: whether this receiver gets its messages

	delivered atomic.Uint64
	disorder  atomic.Uint64

	next  []uint64 // per sender: the sequence number expected next
	order uint64   // hash of the order of everything received
	reads uint64
	// The batch of one read: its time, what it holds, whom it freed.
	now   uint64
	timed bool
	n     uint64
	bad   uint64
	lats  []int64
	woken []int
}

// FNV-1a's 64-bit prime: the order hash multiplies by it after each
// message, so the hash depends on the order of the messages.
const orderPrime = 1099511628211

// Deliver records the message payload text of sender.
func (d *Deliveries) Deliver(sender int, text []byte) {
	r := d.run
	if !d.timed {
		d.now, d.timed = r.now(), true
	}
	if sender < 0 || sender >= len(d.hears) || !d.hears[sender] {
		d.Errorf("%s: a message from a sender it should not get (%d)", d.name, sender)
		return
	}
	seq, sent, err := ParsePayload(text)
	if err != nil {
		d.Errorf("%s: a message the bench did not send", d.name)
		return
	}
	d.n++
	if seq < d.next[sender] {
		d.bad++
	} else {
		d.next[sender] = seq + 1
	}
	d.order = (d.order ^ (uint64(sender)<<48 | seq)) * orderPrime
	s := r.senders[sender]
	if slot := &s.ring[seq&s.mask]; slot.Add(1) == s.recipients {
		slot.Store(0) // before done moves on and the sender reuses the slot
		s.complete(seq + 1)
		d.woken = append(d.woken, sender)
	}
	if sent >= r.measureStart && sent < r.measureEnd {
		d.lats = append(d.lats, int64(d.now)-int64(sent))
	}
}

// Flush publishes what the read brought: counts, latencies, and a nudge
// to every sender whose window it freed.
func (d *Deliveries) Flush() {
	d.reads++
	d.timed = false
	if d.n > 0 {
		d.delivered.Add(d.n)
		d.n = 0
	}
	if d.bad > 0 {
		d.disorder.Add(d.bad)
		d.bad = 0
	}
	if len(d.lats) > 0 {
		d.run.latency.record(d.index, d.lats)
		d.lats = d.lats[:0]
	}
	for _, j := range d.woken {
		nudge(d.run.senders[j].wake)
	}
	d.woken = d.woken[:0]
}

// Errorf counts an error of the connection, unless the run is closing
// its connections, when failures are expected.
func (d *Deliveries) Errorf(format string, args ...any) {
	if !d.run.closing.Load() {
		d.run.errs.add(format, args...)
	}
}

// Closing reports whether the run is closing its connections.
func (d *Deliveries) Closing() bool { return d.run.closing.Load() }

// Run runs the load: Warmup, then Duration measured, then up to Drain for
// the messages in flight; then it closes the connections and reports.
func (f *Fanout) Run(ctx context.Context) (*Report, error) {
	rep := &Report{}
	if err := f.run(ctx, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// run is Run into a report that may already say which server it was.
func (f *Fanout) run(ctx context.Context, rep *Report) error {
	if len(f.Senders) == 0 || len(f.Receivers) == 0 || f.Window < 1 || f.Size < MinSize {
		return errors.New("fan-out: no senders, no receivers, no window or too small a size")
	}
	r := &fanRun{
		f:       f,
		clock:   time.Now(),
		stop:    make(chan struct{}),
		latency: newShardedHist(len(f.Receivers)),
	}
	ring := uint64(1) << bits.Len64(uint64(f.Window-1))
	for j, fs := range f.Senders {
		s := &fanSender{
			FanoutSender: fs,
			index:        j,
			ring:         make([]atomic.Uint32, ring),
			mask:         ring - 1,
			lineLen:      len(fs.Prefix) + f.Size + len(fs.Suffix),
			wake:         make(chan struct{}, 1),
		}
		for _, rc := range f.Receivers {
			if f.hears(rc, j) {
				s.recipients++
			}
		}
		if s.recipients == 0 {
			return fmt.Errorf("fan-out: nobody receives the messages of %s", fs.Name)
		}
		r.senders = append(r.senders, s)
	}
	for i, rc := range f.Receivers {
		d := &Deliveries{
			run:   r,
			name:  rc.Name,
			index: i,
			self:  rc.Self,
			hears: make([]bool, len(f.Senders)),
			next:  make([]uint64, len(f.Senders)),
			lats:  make([]int64, 0, 256),
		}
		for j := range f.Senders {
			d.hears[j] = f.hears(rc, j)
		}
		r.recv = append(r.recv, d)
	}
	r.benchCores, r.serverCores = pinnedCores(f.ServerPIDs)
	r.sendStart = r.now() + uint64(time.Millisecond)
	r.measureStart = r.sendStart + uint64(f.Warmup)
	r.measureEnd = r.measureStart + uint64(f.Duration)

	var readers sync.WaitGroup
	for i, rc := range f.Receivers {
		d := r.recv[i]
		readers.Add(1)
		go func() {
			defer readers.Done()
			err := rc.Read(d)
			d.Flush()
			if err != nil && !r.closing.Load() {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
					r.errs.add("%s: server closed the connection", rc.Name)
				} else {
					r.errs.add("%s: read: %v", rc.Name, err)
				}
			}
		}()
	}
	var senders sync.WaitGroup
	for _, s := range r.senders {
		senders.Add(1)
		go func() { defer senders.Done(); r.send(s) }()
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() { defer close(progressDone); r.progress(stopProgress) }()

	interrupted := !sleepUntil(ctx, r.now, r.measureStart)
	before := r.sample()
	if !interrupted {
		interrupted = !sleepUntil(ctx, r.now, r.measureEnd)
	}
	after := r.sample()
	close(r.stop)
	senders.Wait()
	r.drain(ctx)
	close(stopProgress)
	<-progressDone
	r.closing.Store(true)
	f.Close()
	readers.Wait()

	rep.Mode, rep.Size, rep.Window = f.Mode, f.Size, f.Window
	rep.Warmup, rep.Duration = f.Warmup.Seconds(), f.Duration.Seconds()
	r.fill(rep, before, after)
	if interrupted {
		rep.Warnings = append(rep.Warnings, "interrupted before the end of the run: figures cover the time it ran")
	}
	return nil
}

// hears reports whether receiver rc gets the messages of sender j.
func (f *Fanout) hears(rc FanoutReceiver, j int) bool {
	if f.Pairs {
		return rc.Pair == j
	}
	return rc.Self != j
}

// send keeps up to Window messages of s in flight, writing as many as
// the window allows in one call.
func (r *fanRun) send(s *fanSender) {
	window := uint64(r.f.Window)
	buf := make([]byte, 0, min(window, maxBatch)*uint64(s.lineLen))
	var sent uint64
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		inflight := sent - min(s.done.Load(), sent)
		if inflight >= window {
			select {
			case <-s.wake:
			case <-r.stop:
				return
			}
			continue
		}
		n := min(window-inflight, maxBatch)
		ts := r.now()
		buf = buf[:0]
		for k := range n {
			buf = append(buf, s.Prefix...)
			buf = AppendPayload(buf, sent+k, ts, r.f.Size)
			buf = append(buf, s.Suffix...)
		}
		w, err := s.Conn.Write(buf)
		s.writes++
		sent += uint64(w / s.lineLen)
		s.sent.Store(sent)
		if err != nil {
			if !r.closing.Load() {
				r.errs.add("%s: write: %v", s.Name, err)
			}
			return
		}
	}
}

// sleepUntil waits until the clock now reaches at; false when ctx ended
// first.
func sleepUntil(ctx context.Context, now func() uint64, at uint64) bool {
	t := now()
	if t >= at {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(time.Duration(at - t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *fanRun) deliveries() uint64 {
	var n uint64
	for _, d := range r.recv {
		n += d.delivered.Load()
	}
	return n
}

func (r *fanRun) doneMessages() uint64 {
	var n uint64
	for _, s := range r.senders {
		n += s.done.Load()
	}
	return n
}

func (r *fanRun) sample() sample {
	n := r.deliveries()
	s := takeSample(r.now(), r.f.ServerPIDs, r.benchCores, r.serverCores, n, n*uint64(r.f.Size))
	s.messages = r.doneMessages()
	return s
}

// drain waits until every sender's messages are done, or the drain time
// has passed.
func (r *fanRun) drain(ctx context.Context) {
	waitDrained(ctx, r.f.Drain, func() bool {
		for _, s := range r.senders {
			if s.done.Load() < s.sent.Load() {
				return true
			}
		}
		return false
	})
}

// progress writes a live line once a second until stop is closed.
func (r *fanRun) progress(stop chan struct{}) {
	showProgress(r.f.Progress, stop, r.deliveries, func(rate float64) string {
		var sent, done uint64
		for _, s := range r.senders {
			sent += s.sent.Load()
			done += s.done.Load()
		}
		errs, _ := r.errs.snapshot()
		return fmt.Sprintf("%s  %s deliveries/s  messages done %s  in flight %s  errors %d",
			phase(r.now(), r.measureStart, r.measureEnd), countText(uint64(rate)), countText(done), countText(sent-min(sent, done)), errs)
	})
}

// fill writes the run's figures into the report. Counts are deliveries
// (a message times its recipients) except Sent, which counts messages.
func (r *fanRun) fill(rep *Report, before, after sample) {
	g := &GroupReport{
		Senders:    len(r.senders),
		Receivers:  len(r.recv),
		Recipients: int(r.senders[0].recipients),
	}
	rep.Group = g
	var expected, writes uint64
	for _, s := range r.senders {
		sent := s.sent.Load()
		rep.Sent += sent
		g.MessagesDone += s.done.Load()
		expected += sent * uint64(s.recipients)
		writes += s.writes
	}
	var reads uint64
	orders := make(map[uint64]int)
	for _, d := range r.recv {
		got := d.delivered.Load()
		rep.Delivered += got
		reads += d.reads
		if bad := d.disorder.Load(); bad > 0 {
			rep.OutOfOrder += bad
			g.ReceiversOutOfOrder++
		}
		var want uint64
		for j, s := range r.senders {
			if d.hears[j] {
				want += s.sent.Load()
			}
		}
		if got < want {
			g.ReceiversWithLoss++
			g.MostLostByOne = max(g.MostLostByOne, want-got)
			continue
		}
		// One order: every receiver that gets all senders' messages, and
		// got them all, must have seen them in the same order.
		if d.self >= 0 || r.f.Pairs {
			continue
		}
		g.OrderCompared++
		orders[d.order]++
	}
	most := 0
	for _, n := range orders {
		most = max(most, n)
	}
	g.OrderDiffers = g.OrderCompared - most
	g.Expected = expected
	rep.Lost = expected - min(expected, rep.Delivered)
	if writes > 0 && reads > 0 {
		rep.Bench.MsgsPerWrite = float64(rep.Sent) / float64(writes)
		rep.Bench.MsgsPerRead = float64(rep.Delivered) / float64(reads)
	}
	rep.Errors, rep.ErrorList = r.errs.snapshot()
	if rep.Lost > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d deliveries missing after the %s drain, at %d receivers", rep.Lost, r.f.Drain, g.ReceiversWithLoss))
	}
	if g.OrderDiffers > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d of %d receivers saw the messages in another order than most", g.OrderDiffers, g.OrderCompared))
	}

	elapsed := time.Duration(after.at - before.at)
	rep.MeasuredDelivered = after.delivered - before.delivered
	if secs := elapsed.Seconds(); secs > 0 {
		rep.MsgsPerSec = float64(rep.MeasuredDelivered) / secs
		rep.MBPerSec = float64(after.bytes-before.bytes) / secs / 1e6
		g.MessagesPerSec = float64(after.messages-before.messages) / secs
	}
	g.DeliveriesPerSec = rep.MsgsPerSec
	rep.Latency = summarize(r.latency.merged())
	fillUsage(rep, r.f.ServerPIDs, r.benchCores, r.serverCores, before, after)
	if rep.ServerUsage != nil {
		g.CPUPerDelivery = rep.ServerUsage.CPUPerMsg
	}
	if r.f.Pairs {
		// The 1:1 load's report: a delivery is a message.
		rep.Group = nil
		rep.Pairs = len(r.senders)
	}
}
