package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// TestShutdownUnderLoad shuts the server down while senders blast messages
// at receivers, some online and some not. It proves the promise of a
// graceful shutdown by counting: every message the server accepted
// (Stats().Relayed + Stats().NotOnline) was either read by its receiver
// before the connection ended or answered with CNT to its sender, and every
// session got END <server shutting down>.
func TestShutdownUnderLoad(t *testing.T) {
	const senders, receivers = 3, 3
	u := servertest.Users{"idle": "pw-idle"} // known but never online
	for i := 0; i < senders; i++ {
		u[fmt.Sprintf("s%d", i)] = "pw"
	}
	for i := 0; i < receivers; i++ {
		u[fmt.Sprintf("r%d", i)] = "pw"
	}
	srv := servertest.Start(t, u, func(c *server.Config) {
		// Receivers read as fast as they can, but on a busy machine they may
		// fall behind; a too-slow close would drop their queue and spoil
		// the count, which is not what this test is about.
		c.MaxQueue = 256 << 20
	})

	const endShutdown = "END <server shutting down> \r\n"
	var wg sync.WaitGroup
	var received, cnts, ends atomic.Int64
	// readAll reads c until the connection ends, counting the lines it is
	// allowed to get; any other line fails the test.
	readAll := func(c *lineConn, allowed string, count *atomic.Int64) {
		defer wg.Done()
		_ = c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			line, err := c.R.ReadString('\n')
			if err != nil {
				if line != "" {
					t.Errorf("partial line %q before %v", trunc(line), err)
				}
				return
			}
			switch {
			case strings.HasPrefix(line, allowed):
				count.Add(1)
			case line == endShutdown:
				ends.Add(1)
			case line == "CHECK \r\n":
			default:
				t.Errorf("unexpected line %q", trunc(line))
			}
		}
	}
	for i := 0; i < receivers; i++ {
		c := login(t, srv, fmt.Sprintf("r%d", i), "pw")
		wg.Add(1)
		go readAll(c, fmt.Sprintf("RELAY r%d s", i), &received)
	}
	targets := []string{"r0", "r1", "r2", "idle", "nobody"}
	var writers sync.WaitGroup
	for i := 0; i < senders; i++ {
		name := fmt.Sprintf("s%d", i)
		c := login(t, srv, name, "pw")
		wg.Add(1)
		go readAll(c, "CNT <user not online> \r\n", &cnts)
		writers.Add(1)
		go func() {
			defer writers.Done()
			var b []byte
			for seq := 0; ; seq++ {
				b = b[:0]
				for j := 0; j < 50; j++ {
					b = fmt.Appendf(b, "MSG %s %s message %d/%d with some text\r\n", targets[(seq+j)%len(targets)], name, seq, j)
				}
				_ = c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Conn.Write(b); err != nil {
					return // the server closed the connection
				}
			}
		}()
	}

	st := srv.Server.Stats()
	waitFor(t, "traffic to build up", func() bool { return st.Relayed.Load() > 5000 && st.NotOnline.Load() > 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	writers.Wait()
	wg.Wait()

	relayed, notOnline := st.Relayed.Load(), st.NotOnline.Load()
	t.Logf("accepted %d messages: %d relayed and received, %d answered with CNT", relayed+notOnline, received.Load(), cnts.Load())
	if received.Load() != relayed {
		t.Errorf("receivers got %d messages, server relayed %d", received.Load(), relayed)
	}
	if cnts.Load() != notOnline {
		t.Errorf("senders got %d CNT, server counted %d", cnts.Load(), notOnline)
	}
	if n := ends.Load(); n != senders+receivers {
		t.Errorf("%d sessions got %q, want %d", n, endShutdown, senders+receivers)
	}
	if n := st.CloseCount("shutdown"); n != senders+receivers {
		t.Errorf("shutdown closes = %d, want %d", n, senders+receivers)
	}
	if n := st.CloseCount("too_slow") + st.CloseCount("write_failed"); n != 0 {
		t.Errorf("%d sessions closed as too slow or failed writes", n)
	}
}

// TestShutdownWithStalledReceiver: a receiver that stopped reading cannot
// hold the shutdown past its deadline; everybody else still gets the END.
func TestShutdownWithStalledReceiver(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = 64 << 20 })
	login(t, srv, "bob", "pw-bob") // stalled: never reads
	alice := login(t, srv, "alice", "pw-alice")
	carol := login(t, srv, "carol", "pw-carol")
	batch := strings.Repeat("MSG bob alice "+strings.Repeat("s", 2000)+"\r\n", 64)
	start := srv.Server.Stats().BytesIn.Load()
	const batches = 64 // 8 MB: more than the socket buffers hold
	for i := 0; i < batches; i++ {
		alice.Send(batch)
	}
	waitFor(t, "the server to read the flood", func() bool {
		return srv.Server.Stats().BytesIn.Load()-start >= int64(batches*len(batch))
	})
	const grace = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	began := time.Now()
	err := srv.Server.Shutdown(ctx)
	took := time.Since(began)
	if err == nil {
		t.Errorf("shutdown returned nil; want the deadline error, as bob's queue could not be flushed")
	}
	if took > grace+2*time.Second {
		t.Errorf("shutdown took %v with a %v deadline", took, grace)
	}
	carol.Expect("END <server shutting down> \r\n")
	carol.ExpectClosed()
	alice.Expect("END <server shutting down> \r\n")
	alice.ExpectClosed()
}
