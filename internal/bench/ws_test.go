package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// TestClosedLoopWebSocket: the 1:1 load over the web client's WebSocket
// of a real server counts as over TLS.
func TestClosedLoopWebSocket(t *testing.T) {
	srv := startServer(t, 2, 0)
	cfg := baseConfig(srv, 2)
	cfg.Window = 16
	cfg.Transport = TransportWS
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, rep)
	if rep.Transport != TransportWS {
		t.Errorf("transport %q, want ws", rep.Transport)
	}
	// Windows move once per read, not once per message.
	if rep.Bench.MsgsPerRead < 1.5 || rep.Bench.MsgsPerWrite < 1.5 {
		t.Errorf("%.1f messages per read, %.1f per write: want batches", rep.Bench.MsgsPerRead, rep.Bench.MsgsPerWrite)
	}
}

// TestGroupWebSocket: the group mode over WebSocket, senders and
// members alike.
func TestGroupWebSocket(t *testing.T) {
	cfg := groupConfig(t, 3, 2)
	cfg.Transport = TransportWS
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkGroup(t, rep, 3, 2)
}

// TestWebSocketVersion2: HELLO 2 and AUTH in one write are two frames.
func TestWebSocketVersion2(t *testing.T) {
	srv := startServer(t, 1, 0)
	cfg := baseConfig(srv, 1)
	cfg.Transport = TransportWS
	cfg.Version2 = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, rep)
}

// countingProxy forwards connections to addr and counts them: a second
// address for one server, to see which sessions used it.
func countingProxy(t *testing.T, addr string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String(), &n
}

// TestServerB: with --server-b the receivers log in to the second
// address and the senders to the first. Both addresses reach one server
// here (two unclustered servers would not pass messages on), through a
// proxy that counts the connections made to the second.
func TestServerB(t *testing.T) {
	for _, transport := range []string{TransportTLS, TransportWS} {
		t.Run(transport, func(t *testing.T) {
			srv := startServer(t, 3, 0)
			addrB, conns := countingProxy(t, srv.Addr)
			cfg := baseConfig(srv, 3)
			cfg.Window = 8
			cfg.Transport = transport
			cfg.ServerB = addrB
			cfg.ServerPIDB = os.Getpid()
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkLoad(t, rep)
			if got := conns.Load(); got != 3 {
				t.Errorf("%d connections to the second address, want the 3 receivers'", got)
			}
			if rep.ServerB != addrB || rep.CertificateB != "pinned by fingerprint" {
				t.Errorf("server b %q, certificate %q", rep.ServerB, rep.CertificateB)
			}
			if u := rep.ServerUsage; u == nil || len(u.Nodes) != 2 || u.Nodes[0].CPUSeconds+u.Nodes[1].CPUSeconds-u.CPUSeconds > 0.02 {
				t.Errorf("server usage %+v: want both nodes, adding up", u)
			}
		})
	}
}

// TestServerBGroup: group members log in to the second address.
func TestServerBGroup(t *testing.T) {
	cfg := groupConfig(t, 3, 1)
	addrB, conns := countingProxy(t, cfg.Server)
	cfg.ServerB = addrB
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkGroup(t, rep, 3, 1)
	if got := conns.Load(); got != 3 {
		t.Errorf("%d connections to the second address, want the 3 members'", got)
	}
}

// TestServerBFingerprint: the second node's certificate is checked with
// its own pin when one is given.
func TestServerBFingerprint(t *testing.T) {
	srv := startServer(t, 1, 0)
	cfg := baseConfig(srv, 1)
	cfg.ServerB = srv.Addr
	cfg.TLSB = TLS{Fingerprint: "sha256:" + strings.Repeat("0", 64)}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("err = %v, want a fingerprint mismatch at the second node", err)
	}
}

