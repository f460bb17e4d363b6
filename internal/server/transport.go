package server

import (
	"net"
	"time"
)

// Transport is the line transport a session runs over: a TLS socket, a
// WebSocket message stream. Reads and writes are of raw protocol bytes.
// Close must end the connection at once, even while a Write is blocked on
// a peer that stopped reading, and a Read after Close (or blocked when it
// is called) must fail at once. SetReadDeadline must work from any
// goroutine: it is how a session closed by someone else stops its reader.
// Write must neither change p nor keep it after it returns: a group's
// messages are one buffer that many sessions' writers write at once.
type Transport interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
	RemoteAddr() net.Addr
}
