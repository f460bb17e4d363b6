package web

import (
	"bytes"
	"context"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/protocol"
)

// Subprotocol is the WebSocket subprotocol of the line protocol: one text
// frame is one protocol line without its line end, both ways.
const Subprotocol = "messager.v2"

// maxFrame bounds a frame the server reads. A frame longer than a line
// may be is still read whole, so that the session can answer it with
// END * <line too long>; one longer than this closes the WebSocket at
// once (close status 1009), as the frame is not kept in memory.
const maxFrame = 64 << 10

// transport is a WebSocket as a line transport (server.Transport). A
// goroutine reads frames and turns each into a line for the session's
// line reader; Write sends each line of a batch as its own frame, all of
// them in one write to the socket. Reads have deadlines of their own, so
// a session closed by someone else stops reading at once, without the
// WebSocket being torn down before its END is written.
type transport struct {
	c      *websocket.Conn
	cork   *corkConn
	remote net.Addr

	lines   chan []byte   // frames as lines, from the frame reader
	readErr error         // why the frame reader stopped; set before lines is closed
	closed  chan struct{} // closed by Close
	once    sync.Once

	rest []byte // what is left of the current line; only Read touches it
	rdl  deadline

	wmu sync.Mutex // guards wdl and serialises Write
	wdl time.Time
}

func newTransport(c *websocket.Conn, cork *corkConn, remote net.Addr) *transport {
	t := &transport{c: c, cork: cork, remote: remote, lines: make(chan []byte, 16), closed: make(chan struct{}), rdl: newDeadline()}
	c.SetReadLimit(maxFrame)
	go t.readFrames()
	return t
}

// badLine stands for a frame that is not a line (binary, or holding a
// line end): a control character, which the session answers with
// END * <incorrect protocol>.
var badLine = []byte{0, '\n'}

func (t *transport) readFrames() {
	defer close(t.lines)
	for {
		typ, data, err := t.c.Read(context.Background())
		if err != nil {
			t.readErr = err
			return
		}
		line := badLine
		if typ == websocket.MessageText && !bytes.ContainsAny(data, "\r\n") {
			line = append(data, '\n')
		}
		select {
		case t.lines <- line:
		case <-t.closed:
			t.readErr = net.ErrClosed
			return
		}
	}
}

// Read returns the bytes of the next lines.
func (t *transport) Read(p []byte) (int, error) {
	if len(t.rest) == 0 {
		select {
		case line, ok := <-t.lines:
			if !ok {
				return 0, t.readErr
			}
			t.rest = line
		case <-t.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-t.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, t.rest)
	t.rest = t.rest[n:]
	return n, nil
}

// Write sends each line of p (lines end in "\r\n", after a space in the
// seed shape) as a text frame without its line end, in one write to the
// socket.
func (t *transport) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	ctx := context.Background()
	if !t.wdl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, t.wdl)
		defer cancel()
	}
	t.cork.cork()
	var err error
	n := 0
	for rest := p; len(rest) > 0 && err == nil; {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i+1], rest[i+1:]
		}
		err = t.c.Write(ctx, websocket.MessageText, protocol.TrimLine(line))
		if err == nil {
			n += len(line)
		}
	}
	if ferr := t.cork.uncork(); err == nil {
		err = ferr
	}
	return n, err
}

func (t *transport) SetReadDeadline(d time.Time) error {
	t.rdl.set(d)
	return nil
}

func (t *transport) SetWriteDeadline(d time.Time) error {
	t.wmu.Lock()
	t.wdl = d
	t.wmu.Unlock()
	return nil
}

// Close ends the WebSocket at once, without a closing handshake: the
// session has written its END already, if it had one.
func (t *transport) Close() error {
	t.once.Do(func() {
		close(t.closed)
		_ = t.c.CloseNow()
	})
	return nil
}

func (t *transport) RemoteAddr() net.Addr { return t.remote }

// deadline is a settable read deadline: a channel closed once it passes.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func newDeadline() deadline { return deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the old timer fired: wait for it to close ch
	}
	d.timer = nil
	closed := isClosed(d.ch)
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.ch = make(chan struct{})
		}
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.ch)
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// corkConn is the socket under a WebSocket: while corked it gathers what
// is written, so a batch of frames leaves in one write (one TLS record
// and one system call rather than one per line). Writes to the socket
// are serialised by its lock, so a control frame written by the frame
// reader (a pong) never lands inside a batch's bytes.
type corkConn struct {
	net.Conn
	mu     sync.Mutex // guards corked and buf, and is held across writes to Conn
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 64<<10 {
		c.buf = nil // a burst's buffer is not kept
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
