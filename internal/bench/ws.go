package bench

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/wsframe"
)

// Transports of a run: how sessions reach the server.
const (
	// TransportTLS is the line protocol over TLS, as terminal clients speak it.
	TransportTLS = "tls"
	// TransportWS is the WebSocket of the web client on the same port:
	// ALPN http/1.1, /ws, one text frame a line.
	TransportWS = "ws"
)

// WebSocketOptions say how DialWebSocket connects and frames.
type WebSocketOptions struct {
	// TLS is the client's TLS configuration; the connection asks for
	// HTTP/1.1 by ALPN whatever its NextProtos.
	TLS *tls.Config
	// Origin is sent as the Origin header when not empty: a messager
	// server only upgrades pages of its own host.
	Origin string
	// Subprotocols are asked for; when given, the server must choose the
	// first.
	Subprotocols []string
	// Lines selects messager's framing: one text frame is one protocol
	// line without its line end, both ways; Read returns each frame with
	// "\r\n" after it and Write sends each line of a batch as a frame.
	// Otherwise the frames carry a byte stream (NATS's framing): each
	// Write is one binary frame and Read returns the frames' bytes.
	Lines bool
	// Local is the source address; nil for any.
	Local net.IP
	// ReadBuffer, when set, reads the TCP connection through a buffer of
	// that many bytes, so that one system call takes every TLS record
	// waiting (see busyReadBuffer).
	ReadBuffer int
	// ReadLimit bounds one message the server sends (default 1 MiB).
	ReadLimit int64
}

// DialWebSocket opens a WebSocket over TLS to url (wss://HOST:PORT/PATH)
// with coder/websocket's handshake, and returns it as a connection of
// lines or of a stream, as o says. The connection frames what it writes
// itself: a batch written in one Write leaves as masked client frames in
// one write to the socket (one TLS record per 16 KiB, one system call),
// as the server writes its own. Read takes the server's plain data
// frames straight from the bytes of one socket read and hands on every
// message already whole, so that the load's counters and windows move
// once per read, as over TLS; the library reads the rest (see wsConn).
func DialWebSocket(ctx context.Context, url string, o WebSocketOptions) (net.Conn, error) {
	tlsCfg := o.TLS.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"}
	var sock *wsSocket
	tr := &http.Transport{
		// The handshake's own connection, so that the bench owns the
		// socket under the WebSocket: its buffer, its writes and the
		// frame count below.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{KeepAlive: -1}
			if o.Local != nil {
				nd.LocalAddr = &net.TCPAddr{IP: o.Local}
			}
			raw, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("connect: %w", err)
			}
			if o.ReadBuffer > 0 {
				raw = &bufferedConn{Conn: raw, r: bufio.NewReaderSize(raw, o.ReadBuffer)}
			}
			tc := tls.Client(raw, tlsCfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			sock = &wsSocket{Conn: tc}
			return sock, nil
		},
		ForceAttemptHTTP2: false,
	}
	header := http.Header{}
	if o.Origin != "" {
		header.Set("Origin", o.Origin)
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		HTTPHeader:      header,
		Subprotocols:    o.Subprotocols,
		CompressionMode: websocket.CompressionDisabled,
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if sock != nil {
			_ = sock.Close()
		}
		return nil, fmt.Errorf("websocket %s: %w", url, err)
	}
	if len(o.Subprotocols) > 0 && ws.Subprotocol() != o.Subprotocols[0] {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("websocket %s: the server did not agree to subprotocol %s", url, o.Subprotocols[0])
	}
	limit := o.ReadLimit
	if limit == 0 {
		limit = 1 << 20
	}
	ws.SetReadLimit(limit)
	if o.ReadBuffer > 0 {
		// Room for two TLS records' plaintext.
		sock.in = make([]byte, 0, 32<<10)
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails
	return &wsConn{ws: ws, sock: sock, lines: o.Lines, limit: limit, mask: rand.NewChaCha8(seed)}, nil
}

