package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
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

func benchServer(b *testing.B) *Server {
	cfg := Config{Logger: slog.New(slog.DiscardHandler)}
	cfg.setDefaults()
	return &Server{cfg: cfg, dir: newHub(), done: make(chan struct{})}
}

func benchSession(srv *Server, name string) *session {
	s := &session{srv: srv, conn: &discardTransport{}, in: &countingReader{}, name: name}
	s.writer = s.writeLoop
	srv.dir.Register(s)
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
			if srv.dir.Lookup(names[i%len(names)]) == nil {
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
			if target.closed.Load() || srv.stats.NotOnline.Load() > 0 {
				b.Fatal("the target fell behind and was closed")
			}
			target.close(reasonShutdown)
			srv.writers.Wait()
		})
	}
}

// BenchmarkWriter measures the writer taking a queue and writing it.
func BenchmarkWriter(b *testing.B) {
	srv := benchServer(b)
	target := benchSession(srv, "bob")
	text := bytes.Repeat([]byte("x"), 100)
	b.ReportAllocs()
	for b.Loop() {
		for range 64 {
			target.enqueueRelay([]byte("bob"), []byte("alice"), text)
		}
		target.nudge()
	}
	target.close(reasonShutdown)
	srv.writers.Wait()
}

func (s *session) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return 0
	}
	return len(s.out.b)
}

// TestMidBatchWake: a queue that passes a share of its bound with no
// writer running asks to be woken at once, in the middle of the sender's
// read, not after it; once its writer runs it asks no more.
func TestMidBatchWake(t *testing.T) {
	s := &session{srv: &Server{cfg: Config{MaxQueue: MinMaxQueue}}}
	text := bytes.Repeat([]byte("x"), 1000)
	urgentAt := -1
	for i := 0; i < 40; i++ {
		queued, _, urgent, tooSlow := s.relayLocked([]byte("bob"), []byte("alice"), text)
		if !queued || tooSlow {
			t.Fatalf("message %d not queued", i)
		}
		if urgent {
			if urgentAt >= 0 {
				t.Fatalf("urgent again at %d after %d", i, urgentAt)
			}
			urgentAt = i
			s.writing = true // what nudge does
		}
	}
	if size := urgentAt * 1016; urgentAt < 0 || size > MinMaxQueue/wakeShare+1016 {
		t.Fatalf("urgent at message %d, want once the queue passed %d bytes", urgentAt, MinMaxQueue/wakeShare)
	}
}
