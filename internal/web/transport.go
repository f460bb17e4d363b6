package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/protocol"
)

// Subprotocol is the WebSocket subprotocol of the line protocol: one text
// frame is one protocol line without its line end, both ways.
const Subprotocol = "messager.v2"

// maxFrame bounds a message the server reads. A message longer than a
// line may be is still read whole, so that the session can answer it
// with END * <line too long>; one longer than this closes the WebSocket
// at once (close status 1009), as the message is not kept in memory.
const maxFrame = 64 << 10

// keepSpill is the largest spill buffer a transport keeps between
// messages: room for any line a client may send. A longer message (an
// over-long line, which ends the session) does not stay in memory.
const keepSpill = 2 * protocol.MaxLine

// writeChunk is about how many bytes of frames one write to the socket
// carries: a batch larger than this (the queue of a busy receiver holds
// up to a megabyte) leaves in several writes, so the frame buffers stay
// small enough to be pooled.
const writeChunk = 64 << 10

// transport is a WebSocket as a line transport (server.Transport).
//
// Read runs on the goroutine that reads the session (no goroutine of its
// own) and hands it, in one call, every message that is already whole in
// memory, each as a line: it waits for the network only for the first.
// So one read of the socket is one batch for the session, as over TLS,
// and the session wakes each receiver's writer once per batch rather
// than once per line.
//
// Write frames a batch's lines itself, one text frame each, into one
// buffer, and writes it to the socket in one call: a server's frames are
// not masked, so a frame is a short header and the line.
//
// Deadlines are the socket's own: the library sees no context with a
// deadline, which would close the WebSocket when it passes (a session
// closed by someone else stops reading at once, but must still write
// its END).
type transport struct {
	ws     *websocket.Conn
	sock   *webConn
	closed atomic.Bool

	// The read side, owned by the reading goroutine.
	taken uint64 // data messages taken from the library
	rest  []byte // what of the last message Read has not returned yet
	spill []byte // holds a message that did not fit in Read's buffer
	err   error  // why reading stopped, returned after the lines before it
}

func newTransport(ws *websocket.Conn, sock *webConn) *transport {
	ws.SetReadLimit(maxFrame)
	return &transport{ws: ws, sock: sock}
}

// badLine stands for a message that is not a line (binary, or holding a
// line end): a control character, which the session answers with
// END * <incorrect protocol>.
var badLine = []byte{0, '\n'}

// lineEnd ends a line whose message filled Read's buffer exactly.
var lineEnd = []byte{'\n'}

// Read returns the next lines: one message's at least, waiting for it,
// then those of every message already whole in memory, as long as they
// fit.
func (t *transport) Read(p []byte) (int, error) {
	if t.closed.Load() {
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(p) {
		if len(t.rest) > 0 {
			k := copy(p[n:], t.rest)
			t.rest = t.rest[k:]
			n += k
			continue
		}
		if t.err != nil || n > 0 && t.sock.frames.Messages <= t.taken {
			break
		}
		if k, ok := t.takeShort(p[n:], n == 0); ok {
			n += k
			continue
		}
		n += t.readMessage(p[n:])
	}
	if n == 0 && t.err != nil {
		return 0, t.err
	}
	return n, nil
}

// takeShort takes the next message straight from the library's read
// buffer when it is of the common kind: one final, masked text frame
// whole in that buffer, that fits in dst with its line end. Anything else
// (control frames, fragments, a frame not yet read whole, binary, reserved
// bits, a frame that is not masked) is left to the library, which checks
// and answers it; it is between messages here and keeps no state about
// bytes it has not read, so a frame taken this way is one it never sees.
// When wait is set and the buffer is empty, takeShort first waits for
// bytes from the network through the buffer. It reports whether it took
// a message, and how many bytes of dst it filled.
func (t *transport) takeShort(dst []byte, wait bool) (int, bool) {
	br := t.sock.br
	if wait && br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			t.err = t.readError(err)
			return 0, true
		}
	}
	b, _ := br.Peek(br.Buffered())
	if len(b) < 2 || b[0] != 0x80|0x1 || b[1]&0x80 == 0 {
		return 0, false
	}
	size, head := int(b[1]&0x7f), 6
	switch {
	case size == 126 && len(b) >= 4:
		size, head = int(binary.BigEndian.Uint16(b[2:])), 8
	case size >= 126:
		return 0, false
	}
	if len(b) < head+size || size >= len(dst) {
		return 0, false
	}
	unmask(dst, b[head:head+size], b[head-4:head])
	_, _ = br.Discard(head + size)
	t.taken++
	if holdsLineEnd(dst[:size]) {
		t.rest = badLine
		return 0, true
	}
	dst[size] = '\n'
	return size + 1, true
}

