package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
)

func groupConfig(t *testing.T, members, senders int) Config {
	t.Helper()
	cfg := Config{Pairs: 1, GroupSize: members, Senders: senders}
	srv := startServerFor(t, cfg)
	cfg = baseConfig(srv, 1)
	cfg.Pairs = 0
	cfg.GroupSize, cfg.Senders = members, senders
	cfg.Window = 8
	return cfg
}

// checkGroup checks what every clean group run reports: every message
// reached every recipient, once, in order, and all receivers saw one
// order.
func checkGroup(t *testing.T, rep *Report, members, senders int) {
	t.Helper()
	g := rep.Group
	if rep.Mode != ModeGroup || g == nil {
		t.Fatalf("mode %q, group %v", rep.Mode, g)
	}
	recipients := members
	if senders > 1 {
		recipients = members + senders - 1
	}
	if g.Members != members || g.Senders != senders || g.Recipients != recipients || g.Receivers != members+senders {
		t.Errorf("members %d, senders %d, recipients %d, receivers %d: want %d, %d, %d, %d",
			g.Members, g.Senders, g.Recipients, g.Receivers, members, senders, recipients, members+senders)
	}
	if rep.Sent == 0 || g.Expected != rep.Sent*uint64(recipients) || rep.Delivered != g.Expected || g.MessagesDone != rep.Sent {
		t.Errorf("sent %d, expected %d, delivered %d, done %d: want every message at every recipient", rep.Sent, g.Expected, rep.Delivered, g.MessagesDone)
	}
	if rep.Lost != 0 || rep.OutOfOrder != 0 || rep.Errors != 0 || g.ReceiversWithLoss != 0 || g.OrderDiffers != 0 {
		t.Errorf("lost %d, out of order %d, errors %d %q, receivers with loss %d, order differs %d: want none",
			rep.Lost, rep.OutOfOrder, rep.Errors, rep.ErrorList, g.ReceiversWithLoss, g.OrderDiffers)
	}
	if g.OrderCompared != members {
		t.Errorf("order compared at %d receivers, want the %d members", g.OrderCompared, members)
	}
	if rep.MeasuredDelivered == 0 || g.DeliveriesPerSec <= 0 || g.MessagesPerSec <= 0 || rep.Latency.Count == 0 {
		t.Errorf("measured %d deliveries, %.0f/s, %.0f messages/s, %d latencies: want figures", rep.MeasuredDelivered, g.DeliveriesPerSec, g.MessagesPerSec, rep.Latency.Count)
	}
	if rep.ServerUsage == nil || g.CPUPerDelivery != rep.ServerUsage.CPUPerMsg {
		t.Errorf("server usage %+v, cpu per delivery %v", rep.ServerUsage, g.CPUPerDelivery)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deliveries/s", "per delivery", "lost 0", "the same at"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestGroupOneSender(t *testing.T) {
	cfg := groupConfig(t, 5, 1)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkGroup(t, rep, 5, 1)
}

func TestGroupSenders(t *testing.T) {
	// Three senders, members too: each message reaches the five members
	// and the two other senders, and the members must agree on one order
	// of all three senders' messages.
	cfg := groupConfig(t, 5, 3)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkGroup(t, rep, 5, 3)
}

func TestGroupTooSmallForServer(t *testing.T) {
	cfg := Config{Pairs: 1, GroupSize: 4, Senders: 1}
	srv := startServerFor(t, cfg, func(c *server.Config) { c.MaxMembers = 3 })
	cfg = baseConfig(srv, 1)
	cfg.Pairs, cfg.GroupSize = 0, 4
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--max-members 5") {
		t.Fatalf("err = %v, want one naming serve --max-members 5", err)
	}
}

// fakeHub fans lines out in memory, to prove the fan-out's counting on a
// server that misbehaves as told: each sender writes "<sender> <payload>\n"
// lines, and mangle may drop or reorder a receiver's copies.
type fakeHub struct {
	mu        sync.Mutex
	receivers []*io.PipeWriter
	self      []int
	mangle    func(receiver int, line []byte, out [][]byte) [][]byte
	held      [][][]byte // per receiver: lines a mangle holds back
}

type hubSender struct {
	hub    *fakeHub
	sender int
}

func (s hubSender) Write(b []byte) (int, error) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for line := range bytes.Lines(b) {
		for r, w := range h.receivers {
			if h.self[r] == s.sender {
				continue
			}
			out := [][]byte{line}
			if h.mangle != nil {
				out = h.mangle(r, line, out)
			}
			for _, l := range out {
				if _, err := w.Write(l); err != nil {
					return 0, err
				}
			}
		}
	}
	return len(b), nil
}