// wsConn is a WebSocket as a net.Conn of lines or of a stream. It reads
// the server's plain data frames (whole, unmasked, not fragmented) out
// of the socket's buffer itself, as many as one socket read brought, and
// frames what it writes itself, a batch in one socket write; the library
// did the handshake and takes every other frame (pings, the close,
// fragments, anything unexpected) with the bytes that follow it, until
// it has returned every message it was given.
type wsConn struct {
	ws    *websocket.Conn
	sock  *wsSocket
	lines bool
	limit int64 // the largest message the server may send

	// Read side, owned by the one reading goroutine.
	buf      []byte // the library's last message, and its line end
	rest     []byte // what of the current message Read has not returned yet
	tail     []byte // what of its line end Read has not returned yet
	messages uint64 // messages taken from the library
	err      error  // why reading stopped

	wmu  sync.Mutex // serialises Write: a reader may answer PING while a sender writes
	out  []byte     // the frames of one Write
	mask *rand.ChaCha8
}

// Read returns the next message (a line with its line end, or stream
// bytes), and more of those that are whole in memory already: it stops
// before one that would wait for the network, so that the caller handles
// one read's worth at a time.
func (c *wsConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.rest) > 0 {
			k := copy(p[n:], c.rest)
			c.rest = c.rest[k:]
			n += k
			continue
		}
		if len(c.tail) > 0 {
			k := copy(p[n:], c.tail)
			c.tail = c.tail[k:]
			n += k
			continue
		}
		if c.err != nil {
			break
		}
		if !c.libraryIdle() {
			if n > 0 && c.sock.frames.Messages <= c.messages {
				break
			}
			c.readMessage()
			continue
		}
		switch c.nextFrame() {
		case frameShort:
			if n > 0 {
				return n, nil
			}
			c.fill()
		case frameOther:
			if n > 0 {
				return n, nil
			}
			c.readMessage()
		}
	}
	if n == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}

// libraryIdle says whether the library holds nothing of the stream: it
// has returned every message in the bytes it was given, and those ended
// with a data message (or the HTTP answer), so no frame of theirs waits
// in its buffer.
func (c *wsConn) libraryIdle() bool {
	f := &c.sock.frames
	return f.Clean && c.messages == f.Messages
}

// What nextFrame found at the front of the socket's buffer.
const (
	frameData  = iota // a message, now in rest
	frameShort        // not all of a frame yet
	frameOther        // a frame for the library
)

// maxDirectFrame bounds the frames read from the socket's buffer: a
// larger one goes to the library, so the buffer stays small.
const maxDirectFrame = 64 << 10

// nextFrame takes the frame at the front of the socket's buffer when it
// is whole and a plain data message.
func (c *wsConn) nextFrame() int {
	s := c.sock
	b := s.in[s.r:]
	if len(b) < 2 {
		return frameShort
	}
	// FIN, no extension bits, not masked; text, or binary for a stream.
	op := b[0] & 0x0f
	if b[0]&0xf0 != 0x80 || b[1]&0x80 != 0 || (op != 1 && (op != 2 || c.lines)) {
		return frameOther
	}
	size, h := int(b[1]), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return frameShort
		}
		size, h = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		return frameOther
	}
	if size > maxDirectFrame || int64(size) > c.limit {
		return frameOther
	}
	if len(b)-h < size {
		return frameShort
	}
	payload := b[h : h+size]
	s.r += h + size
	if c.lines {
		if bytes.ContainsAny(payload, "\r\n") {
			c.err = errNotLine
			return frameData
		}
		c.tail = crlf
	}
	c.rest = payload
	return frameData
}

var (
	crlf       = []byte("\r\n")
	errNotLine = errors.New("the server sent a WebSocket frame that is not one line")
)

// fill reads the socket once into its buffer, after what is there.
func (c *wsConn) fill() {
	s := c.sock
	if s.r > 0 {
		k := copy(s.in, s.in[s.r:])
		s.in, s.r = s.in[:k], 0
	}
	if len(s.in) == cap(s.in) {
		s.in = slices.Grow(s.in, max(cap(s.in), 4<<10))
	}
	k, err := s.Conn.Read(s.in[len(s.in):cap(s.in)])
	s.in = s.in[:len(s.in)+k]
	if err != nil && k == 0 {
		c.err = err
	}
}

// readMessage reads one whole message from the library into buf.
func (c *wsConn) readMessage() {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		c.err = wsError(err)
		return
	}
	buf := c.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.err = wsError(err)
			return
		}
	}
	c.messages++
	if c.lines {
		if typ != websocket.MessageText || bytes.ContainsAny(buf, "\r\n") {
			c.err = errNotLine
			return
		}
		buf = append(buf, '\r', '\n')
	}
	c.buf, c.rest = buf, buf
}

// wsError names why a WebSocket stopped reading; a closed connection
// stays recognisable as io.EOF or net.ErrClosed.
func wsError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w (the server closed the WebSocket: %v %q)", io.EOF, ce.Code, ce.Reason)
	}
	return err
}

// Write sends p: in line framing each line as a text frame, else all of
// p as one binary frame; either way in one write to the socket.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.out[:0]
	if c.lines {
		for rest := p; len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line = rest[:i+1]
			}
			rest = rest[len(line):]
			out = appendClientFrame(out, 1, protocol.TrimLine(line), uint32(c.mask.Uint64()))
		}
	} else {
		out = appendClientFrame(out, 2, p, uint32(c.mask.Uint64()))
	}
	if cap(out) <= maxKeptWrite {
		c.out = out
	}
	if _, err := c.sock.write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// maxKeptWrite bounds the frame buffer a connection keeps between writes.
const maxKeptWrite = 256 << 10

// appendClientFrame appends payload as one final client frame of
// opcode, masked with key (RFC 6455 section 5.3).
func appendClientFrame(out []byte, opcode byte, payload []byte, key uint32) []byte {
	out = append(out, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = binary.LittleEndian.AppendUint32(out, key)
	start := len(out)
	out = append(out, payload...)
	maskBytes(out[start:], key)
	return out
}

// maskBytes applies the mask key whose bytes are key's, low first, to
// b, eight bytes at a time.
func maskBytes(b []byte, key uint32) {
	key8 := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^key8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// Close ends the WebSocket at once: the bench has said END already where
// it had to.
func (c *wsConn) Close() error                       { return c.ws.CloseNow() }
func (c *wsConn) LocalAddr() net.Addr                { return c.sock.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.sock.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.sock.SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.sock.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.sock.SetWriteDeadline(t) }

// wsSocket is the TLS connection under a WebSocket. It keeps a buffer
// of what was read from the socket and not taken yet, in[r:]: the
// connection takes data frames from it, and the library's reads are
// served from it before the socket. It follows the frames in the bytes
// it hands to the library, counting the data messages that arrived
// whole, so the reader can tell whether the library holds another one
// or would wait for the network, and when it holds nothing. The library
// reads the socket only on the goroutine that reads messages, so the
// buffer and the count need no lock.
type wsSocket struct {
	net.Conn
	frames frameCounter
	in     []byte
	r      int

	mu sync.Mutex // serialises writes: the library's (its control frames) and the connection's
}

func (s *wsSocket) Read(p []byte) (int, error) {
	if s.r < len(s.in) {
		k := copy(p, s.in[s.r:])
		s.r += k
		s.frames.feed(p[:k])
		return k, nil
	}
	n, err := s.Conn.Read(p)
	s.frames.feed(p[:n])
	return n, err
}

func (s *wsSocket) Write(p []byte) (int, error) { return s.write(p) }

func (s *wsSocket) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Conn.Write(p)
}

// frameCounter follows a WebSocket's incoming bytes from the start of
// the server's HTTP answer: it skips the answer's header, then counts
// the data messages in the frames after it.
type frameCounter struct {
	upgraded bool // the HTTP answer's header is over
	crlf     int  // how much of "\r\n\r\n" was seen last
	wsframe.Counter
}

func (f *frameCounter) feed(p []byte) {
	if !f.upgraded {
		if p = f.skipHeader(p); !f.upgraded {
			return
		}
	}
	f.Feed(p)
}

// skipHeader consumes the HTTP answer up to its blank line.
func (f *frameCounter) skipHeader(p []byte) []byte {
	const end = "\r\n\r\n"
	for i, b := range p {
		switch {
		case b == end[f.crlf]:
			f.crlf++
		case b == '\r':
			f.crlf = 1
		default:
			f.crlf = 0
		}
		if f.crlf == len(end) {
			f.upgraded, f.Clean = true, true
			return p[i+1:]
		}
	}
	return nil
}
