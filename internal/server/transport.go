package server

import (
	"crypto/tls"
	"net"
	"time"
)

// Transport is the line transport a session runs over: a TLS socket today,
// a WebSocket later. Reads and writes are of raw protocol bytes; Close must
// end the connection at once, even while a Write is blocked on a peer that
// stopped reading.
type Transport interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
	RemoteAddr() net.Addr
}

// tlsTransport is a server-side TLS connection. Close closes the socket
// underneath: tls.Conn.Close would first wait for a blocked Write to time
// out before sending its close_notify.
type tlsTransport struct {
	*tls.Conn
	raw net.Conn
}

func (t tlsTransport) Close() error { return t.raw.Close() }