func runFakeFanout(t *testing.T, senders int, self []int, mangle func(h *fakeHub, receiver int, line []byte, out [][]byte) [][]byte) *Report {
	t.Helper()
	h := &fakeHub{self: self}
	if mangle != nil {
		h.mangle = func(r int, line []byte, out [][]byte) [][]byte { return mangle(h, r, line, out) }
	}
	f := &Fanout{
		Mode:     "fake",
		Size:     40,
		Window:   4,
		Warmup:   20 * time.Millisecond,
		Duration: 100 * time.Millisecond,
		Drain:    200 * time.Millisecond,
	}
	var readers []*io.PipeReader
	for range self {
		pr, pw := io.Pipe()
		h.receivers = append(h.receivers, pw)
		readers = append(readers, pr)
	}
	for j := range senders {
		f.Senders = append(f.Senders, FanoutSender{
			Name:   "sender",
			Conn:   hubSender{hub: h, sender: j},
			Prefix: []byte{byte('0' + j), ' '},
			Suffix: []byte("\n"),
		})
	}
	for i, pr := range readers {
		f.Receivers = append(f.Receivers, FanoutReceiver{Name: "receiver", Self: self[i], Read: func(d *Deliveries) error {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				line := sc.Bytes()
				d.Deliver(int(line[0]-'0'), line[2:])
				d.Flush()
			}
			return sc.Err()
		}})
	}
	f.Close = func() {
		for _, pr := range readers {
			_ = pr.Close()
		}
	}
	rep, err := f.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestFanoutCountsRight(t *testing.T) {
	seqOf := func(line []byte) uint64 {
		seq, _, err := ParsePayload(line[2:])
		if err != nil {
			panic(err)
		}
		return seq
	}
	t.Run("faithful", func(t *testing.T) {
		rep := runFakeFanout(t, 2, []int{0, 1, -1, -1, -1}, nil)
		g := rep.Group
		if rep.Lost != 0 || rep.OutOfOrder != 0 || g.OrderDiffers != 0 || g.OrderCompared != 3 || rep.Errors != 0 {
			t.Errorf("lost %d, out of order %d, order differs %d of %d, errors %d %q", rep.Lost, rep.OutOfOrder, g.OrderDiffers, g.OrderCompared, rep.Errors, rep.ErrorList)
		}
		if g.Recipients != 4 || g.Expected != 4*rep.Sent || rep.Delivered != g.Expected {
			t.Errorf("recipients %d, expected %d, delivered %d, sent %d", g.Recipients, g.Expected, rep.Delivered, rep.Sent)
		}
	})
	t.Run("lost", func(t *testing.T) {
		// Receiver 1 never gets message 3.
		rep := runFakeFanout(t, 1, []int{-1, -1, -1}, func(_ *fakeHub, r int, line []byte, out [][]byte) [][]byte {
			if r == 1 && seqOf(line) == 3 {
				return nil
			}
			return out
		})
		g := rep.Group
		if rep.Lost != 1 || g.ReceiversWithLoss != 1 || g.MostLostByOne != 1 || rep.OutOfOrder != 0 {
			t.Errorf("lost %d at %d receivers (most %d), out of order %d: want 1 lost at 1", rep.Lost, g.ReceiversWithLoss, g.MostLostByOne, rep.OutOfOrder)
		}
	})
	t.Run("reordered", func(t *testing.T) {
		// Receiver 2 gets message 5 after message 6.
		rep := runFakeFanout(t, 1, []int{-1, -1, -1}, func(h *fakeHub, r int, line []byte, out [][]byte) [][]byte {
			if r != 2 {
				return out
			}
			if h.held == nil {
				h.held = make([][][]byte, 3)
			}
			switch seqOf(line) {
			case 5:
				h.held[r] = [][]byte{bytes.Clone(line)}
				return nil
			case 6:
				return append(out, h.held[r]...)
			}
			return out
		})
		g := rep.Group
		if rep.OutOfOrder != 1 || g.ReceiversOutOfOrder != 1 || rep.Lost != 0 {
			t.Errorf("out of order %d at %d receivers, lost %d: want 1 at 1, none lost", rep.OutOfOrder, g.ReceiversOutOfOrder, rep.Lost)
		}
	})
	t.Run("two orders", func(t *testing.T) {
		// Receiver 0 gets one of sender 0's messages after the sender-1
		// message that followed it, the others in the hub's order: each
		// sender's messages stay in order, but the receivers do not agree
		// on one order.
		var held []byte
		swapped := false
		rep := runFakeFanout(t, 2, []int{-1, -1, -1}, func(_ *fakeHub, r int, line []byte, out [][]byte) [][]byte {
			if r != 0 || swapped {
				return out
			}
			switch {
			case held != nil && line[0] == '1':
				swapped = true
				return append(out, held)
			case held != nil:
				// Sender 0 again: let the held one go first, hold this.
				out = [][]byte{held}
				held = bytes.Clone(line)
				return out
			case line[0] == '0' && seqOf(line) >= 4:
				held = bytes.Clone(line)
				return nil
			}
			return out
		})
		g := rep.Group
		if g.OrderDiffers != 1 || rep.OutOfOrder != 0 || rep.Lost != 0 {
			t.Errorf("order differs at %d of %d, out of order %d, lost %d: want 1 differing, no disorder, no loss", g.OrderDiffers, g.OrderCompared, rep.OutOfOrder, rep.Lost)
		}
	})
}
