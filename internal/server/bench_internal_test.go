package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// discardTransport is an in-memory Transport for micro-benchmarks of the
// hub and the writer; the integration tests and BenchmarkRelayTLS use
// real TLS.
type discardTransport struct{ written atomic.Int64 }

func (d *discardTransport) Read([]byte) (int, error) { select {} }
func (d *discardTransport) Write(p []byte) (int, error) {
	d.written.Add(int64(len(p)))
	return len(p), nil
}
func (d *discardTransport) SetReadDeadline(time.Time) error  { return nil }
func (d *discardTransport) SetWriteDeadline(time.Time) error { return nil }
func (d *discardTransport) Close() error                     { return nil }
func (d *discardTransport) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func benchServer(testing.TB) *Server {
	cfg := Config{Logger: slog.New(slog.DiscardHandler)}
	cfg.setDefaults()
	s := &Server{cfg: cfg, local: newRegistry(), done: make(chan struct{})}
	s.router = s.local
	return s
}

func benchSession(srv *Server, name string) *Session {
	s := &Session{srv: srv, conn: &discardTransport{}, rd: protocol.NewReader(nil, protocol.MaxLine), name: name, version: 1, delivery: delivery{stats: &srv.stats}}
	s.q.bound = srv.cfg.MaxQueue
	s.writer = s.writeLoop
	srv.local.register(s)
	return s
}

func BenchmarkHubLookup(b *testing.B) {
	srv := benchServer(b)
	names := make([][]byte, 1000)
	for i := range names {
		names[i] = []byte("user" + strconv.Itoa(i))
		benchSession(srv, string(names[i]))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if srv.local.Lookup(names[i%len(names)]) == nil {
				b.Fatal("not found")
			}
			i++
		}
	})
}

// BenchmarkRelay measures the reader's side of the relay path: parse-free
// routing of a message to its target's queue, with a writer draining the
// queue as the real one does.
func BenchmarkRelay(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		b.Run(fmt.Sprintf("text=%d", size), func(b *testing.B) {
			srv := benchServer(b)
			sender := benchSession(srv, "alice")
			target := benchSession(srv, "bob")
			text := bytes.Repeat([]byte("x"), size)
			tname, sname := []byte("bob"), []byte("alice")
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sender.relay(tname, sname, text)
				if i++; i%64 == 0 {
					sender.flushBatch()
					// Let the writer keep up, as the network would.
					for target.queued() > 256<<10 {
						runtime.Gosched()
					}
				}
			}
			sender.flushBatch()
			if target.q.closed.Load() || srv.stats.NotOnline.Load() > 0 {
				b.Fatal("the target fell behind and was closed")
			}
			target.close(reasonShutdown)
			srv.writers.Wait()
		})
	}
}

// BenchmarkWriter measures the writer taking a batch of 64 messages and
// writing it, queued through the relay path as a sender's read does.
func BenchmarkWriter(b *testing.B) {
	srv := benchServer(b)
	sender := benchSession(srv, "alice")
	target := benchSession(srv, "bob")
	text := bytes.Repeat([]byte("x"), 100)
	tname, sname := []byte("bob"), []byte("alice")
	b.ReportAllocs()
	for b.Loop() {
		for range 64 {
			sender.relay(tname, sname, text)
		}
		sender.flushBatch()
		for target.queued() > 0 {
			runtime.Gosched()
		}
	}
	target.close(reasonShutdown)
	srv.writers.Wait()
}

// queued reports how many bytes wait in s's queue.
func (s *Session) queued() int {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return s.q.sizeLocked()
}

