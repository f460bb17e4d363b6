// Package web serves messager to browsers on the chat port itself: the
// page (static files embedded in the binary) and a WebSocket at /ws whose
// frames are the lines of the protocol (subprotocol messager.v2). The
// listener hands it the TLS connections that negotiated HTTP/1.1 by ALPN;
// every other connection speaks the line protocol as before. A WebSocket
// session is the same session as a TLS one (same queue, writer, limits,
// throttles, CHECK), over the transport in this package.
package web

import (
	"bufio"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/wsframe"
)

//go:embed static
var static embed.FS

// Options configure the web side.
type Options struct {
	// Origins are the host patterns (as in coder/websocket's
	// OriginPatterns, e.g. "chat.example.org") whose pages may open the
	// WebSocket besides the server's own host; empty means only pages the
	// server itself served.
	Origins []string
	// Fingerprint returns the server certificate's fingerprint, shown on
	// the page so users can compare it with their browser's.
	Fingerprint func() string
	// Version is the server's version, for the page's footer.
	Version string
}

// HTTP timeouts. A WebSocket, once upgraded, is governed by the session's
// own timeouts instead.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Server is the web side of one messager server.
type Server struct {
	srv  *server.Server
	opts Options
	hs   *http.Server
	ln   *connListener
	once sync.Once
}

// New returns the web side of srv. It serves until srv shuts down.
func New(srv *server.Server, opts Options) *Server {
	w := &Server{srv: srv, opts: opts, ln: newConnListener()}
	w.hs = &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(srv.Logger().Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c.(*webConn))
		},
		ConnState: func(c net.Conn, state http.ConnState) {
			if state == http.StateClosed {
				c.(*webConn).done()
			}
		},
	}
	go func() { _ = w.hs.Serve(w.ln) }()
	go func() {
		<-srv.Done()
		w.Close()
	}()
	return w
}

// Close stops serving HTTP; upgraded WebSockets are the server's.
func (w *Server) Close() {
	w.once.Do(func() {
		w.ln.Close()
		_ = w.hs.Close()
	})
}

// ServeConn serves HTTP on a TLS connection the listener admitted (p),
// whose handshake negotiated HTTP/1.1. The connection stays admitted (it
// counts with the server's caps on connections not logged in) until it
// closes or becomes a logged-in WebSocket session.
func (w *Server) ServeConn(tc *tls.Conn, p *server.Pending, first []byte) {
	c := &webConn{Conn: tc, p: p, first: first}
	if !w.ln.push(c) {
		p.Release()
		tc.Close()
	}
}

// webConn is an admitted connection served as HTTP, and then maybe the
// socket under a WebSocket.
type webConn struct {
	net.Conn // the TLS connection
	p        *server.Pending
	first    []byte      // read already by the listener; only the HTTP server reads
	upgraded atomic.Bool // the WebSocket took the admission over
	finished atomic.Bool // the admission was given back

	// From the upgrade on: the frames in what is read, and the library's
	// read buffer. Only the goroutine reading the WebSocket touches these.
	counting bool
	frames   wsframe.Counter // what the library has been given
	br       *bufio.Reader

	// wmu serialises writes to Conn and guards what follows: a control
	// frame the library writes (a pong) goes out before or after a batch
	// of frames, never inside it.
	wmu       sync.Mutex
	framing   bool // upgraded: each write of the library's is one whole frame
	closeSent bool // the library wrote a close frame: no data frame may follow
}

