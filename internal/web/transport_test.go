package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/protocol"
)

// pipeWS is a transport over one end of an in-memory pipe, upgraded by
// the same code as the server's, with a client on the other end that
// frames by hand: it can send frames a library would not, and see every
// byte the server writes.
type pipeWS struct {
	t   *transport
	raw net.Conn      // the client's end
	br  *bufio.Reader // reads raw
	tb  testing.TB
}

func newPipeWS(tb testing.TB) *pipeWS {
	tb.Helper()
	srvEnd, cliEnd := net.Pipe()
	p := &pipeWS{raw: cliEnd, br: bufio.NewReader(cliEnd), tb: tb}
	upgraded := servePipe(tb, srvEnd)
	go func() {
		_, _ = fmt.Fprintf(cliEnd, "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", Subprotocol)
	}()
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		tb.Fatalf("upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != Subprotocol {
		tb.Fatalf("upgrade: %s, subprotocol %q", resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	p.t = p.wait(upgraded)
	return p
}

// servePipe serves HTTP on srvEnd as the web side does, upgrading /ws to
// a transport, which it passes on.
func servePipe(tb testing.TB, srvEnd net.Conn) <-chan *transport {
	transports := make(chan *transport, 1)
	c := &webConn{Conn: srvEnd}
	ln := newConnListener()
	hs := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ws, err := upgrade(rw, r, c, nil)
		if err != nil {
			transports <- nil
			return
		}
		transports <- newTransport(ws, c)
	})}
	go func() { _ = hs.Serve(ln) }()
	ln.push(c)
	tb.Cleanup(func() {
		ln.Close()
		_ = hs.Close()
		_ = srvEnd.Close()
	})
	return transports
}

// wait returns the transport of an upgrade, closed when the test ends.
func (p *pipeWS) wait(upgraded <-chan *transport) *transport {
	select {
	case t := <-upgraded:
		if t == nil {
			p.tb.Fatal("the upgrade failed")
		}
		p.tb.Cleanup(func() {
			_ = t.Close()
			if p.raw != nil {
				_ = p.raw.Close()
			}
		})
		return t
	case <-time.After(5 * time.Second):
		p.tb.Fatal("no upgrade")
		return nil
	}
}

// send writes b on the client's end without waiting for the server to
// read it (a pipe's write waits); the returned channel has the result.
func (p *pipeWS) send(b []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.raw.Write(b)
		done <- err
	}()
	return done
}