// TestMidBatchWake: a queue that passes a share of its bound with no
// writer running asks to be woken at once, in the middle of the sender's
// read, not after it; once its writer runs it asks no more.
func TestMidBatchWake(t *testing.T) {
	q := &sendQueue{bound: MinMaxQueue}
	text := bytes.Repeat([]byte("x"), 1000)
	urgentAt := -1
	for i := 0; i < 40; i++ {
		queued, _, urgent, tooSlow := q.appendRelayLocked([]byte("bob"), []byte("alice"), text)
		if !queued || tooSlow {
			t.Fatalf("message %d not queued", i)
		}
		if urgent {
			if urgentAt >= 0 {
				t.Fatalf("urgent again at %d after %d", i, urgentAt)
			}
			urgentAt = i
			q.writing = true // what nudge does
		}
	}
	if size := urgentAt * 1016; urgentAt < 0 || size > MinMaxQueue/wakeShare+1016 {
		t.Fatalf("urgent at message %d, want once the queue passed %d bytes", urgentAt, MinMaxQueue/wakeShare)
	}
}

// TestSharedRun: a run of group messages goes into empty queues shared,
// not copied; a line queued after it copies it first, so it stays before
// the line; a too-slow close drops it and an END goes after it; and the
// run returns to its pool only when the last queue holding it is done.
func TestSharedRun(t *testing.T) {
	lines := []byte("RELAY #g alice 1 \r\nRELAY #g alice 2 \r\n")
	newRun := func() *sharedRun {
		r := newSharedRun()
		r.b = append(r.b, lines...)
		return r
	}
	for _, tt := range []struct {
		name  string
		then  func(q *sendQueue)
		want  string // what the writer takes
		held  bool   // the queue still holds the run itself
		drops int64
	}{
		{"alone", func(*sendQueue) {}, string(lines), true, 0},
		{"then a line", func(q *sendQueue) { q.appendBytesLocked([]byte("CNT bob \r\n")) },
			string(lines) + "CNT bob \r\n", false, 0},
		{"then a message", func(q *sendQueue) { q.appendRelayLocked([]byte("carol"), []byte("bob"), []byte("hi")) },
			string(lines) + "RELAY carol bob hi \r\n", false, 0},
		{"then a close", func(q *sendQueue) { q.closeLocked(reasonShutdown) },
			string(lines) + string(reasonShutdown.appendEnd(nil)), false, 0},
		{"then too slow", func(q *sendQueue) { q.closeLocked(reasonTooSlow) },
			string(reasonTooSlow.appendEnd(nil)), false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := newRun()
			q := &sendQueue{bound: MinMaxQueue}
			other := &sendQueue{bound: MinMaxQueue}
			for _, x := range []*sendQueue{q, other} {
				if queued, wake, _, _ := x.appendRunLocked(run); !queued || !wake {
					t.Fatalf("run queued %v, wake %v; want both", queued, wake)
				}
			}
			run.release() // the maker lets go, as endRun does
			tt.then(q)
			if (q.shared == run) != tt.held {
				t.Errorf("queue holds the run: %v, want %v", q.shared == run, tt.held)
			}
			got, _ := q.take()
			if string(got.bytes()) != tt.want {
				t.Errorf("writer takes %q, want %q", got.bytes(), tt.want)
			}
			got.done()
			if q.dropped != tt.drops {
				t.Errorf("dropped %d, want %d", q.dropped, tt.drops)
			}
			if n := run.refs.Load(); n != 1 {
				t.Fatalf("run held %d times, want once (by the other queue)", n)
			}
			if string(other.shared.b) != string(lines) {
				t.Fatalf("the other queue's run changed: %q", other.shared.b)
			}
			o, _ := other.take()
			o.done()
			if n := run.refs.Load(); n != 0 {
				t.Fatalf("run held %d times after every queue is done", n)
			}
		})
	}
}

// TestQueryRules: every kind of client query has a rule, every rule
// allows the kind somewhere (PUT excepted until sign-up is offered), and
// the two dispatches refuse kinds newer than the connection's version.
func TestQueryRules(t *testing.T) {
	for _, k := range protocol.ClientKinds() {
		r := ruleOf(k)
		if int(k) >= len(queryRules) {
			t.Errorf("kind %v has no rule", k)
			continue
		}
		if r.before == nil && r.session == nil && k != protocol.KindPut {
			t.Errorf("kind %v is allowed nowhere", k)
		}
		if k.Version() == 0 {
			t.Errorf("kind %v has no version", k)
		}
	}
	// A version-1 session reaches only version-1 kinds.
	for _, k := range protocol.ClientKinds() {
		if ruleOf(k).session != nil && k.Version() > 1 {
			s := &Session{version: 1}
			if allowedInSession(s, k) {
				t.Errorf("a version-1 session may send %v", k)
			}
		}
	}
	if len(queryRules) != int(slices.Max(protocol.ClientKinds()))+1 {
		t.Errorf("queryRules has %d entries for %d kinds", len(queryRules), len(protocol.ClientKinds()))
	}
}

