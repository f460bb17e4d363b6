// Package listen brings a messager server its TLS connections: it accepts
// on a listener, admits each connection (the server's caps apply before
// any handshake), completes the TLS handshake under the login deadline,
// and hands the server the line transport on top. The server itself
// knows nothing of TLS.
package listen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/messager/messager/internal/server"
)

// TLSConfig returns base hardened for the chat listener: TLS 1.2 at
// least, TLS 1.2 offered with AEAD suites only (no CBC, so nothing of
// LUCKY13 and its kin; TLS 1.3 suites are all AEAD and not configurable),
// and large records, which cost less per byte (a chat relay has no first
// paint to hurry).
func TLSConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.CipherSuites == nil {
		c.CipherSuites = AEADSuites
	}
	c.DynamicRecordSizingDisabled = true
	return c
}

// AEADSuites are the TLS 1.2 suites the listener offers: forward secrecy
// and authenticated encryption only.
var AEADSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// HTTP serves the connections that negotiate HTTP/1.1 by ALPN: the web
// side of the server.
type HTTP interface {
	// ServeConn serves c, whose first bytes, already read, are first.
	ServeConn(c *tls.Conn, p *server.Pending, first []byte)
}

// Serve accepts connections on ln for srv until srv shuts down, when it
// closes ln and returns nil; any other accept error it cannot wait out
// is returned. config is used as TLSConfig(config) makes it. When web is
// not nil, connections that negotiate HTTP/1.1 by ALPN (every browser
// does) go to it; the rest (the seed's client, messager's, scripts: none
// of them sends ALPN) speak the line protocol.
func Serve(ln net.Listener, srv *server.Server, config *tls.Config, web HTTP) error {
	config = TLSConfig(config)
	if web != nil {
		config.NextProtos = []string{"http/1.1"}
	}
	var closing sync.Once
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-srv.Done():
			closing.Do(func() { ln.Close() })
		case <-stop:
		}
	}()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-srv.Done():
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: stop accepting
				// for a moment, then go on, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.LogLimited(slog.LevelWarn, "accept", "accept failed; pausing", "err", err, "pause", backoff)
				select {
				case <-time.After(backoff):
				case <-srv.Done():
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		p := srv.Admit(conn)
		if p == nil {
			continue
		}
		go serveConn(conn, p, config, web)
	}
}

// serveConn completes the handshake of an admitted connection and hands
// it to the server, or to the web side.
func serveConn(raw net.Conn, p *server.Pending, config *tls.Config, web HTTP) {
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3})
	}
	tc := tls.Server(raw, config)
	// The handshake is bounded by the connection's deadline, which
	// Shutdown shortens, but not cancelled by Shutdown: a client that
	// finished its side must be able to read why it is closed.
	if err := tc.Handshake(); err != nil {
		p.Abandon(err)
		return
	}
	if web == nil || p.Refusing() {
		p.Serve(&Transport{Conn: tc, raw: raw})
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == "http/1.1" {
		web.ServeConn(tc, p, nil)
		return
	}
	// No ALPN: a line client, or an HTTP client that does not send ALPN
	// (Go's own for a WebSocket upgrade, some scripts). Both speak first;
	// an HTTP request starts with a method no protocol line starts with.
	first := make([]byte, len(httpGet))
	n, err := io.ReadFull(tc, first)
	first = first[:n]
	if err == nil && string(first) == httpGet {
		web.ServeConn(tc, p, first)
		return
	}
	p.Serve(&Transport{Conn: tc, raw: raw, first: first})
}

// httpGet is how an HTTP request for a page or a WebSocket starts.
const httpGet = "GET "

// Transport is a server-side TLS connection as a line transport. Close
// closes the socket underneath: tls.Conn.Close would first wait for a
// blocked Write to time out before sending its close_notify.
type Transport struct {
	*tls.Conn
	raw   net.Conn
	first []byte // read already, to tell a line client from an HTTP one
}

// Read returns the bytes read first, then the connection's.
func (t *Transport) Read(p []byte) (int, error) {
	if len(t.first) > 0 {
		n := copy(p, t.first)
		t.first = t.first[n:]
		return n, nil
	}
	return t.Conn.Read(p)
}

// Close closes the socket at once.
func (t *Transport) Close() error { return t.raw.Close() }

// Finish ends the connection after everything written to it has reached
// the peer: it ends the stream towards the peer, waits until the system
// holds nothing more to send on it (or the peer is gone, or finishWait
// passes), and closes. Closing a socket that holds unread input makes the
// system answer with a reset and throw away what it had not yet sent: the
// end of a queue and its END line, to a client that was still sending
// when the server stopped reading it (a shutdown, a replaced session).
func (t *Transport) Finish() error {
	if tcp, ok := t.raw.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
		waitSent(tcp, finishWait)
	}
	return t.raw.Close()
}

// finishWait bounds how long Finish waits for written bytes to reach the
// peer: a peer that stopped reading gets no longer.
const finishWait = 500 * time.Millisecond