// unmask copies src into dst undoing the client's mask (RFC 6455, section
// 5.3): each byte XOR the key's byte at its position modulo 4, eight at a
// time.
func unmask(dst, src, key []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ key[i&3]
	}
}

// readMessage reads the next message whole and makes it a line: in dst
// (not empty) if it fits there with its line end, else in the spill
// buffer, left in rest. It returns how many bytes of dst it filled. A
// message is checked whole before any of it is handed on: a frame that
// holds a line end must not pass its first line.
func (t *transport) readMessage(dst []byte) int {
	typ, r, err := t.ws.Reader(context.Background())
	if err != nil {
		t.err = t.readError(err)
		return 0
	}
	t.taken++
	buf, spilled := dst[:0:len(dst)], false
	for {
		if len(buf) == cap(buf) {
			if !spilled {
				buf, spilled = append(t.spill[:0], buf...), true
			}
			buf = slices.Grow(buf, max(512, len(buf)))
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.err = t.readError(err)
			return 0
		}
	}
	if spilled {
		t.spill = buf[:0]
		if cap(buf) > keepSpill {
			t.spill = nil
		}
	}
	switch {
	case typ != websocket.MessageText || holdsLineEnd(buf):
		t.rest = badLine
		return 0
	case spilled:
		t.rest = append(buf, '\n')
		return 0
	case len(buf) < len(dst):
		dst[len(buf)] = '\n'
		return len(buf) + 1
	default:
		t.rest = lineEnd
		return len(buf)
	}
}

// holdsLineEnd reports whether b holds a "\r" or a "\n". Two scans for
// one byte each cost less than bytes.ContainsAny, which builds a set for
// every call.
func holdsLineEnd(b []byte) bool {
	return bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0
}

// readError is what Read reports for an error of the library's.
func (t *transport) readError(err error) error {
	switch {
	case t.closed.Load():
		return net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	}
	return err
}

// frameBuffers hold the frames of a batch while it is written.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Write sends each line of p (lines end in "\r\n", after a space in the
// seed shape) as a text frame without its line end, all of them in one
// write to the socket (several for a batch over writeChunk). It returns
// how much of p went out in writes that succeeded.
func (t *transport) Write(p []byte) (int, error) {
	if t.closed.Load() {
		return 0, net.ErrClosed
	}
	bp := frameBuffers.Get().(*[]byte)
	defer frameBuffers.Put(bp)
	n := 0
	for n < len(p) {
		b, end := (*bp)[:0], n
		for end < len(p) && len(b) < writeChunk {
			line := p[end:]
			if i := bytes.IndexByte(line, '\n'); i >= 0 {
				line = line[:i+1]
			}
			end += len(line)
			b = appendTextFrame(b, protocol.TrimLine(line))
		}
		*bp = b
		if err := t.sock.writeFrames(b); err != nil {
			return n, err
		}
		n = end
	}
	return n, nil
}

// appendTextFrame appends a final, unmasked text frame holding payload:
// the header (RFC 6455, section 5.2) is FIN and the opcode, then the
// length in 7 bits, or 126 and 16 bits, or 127 and 64 bits.
func appendTextFrame(b, payload []byte) []byte {
	const finText = 0x80 | 0x1
	switch n := len(payload); {
	case n < 126:
		b = append(b, finText, byte(n))
	case n <= 0xffff:
		b = append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func (t *transport) SetReadDeadline(d time.Time) error { return t.sock.Conn.SetReadDeadline(d) }

func (t *transport) SetWriteDeadline(d time.Time) error { return t.sock.Conn.SetWriteDeadline(d) }

// Close ends the WebSocket at once, without a closing handshake: the
// session has written its END already, if it had one.
func (t *transport) Close() error {
	if t.closed.CompareAndSwap(false, true) {
		_ = t.ws.CloseNow()
	}
	return nil
}

func (t *transport) RemoteAddr() net.Addr { return t.sock.RemoteAddr() }