// Read returns the bytes the listener read first, then the connection's,
// following the frames in them once the connection is a WebSocket.
func (c *webConn) Read(b []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(b, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	n, err := c.Conn.Read(b)
	if c.counting {
		c.frames.Feed(b[:n])
	}
	return n, err
}

// opClose is the opcode of a close frame.
const opClose = 0x8

// Write is how HTTP writes, and then the library. The library's writes
// on a WebSocket are control frames (data frames are the transport's),
// each whole in one call: it flushes every frame it writes, and a
// control frame is shorter than its buffer.
func (c *webConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.framing && len(b) > 0 && b[0]&0x0f == opClose {
		c.closeSent = true
	}
	return c.Conn.Write(b)
}

// writeFrames writes a batch of data frames, unless the library has
// closed the WebSocket with a close frame.
func (c *webConn) writeFrames(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	_, err := c.Conn.Write(b)
	return err
}

// startFraming is called when the library takes the connection over:
// what HTTP read ahead of the upgrade's end (br holds it) is frames
// already, and so is everything read from here on.
func (c *webConn) startFraming(br *bufio.Reader) {
	ahead, _ := br.Peek(br.Buffered())
	c.frames.Feed(ahead)
	c.counting = true
	c.br = br
	c.wmu.Lock()
	c.framing = true
	c.wmu.Unlock()
}

// upgrader is the HTTP answer of a WebSocket upgrade. It passes the
// library the connection when the library hijacks it, and starts
// following the frames.
type upgrader struct {
	http.ResponseWriter
	c *webConn
}

// Hijack implements http.Hijacker, which the library needs.
func (u upgrader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err == nil {
		u.c.startFraming(brw.Reader)
	}
	return conn, brw, err
}

// done gives the admission back when HTTP is done with the connection,
// unless its WebSocket took it over.
func (c *webConn) done() {
	if !c.upgraded.Load() && c.finished.CompareAndSwap(false, true) {
		c.p.Release()
	}
}

type connKey struct{}

// Handler is the web side's HTTP handler: the page, /info and /ws.
func (w *Server) Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /info", w.info)
	mux.HandleFunc("GET /ws", w.ws)
	return securityHeaders(mux)
}

// securityHeaders sets what every answer carries: the page may load only
// from this server, may not be framed, and sends no referrer.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(rw, r)
	})
}

// info tells the page what it shows about the server.
func (w *Server) info(rw http.ResponseWriter, _ *http.Request) {
	fp := ""
	if w.opts.Fingerprint != nil {
		fp = w.opts.Fingerprint()
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(rw).Encode(map[string]string{"fingerprint": fp, "version": w.opts.Version})
}

// ws upgrades to a WebSocket and runs a login, then a session, over it.
// The Origin must be this server's host or an allowed one, so no other
// site's page can open it; there are no cookies or tokens to forge: the
// login is the AUTH line.
func (w *Server) ws(rw http.ResponseWriter, r *http.Request) {
	c, ok := r.Context().Value(connKey{}).(*webConn)
	if !ok {
		http.Error(rw, "no connection", http.StatusInternalServerError)
		return
	}
	ws, err := upgrade(rw, r, c, w.opts.Origins)
	if err != nil {
		w.srv.LogLimited(slog.LevelInfo, "websocket refused", "websocket refused", "remote", r.RemoteAddr, "err", err)
		return // Accept has answered
	}
	// The connection is the WebSocket's now: HTTP will not report it
	// closed, so the admission is given back or passed on here.
	c.upgraded.Store(true)
	if !c.finished.CompareAndSwap(false, true) {
		_ = ws.CloseNow()
		return
	}
	if ws.Subprotocol() != Subprotocol {
		c.p.Release()
		_ = ws.Close(websocket.StatusPolicyViolation, "subprotocol "+Subprotocol+" required")
		return
	}
	// The socket's deadline bounds the login; the session clears it
	// through the transport, whose deadlines are the socket's.
	c.p.Renew()
	c.p.Serve(newTransport(ws, c))
}

// upgrade answers a WebSocket upgrade on c. The library checks the
// Origin (the server's own host, or one of origins) and agrees to the
// subprotocol if the client offers it.
func upgrade(rw http.ResponseWriter, r *http.Request, c *webConn, origins []string) (*websocket.Conn, error) {
	return websocket.Accept(upgrader{rw, c}, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: origins,
	})
}

// connListener hands connections to the HTTP server one at a time.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }
