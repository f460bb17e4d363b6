package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/protocol"
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
// with coder/websocket, the library the server uses, and returns it as a
// connection of lines or of a stream, as o says. A batch of frames
// written in one Write leaves in one write to the socket (one TLS record
// per 16 KiB, one system call), as the server writes its own; and Read
// hands on as many messages as arrived in one read of the socket, so
// that the load's counters and windows move once per read, as over TLS.
func DialWebSocket(ctx context.Context, url string, o WebSocketOptions) (net.Conn, error) {
	tlsCfg := o.TLS.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"}
	var sock *wsSocket
	tr := &http.Transport{
		// The handshake's own connection, so that the bench owns the
		// socket under the WebSocket: its buffer, its cork and the frame
		// count below.
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
	return &wsConn{ws: ws, sock: sock, lines: o.Lines}, nil
}

// wsConn is a WebSocket as a net.Conn of lines or of a stream.
type wsConn struct {
	ws    *websocket.Conn
	sock  *wsSocket
	lines bool

	// Read side, owned by the one reading goroutine.
	buf      []byte // the current message, and its line end
	rest     []byte // what of it Read has not returned yet
	messages uint64 // messages taken from the library
	err      error  // why reading stopped

	wmu sync.Mutex // serialises Write: a reader may answer PING while a sender writes
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
		if c.err != nil || (n > 0 && c.sock.frames.messages <= c.messages) {
			break
		}
		c.readMessage()
	}
	if n == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}

// readMessage reads one whole message into buf.
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
			c.err = errors.New("the server sent a WebSocket frame that is not one line")
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
	ctx := context.Background() // deadlines are the socket's
	c.sock.cork()
	n := 0
	var err error
	if c.lines {
		for rest := p; len(rest) > 0 && err == nil; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line = rest[:i+1]
			}
			rest = rest[len(line):]
			if err = c.ws.Write(ctx, websocket.MessageText, protocol.TrimLine(line)); err == nil {
				n += len(line)
			}
		}
	} else if err = c.ws.Write(ctx, websocket.MessageBinary, p); err == nil {
		n = len(p)
	}
	if ferr := c.sock.uncork(); err == nil && ferr != nil {
		err, n = ferr, 0
	}
	return n, err
}

// Close ends the WebSocket at once: the bench has said END already where
// it had to.
func (c *wsConn) Close() error                       { return c.ws.CloseNow() }
func (c *wsConn) LocalAddr() net.Addr                { return c.sock.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.sock.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.sock.SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.sock.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.sock.SetWriteDeadline(t) }

// wsSocket is the TLS connection under a WebSocket. Writes: while corked
// it gathers what the library writes, frame by frame, and writes it
// whole when uncorked. Reads: it follows the frames in the bytes it
// hands to the library, counting the data messages that arrived whole,
// so the reader can tell whether the library holds another one or would
// wait for the network. The library reads the socket only on the
// goroutine that reads messages, so the count needs no lock.
type wsSocket struct {
	net.Conn
	frames frameCounter

	mu     sync.Mutex // guards corked and out, held across writes to Conn
	corked bool
	out    []byte
}

func (s *wsSocket) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	s.frames.feed(p[:n])
	return n, err
}

func (s *wsSocket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.corked {
		s.out = append(s.out, p...)
		return len(p), nil
	}
	return s.Conn.Write(p)
}

func (s *wsSocket) cork() {
	s.mu.Lock()
	s.corked = true
	s.mu.Unlock()
}

func (s *wsSocket) uncork() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corked = false
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.Conn.Write(s.out)
	s.out = s.out[:0]
	return err
}

// frameCounter follows a WebSocket's incoming bytes from the start of
// the server's HTTP answer: it skips the answer's header, then reads
// each frame's header and skips its payload, and counts the data
// messages (text, binary and continuation frames with FIN set) whose
// last byte has gone by.
type frameCounter struct {
	upgraded bool     // the HTTP answer's header is over
	crlf     int      // how much of "\r\n\r\n" was seen last
	head     [14]byte // the frame header being read
	headLen  int      // bytes of it so far
	payload  uint64   // payload bytes of the current frame still to come
	dataFIN  bool     // the current frame ends a data message
	messages uint64
}

func (f *frameCounter) feed(p []byte) {
	for len(p) > 0 {
		if !f.upgraded {
			p = f.skipHeader(p)
			continue
		}
		if f.payload > 0 {
			k := min(f.payload, uint64(len(p)))
			f.payload -= k
			p = p[k:]
			if f.payload == 0 {
				f.frameDone()
			}
			continue
		}
		f.head[f.headLen] = p[0]
		f.headLen++
		p = p[1:]
		if f.headLen < 2 || f.headLen < frameHeaderLen(f.head[1]) {
			continue
		}
		f.startFrame()
	}
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
			f.upgraded = true
			return p[i+1:]
		}
	}
	return nil
}

// frameHeaderLen is the length of a frame header from its second byte:
// two bytes, the extended length, the mask key.
func frameHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// startFrame takes the header read whole.
func (f *frameCounter) startFrame() {
	h := f.head[:f.headLen]
	f.headLen = 0
	opcode := h[0] & 0x0f
	f.dataFIN = h[0]&0x80 != 0 && opcode <= 2 // continuation, text, binary
	switch n := h[1] & 0x7f; n {
	case 126:
		f.payload = uint64(h[2])<<8 | uint64(h[3])
	case 127:
		f.payload = 0
		for _, b := range h[2:10] {
			f.payload = f.payload<<8 | uint64(b)
		}
	default:
		f.payload = uint64(n)
	}
	if f.payload == 0 {
		f.frameDone()
	}
}

func (f *frameCounter) frameDone() {
	if f.dataFIN {
		f.messages++
	}
}