// TestFrameCounter: messages are counted once their last byte is read,
// however the bytes are split, after the HTTP answer's header.
func TestFrameCounter(t *testing.T) {
	answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	long := make([]byte, 300)
	stream := []byte(answer)
	stream = append(stream, 0x81, 5, 'h', 'e', 'l', 'l', 'o') // text, FIN
	stream = append(stream, 0x89, 0)                          // ping: not data
	stream = append(stream, 0x01, 2, 'a', 'b')                // text, not FIN
	stream = append(stream, 0x80, 1, 'c')                     // continuation, FIN
	stream = append(stream, 0x82, 126, 1, 44)                 // binary, 300 bytes
	stream = append(stream, long...)
	stream = append(stream, 0x81, 0) // empty text
	// After each byte: messages complete so far.
	want := make([]uint64, len(stream))
	ends := map[int]uint64{len(answer) + 6: 1, len(answer) + 15: 2, len(answer) + 19 + 300: 3, len(stream) - 1: 4}
	var m uint64
	for i := range stream {
		if v, ok := ends[i]; ok {
			m = v
		}
		want[i] = m
	}
	for _, split := range []int{1, 3, 7, 64, len(stream)} {
		var f frameCounter
		for i := 0; i < len(stream); i += split {
			end := min(i+split, len(stream))
			f.feed(stream[i:end])
			if f.Messages != want[end-1] {
				t.Fatalf("split %d: %d messages after byte %d, want %d", split, f.Messages, end-1, want[end-1])
			}
			// Clean right after the answer and after each data message.
			_, last := ends[end-1]
			if clean := last || end == len(answer); f.Clean != clean {
				t.Fatalf("split %d: clean %v after byte %d, want %v", split, f.Clean, end-1, clean)
			}
		}
	}
}

// TestWebSocketFraming: against the library's own server, lines written
// in one batch arrive as the server's messages (so the hand-made client
// frames are masked right, at every length form), and what the server
// sends arrives in order as lines: plain frames read from the socket's
// buffer, and between them a ping, a fragmented message and one too large
// for the buffer, which the library takes.
func TestWebSocketFraming(t *testing.T) {
	sizes := []int{0, 1, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000}
	line := func(i, n int) string {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		return string(b)
	}
	var want []string
	for i := range 300 {
		want = append(want, line(i, i%40))
	}
	want = append(want[:150], append([]string{"frag" + "mented", line(7, 70000)}, want[150:]...)...)
	got := make(chan []string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		ctx := r.Context()
		read := make(chan []string, 1)
		pinged := make(chan error, 1)
		go func() {
			var lines []string
			for range sizes {
				_, b, err := ws.Read(ctx)
				if err != nil {
					t.Error(err)
					break
				}
				lines = append(lines, string(b))
			}
			read <- lines
			// Keep reading, for the client's pong.
			_, _, _ = ws.Read(ctx)
		}()
		send := func(s string) {
			if err := ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
				t.Error(err)
			}
		}
		for _, s := range want[:150] {
			send(s)
		}
		go func() { pinged <- ws.Ping(ctx) }()
		wr, err := ws.Writer(ctx, websocket.MessageText)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = wr.Write([]byte("frag"))
		_, _ = wr.Write([]byte("mented"))
		_ = wr.Close()
		for _, s := range want[151:] {
			send(s)
		}
		if err := <-pinged; err != nil {
			t.Error(err)
		}
		got <- <-read
		_ = ws.Close(websocket.StatusNormalClosure, "done")
	}))
	defer srv.Close()

	c, err := DialWebSocket(context.Background(), "wss"+strings.TrimPrefix(srv.URL, "https")+"/ws",
		WebSocketOptions{TLS: &tls.Config{InsecureSkipVerify: true}, Lines: true, ReadBuffer: busyReadBuffer})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []byte
	for i, n := range sizes {
		batch = append(batch, line(i, n)+"\r\n"...)
	}
	if n, err := c.Write(batch); err != nil || n != len(batch) {
		t.Fatalf("write: %d, %v", n, err)
	}
	var lines []string
	var rest []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		rest = append(rest, buf[:n]...)
		for {
			i := bytes.Index(rest, []byte("\r\n"))
			if i < 0 {
				break
			}
			lines = append(lines, string(rest[:i]))
			rest = rest[i+2:]
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v", err)
			}
			break
		}
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("line %d: %.40q, want %.40q", i, lines[i], want[i])
		}
	}
	server := <-got
	for i, n := range sizes {
		if i >= len(server) || server[i] != line(i, n) {
			t.Fatalf("the server's message %d is not the line of %d bytes written", i, n)
		}
	}
}

// TestMaskBytes: masking eight bytes at a time is masking byte by byte.
func TestMaskBytes(t *testing.T) {
	key := uint32(0xa1b2c3d4)
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		maskBytes(b, key)
		for i := range b {
			m := [4]byte{0xd4, 0xc3, 0xb2, 0xa1}[i%4]
			if b[i] != byte(i*7)^m {
				t.Fatalf("length %d, byte %d: %#x", n, i, b[i])
			}
		}
	}
}