// BenchmarkWatchMemory measures the server memory one watch entry costs:
// 10,000 sessions each watching 100 names out of 10,000 users, as in the
// presence target. It reports bytes per entry (B/watch).
func BenchmarkWatchMemory(b *testing.B) {
	const sessions, watches = 10_000, 100
	for b.Loop() {
		srv := benchServer(b)
		srv.presence = newPresence(srv, time.Second)
		names := make([][]byte, sessions)
		for i := range names {
			names[i] = []byte(fmt.Sprintf("user%05d", i))
		}
		ss := make([]*Session, sessions)
		for i := range ss {
			ss[i] = &Session{srv: srv, name: string(names[i]), version: 2}
		}
		var line []byte
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i, s := range ss {
			for w := 0; w < watches; w += protocol.MaxWatchNames {
				line = line[:0]
				for k := w; k < min(w+protocol.MaxWatchNames, watches); k++ {
					if len(line) > 0 {
						line = append(line, ' ')
					}
					line = append(line, names[(i*7+k*101)%sessions]...)
				}
				srv.presence.watch(s, line, watches)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		entries := srv.presence.watchEntries()
		if entries != sessions*watches {
			b.Fatalf("%d entries, want %d", entries, sessions*watches)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(entries), "B/watch")
		runtime.KeepAlive(ss)
	}
}

// BenchmarkPresenceFanOut measures one presence round for a user watched
// by 100,000 sessions: what the notifier does off the readers' path.
func BenchmarkPresenceFanOut(b *testing.B) {
	srv := benchServer(b)
	srv.presence = newPresence(srv, time.Second)
	srv.presence.pause = 0 // the round's work, not its rests
	const watchers = 100_000
	for i := 0; i < watchers; i++ {
		s := benchSession(srv, fmt.Sprintf("w%06d", i))
		srv.presence.watch(s, []byte("star"), 100)
	}
	star := benchSession(srv, "star")
	b.ReportAllocs()
	for b.Loop() {
		srv.presence.noteChange("star")
		srv.presence.flush()
		// Every watcher was told; drop what is queued, as writers would.
		srv.local.unregister(star)
		srv.presence.noteChange("star")
		srv.presence.flush()
		srv.local.register(star)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*watchers), "ns/watcher")
}

// repeatReader returns the same bytes on every Read.
type repeatReader struct{ b []byte }

func (r *repeatReader) Read(p []byte) (int, error) { return copy(p, r.b), nil }

// TestReadPathAllocs: the whole reader path of a MSG, from the read
// buffer through parsing, dispatch and routing to the target's queue,
// allocates nothing per message.
func TestReadPathAllocs(t *testing.T) {
	srv := benchServer(nil)
	sender := benchSession(srv, "alice")
	target := benchSession(srv, "bob")
	var batch []byte
	for range 64 {
		batch = append(batch, "MSG bob alice hello there, a message of some length \r\n"...)
	}
	rd := protocol.NewReader(&repeatReader{b: batch}, protocol.MaxLine)
	defer rd.Release()
	allocs := testing.AllocsPerRun(200, func() {
		if err := rd.Fill(); err != nil {
			t.Fatal(err)
		}
		if sender.handleBuffered(rd) {
			t.Fatal("the session ended")
		}
		sender.flushBatch()
		for target.queued() > 0 {
			runtime.Gosched()
		}
	})
	// A read holds about 64 messages; a few allocations per read (the
	// writer's goroutine start) are fine, one per message is not.
	if allocs > 8 {
		t.Fatalf("%.1f allocations per read of ~64 messages", allocs)
	}
	target.close(reasonShutdown)
	srv.writers.Wait()
}