// clientFrame appends a masked client frame: first is FIN, RSV and the
// opcode.
func clientFrame(b []byte, first byte, payload string) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	switch n := len(payload); {
	case n < 126:
		b = append(b, first, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, first, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, first, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

const (
	finText   = 0x81
	finBinary = 0x82
	finClose  = 0x88
	finPing   = 0x89
)

// textFrames is the client frames of lines, one text frame each.
func textFrames(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		b = clientFrame(b, finText, l)
	}
	return b
}

// frame is a server frame as the client read it.
type frame struct {
	first   byte
	payload []byte
}

// next reads one server frame; server frames are not masked.
func (p *pipeWS) next() (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return frame{}, err
	}
	if h[1]&0x80 != 0 {
		return frame{}, errors.New("a masked server frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(p.br, x[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(p.br, x[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	f := frame{first: h[0], payload: make([]byte, n)}
	_, err := io.ReadFull(p.br, f.payload)
	return f, err
}

// frames reads server frames into a channel until the pipe ends.
func (p *pipeWS) frames() <-chan frame {
	ch := make(chan frame, 64)
	go func() {
		defer close(ch)
		for {
			f, err := p.next()
			if err != nil {
				return
			}
			ch <- f
		}
	}()
	return ch
}

// readAll reads from the transport until want bytes came, in reads of
// size bytes at most.
func readAll(tb testing.TB, t *transport, want, size int) string {
	tb.Helper()
	var got []byte
	buf := make([]byte, size)
	for len(got) < want {
		n, err := t.Read(buf)
		if err != nil {
			tb.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// TestReadBatch: one Read returns every message already whole in memory,
// and waits for the network only for the first.
func TestReadBatch(t *testing.T) {
	p := newPipeWS(t)
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("MSG bob alice hello %d", i))
	}
	sent := p.send(textFrames(lines...))
	buf := make([]byte, 32<<10)
	n, err := p.t.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(lines, "\n") + "\n"; string(buf[:n]) != want {
		t.Fatalf("one read gave %q, want every line: %q", buf[:n], want)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// Nothing more is coming: the next read waits, until its deadline.
	_ = p.t.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := p.t.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read with nothing sent: %d, %v; want the deadline", n, err)
	}
}

// TestReadPieces: messages longer than the reader's buffer, messages that
// fill it exactly, empty ones and fragmented ones come out as the same
// lines whatever the buffer's size.
func TestReadPieces(t *testing.T) {
	long := strings.Repeat("x", 3000)
	lines := []string{"", "a", "abcdef", "MSG bob alice " + long, "abcdefg", "", "MSG bob alice bye"}
	want := strings.Join(lines, "\n") + "\n"
	frames := textFrames(lines[:5]...)
	// The sixth and seventh lines in fragments, with a ping between.
	frames = clientFrame(frames, 0x01, "")
	frames = clientFrame(frames, 0x80, "")
	frames = clientFrame(frames, 0x01, "MSG bob")
	frames = clientFrame(frames, finPing, "ping!")
	frames = clientFrame(frames, 0x00, " alice")
	frames = clientFrame(frames, 0x80, " bye")
	for _, size := range []int{1, 2, 6, 7, 8, 100, 4096, 32 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newPipeWS(t)
			got := p.frames()
			sent := p.send(frames)
			if s := readAll(t, p.t, len(want), size); s != want {
				t.Fatalf("got %q, want %q", s, want)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if f := <-got; f.first != 0x8a || string(f.payload) != "ping!" {
				t.Fatalf("the answer to a ping: %#x %q", f.first, f.payload)
			}
		})
	}
}

// TestReadBadMessages: a binary message, or a text message holding a
// line end, is handed on as a control character (which the session
// refuses), after the lines before it and none of its own.
func TestReadBadMessages(t *testing.T) {
	for name, bad := range map[string][]byte{
		"binary":  clientFrame(nil, finBinary, "MSG bob alice hi"),
		"newline": clientFrame(nil, finText, "MSG bob alice hi\nMSG bob alice two"),
		"return":  clientFrame(nil, finText, "MSG bob alice hi\rMSG"),
		"long":    clientFrame(nil, finText, strings.Repeat("y", 5000)+"\n"),
	} {
		t.Run(name, func(t *testing.T) {
			p := newPipeWS(t)
			p.send(append(textFrames("MSG bob alice ok"), bad...))
			want := "MSG bob alice ok\n\x00\n"
			if s := readAll(t, p.t, len(want), 64); s != want {
				t.Fatalf("got %q, want %q", s, want)
			}
		})
	}
}

// TestReadTooLong: a message over maxFrame closes the WebSocket with
// status 1009 rather than being kept in memory.
func TestReadTooLong(t *testing.T) {
	p := newPipeWS(t)
	got := p.frames()
	p.send(clientFrame(nil, finText, strings.Repeat("z", maxFrame+1)))
	buf := make([]byte, 4096)
	if n, err := p.t.Read(buf); err == nil {
		t.Fatalf("read %d bytes of an over-long message", n)
	}
	f := <-got
	if f.first != finClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != uint16(websocket.StatusMessageTooBig) {
		t.Fatalf("got frame %#x %q, want a close with status 1009", f.first, f.payload)
	}
}

// TestReadDeadline: a read deadline stops a blocked Read at once without
// tearing the WebSocket down, so the session can still write its END.
func TestReadDeadline(t *testing.T) {
	p := newPipeWS(t)
	got := p.frames()
	done := make(chan error, 1)
	go func() {
		_, err := p.t.Read(make([]byte, 256))
		done <- err
	}()
	_ = p.t.SetReadDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the deadline", err)
	}
	if _, err := p.t.Write([]byte("END <logged in elsewhere> \r\n")); err != nil {
		t.Fatal(err)
	}
	if f := <-got; f.first != finText || string(f.payload) != "END <logged in elsewhere>" {
		t.Fatalf("got %#x %q, want the END", f.first, f.payload)
	}
}

// TestClose: Close stops a blocked Read at once, and later reads and
// writes fail.
func TestClose(t *testing.T) {
	p := newPipeWS(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.t.Read(make([]byte, 256))
		done <- err
	}()
	_ = p.t.Close()
	if err := <-done; err == nil {
		t.Fatal("a read went on after Close")
	}
	if _, err := p.t.Read(make([]byte, 256)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := p.t.Write([]byte("RELAY a b hi \r\n")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
}

// TestNoDataAfterClose: once the library has sent a close frame (here for
// a frame with a reserved bit set), no data frame follows it.
func TestNoDataAfterClose(t *testing.T) {
	p := newPipeWS(t)
	got := p.frames()
	p.send(clientFrame(nil, finText|0x20, "MSG bob alice hi"))
	if n, err := p.t.Read(make([]byte, 256)); err == nil {
		t.Fatalf("read %d bytes of a frame with RSV2 set", n)
	}
	if _, err := p.t.Write([]byte("RELAY a b too late \r\n")); err == nil {
		t.Error("a write after the close frame succeeded")
	}
	_ = p.t.Close()
	var firsts []byte
	for f := range got {
		firsts = append(firsts, f.first)
	}
	if !bytes.Equal(firsts, []byte{finClose}) {
		t.Fatalf("frames %#x, want the close frame alone", firsts)
	}
}

// TestWriteFrames: each line of a write is a text frame without its line
// end, in every length form of the header; a batch larger than a chunk
// goes out whole and in order.
func TestWriteFrames(t *testing.T) {
	p := newPipeWS(t)
	got := p.frames()
	var lines []string
	for _, n := range []int{0, 1, 125, 126, 127, 4000, 0xffff, 0x10000, 70000} {
		lines = append(lines, strings.Repeat("r", n))
	}
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("RELAY alice bob message %d", i))
	}
	var batch []byte
	for i, l := range lines {
		end := "\r\n"
		if i%2 == 1 {
			end = " \r\n" // the seed's shape: a space before the line end
		}
		batch = append(batch, l+end...)
	}
	wrote := make(chan error, 1)
	go func() {
		n, err := p.t.Write(batch)
		if err == nil && n != len(batch) {
			err = fmt.Errorf("wrote %d of %d", n, len(batch))
		}
		wrote <- err
	}()
	for i, want := range lines {
		f := <-got
		if f.first != finText || string(f.payload) != want {
			t.Fatalf("frame %d: %#x %q, want a text frame %q", i, f.first, protocol.TrimLine(f.payload[:min(len(f.payload), 40)]), want[:min(len(want), 40)])
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestFramesForTheLibrary: the library, as a client, reads the frames the
// transport writes in every length form.
func TestFramesForTheLibrary(t *testing.T) {
	srvEnd, cliEnd := net.Pipe()
	upgraded := servePipe(t, srvEnd)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws://test/ws", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) { return cliEnd, nil },
		}},
		Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	client.SetReadLimit(-1)
	tr := (&pipeWS{tb: t}).wait(upgraded)
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000}
	go func() {
		for _, n := range sizes {
			if _, err := tr.Write([]byte(strings.Repeat("s", n) + " \r\n")); err != nil {
				return
			}
		}
	}()
	for _, n := range sizes {
		typ, b, err := client.Read(ctx)
		if err != nil {
			t.Fatalf("the library read: %v", err)
		}
		if typ != websocket.MessageText || len(b) != n || strings.Trim(string(b), "s") != "" {
			t.Fatalf("the library read %v of %d bytes, want text of %d", typ, len(b), n)
		}
	}
	// And the transport reads the library's frames.
	wrote := make(chan error, 1)
	go func() { wrote <- client.Write(ctx, websocket.MessageText, []byte("MSG bob alice from the library")) }()
	if s := readAll(t, tr, 31, 256); s != "MSG bob alice from the library\n" {
		t.Fatalf("the transport read %q", s)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// relayBatch is what a sender's read brings and what a receiver's write
// takes at the load's window: 64 messages of 100 bytes.
func relayBatch() (in, out []byte, want int) {
	text := strings.Repeat("m", 100)
	for i := range 64 {
		line := fmt.Sprintf("MSG bob alice %02d%s", i, text)
		in = clientFrame(in, finText, line)
		out = append(out, "RELAY bob alice "+text+" \r\n"...)
		want += len(line) + 1
	}
	return in, out, want
}

// relayLoop feeds a transport in and drains what it writes, so that the
// hot path's allocations can be counted: neither side allocates.
func relayLoop(tb testing.TB) (p *pipeWS, round func()) {
	p = newPipeWS(tb)
	in, out, want := relayBatch()
	feed, fed := make(chan struct{}), make(chan error)
	go func() {
		for range feed {
			_, err := p.raw.Write(in)
			fed <- err
		}
	}()
	go func() {
		drain := make([]byte, 64<<10)
		for {
			if _, err := p.raw.Read(drain); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() { close(feed) })
	buf := make([]byte, 32<<10)
	return p, func() {
		feed <- struct{}{}
		for got := 0; got < want; {
			n, err := p.t.Read(buf[got:])
			if err != nil {
				tb.Fatal(err)
			}
			got += n
		}
		if err := <-fed; err != nil {
			tb.Fatal(err)
		}
		if _, err := p.t.Write(out); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestHotPathAllocations: reading a batch of messages and writing a batch
// of lines allocates nothing.
func TestHotPathAllocations(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector drops pooled buffers at random")
	}
	_, round := relayLoop(t)
	round()
	if a := testing.AllocsPerRun(200, round); a != 0 {
		t.Fatalf("%.1f allocations per batch of 64 messages in and 64 lines out, want 0", a)
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// BenchmarkRelayBatch: a batch of 64 messages of 100 bytes read and 64
// lines written, as at the load's window.
func BenchmarkRelayBatch(b *testing.B) {
	_, round := relayLoop(b)
	b.ReportAllocs()
	for b.Loop() {
		round()
	}
}

// TestUnmask: unmasking eight bytes at a time matches the RFC's byte by
// byte definition at every length and alignment of the tail.
func TestUnmask(t *testing.T) {
	key := []byte{0x9a, 0x01, 0xfe, 0x42}
	src := make([]byte, 70)
	for i := range src {
		src[i] = byte(i*37 + 11)
	}
	for n := range len(src) + 1 {
		got := make([]byte, n)
		unmask(got, src[:n], key)
		for i := range n {
			if want := src[i] ^ key[i%4]; got[i] != want {
				t.Fatalf("length %d, byte %d: %#x, want %#x", n, i, got[i], want)
			}
		}
	}
}

// FuzzRead: whatever the messages (lines, lines holding a line end, empty
// ones, some in two fragments), wherever the stream is cut between two
// writes and whatever the size of the reads, the lines come out whole and
// in order, up to the first message that is not a line, which comes out
// as the control character.
func FuzzRead(f *testing.F) {
	f.Add([]byte("MSG bob alice hi\xffMSG bob alice two\xff\xffWHO"), uint16(5), uint16(4096), uint8(2))
	f.Add([]byte("a\xffb\nc\xffd"), uint16(1), uint16(3), uint8(1))
	f.Add([]byte(strings.Repeat("x", 300)+"\xff"+strings.Repeat("y", 5000)), uint16(4000), uint16(100), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut, size uint16, fragment uint8) {
		if size == 0 {
			size = 1
		}
		var stream []byte
		var want strings.Builder
		bad := false
		for i, m := range bytes.Split(data, []byte{0xff}) {
			if !bad {
				if bytes.ContainsAny(m, "\r\n") {
					want.WriteString("\x00\n")
					bad = true
				} else {
					want.Write(m)
					want.WriteByte('\n')
				}
			}
			if fragment != 0 && i%int(fragment) == 0 && len(m) > 1 {
				stream = clientFrame(stream, 0x01, string(m[:len(m)/2]))
				stream = clientFrame(stream, 0x80, string(m[len(m)/2:]))
			} else {
				stream = clientFrame(stream, finText, string(m))
			}
		}
		p := newPipeWS(t)
		at := min(int(cut), len(stream))
		go func() {
			if _, err := p.raw.Write(stream[:at]); err == nil {
				_, _ = p.raw.Write(stream[at:])
			}
		}()
		if got := readAll(t, p.t, want.Len(), int(size)); got[:want.Len()] != want.String() {
			t.Fatalf("got %q, want %q", got, want.String())
		}
	})
}
