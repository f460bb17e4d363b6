package servertest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Conn is a raw protocol client: it writes bytes as given and reads
// server lines exactly as sent, terminators included. Every wait fails the
// test after a few seconds.
type Conn struct {
	// Conn is the TLS connection.
	Conn *tls.Conn
	// R reads from Conn.
	R *bufio.Reader
	t testing.TB
}

// NewConn wraps an established TLS connection.
func NewConn(t testing.TB, c *tls.Conn) *Conn {
	return &Conn{t: t, Conn: c, R: bufio.NewReaderSize(c, 16<<10)}
}

// DialConn opens a raw protocol connection to the server.
func (s *Server) DialConn(t testing.TB) *Conn { return NewConn(t, s.Dial(t)) }

// Login dials and logs in as user, expecting ACCEPT.
func (s *Server) Login(t testing.TB, user, password string) *Conn {
	t.Helper()
	c := s.DialConn(t)
	c.Send("AUTH " + user + " " + password + " \r\n")
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}

// Send writes s as it is.
func (c *Conn) Send(s string) {
	c.t.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("send %q: %v", Trunc(s), err)
	}
}

// Line reads one line.
func (c *Conn) Line() string {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.R.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (got %q)", err, s)
	}
	return s
}

// Expect reads the next line that is not CHECK and compares it exactly.
func (c *Conn) Expect(want string) {
	c.t.Helper()
	for {
		got := c.Line()
		if got == "CHECK \r\n" && want != got {
			continue
		}
		if got != want {
			c.t.Fatalf("got %q, want %q", Trunc(got), Trunc(want))
		}
		return
	}
}

// ExpectClosed expects the server to close the connection (after any
// CHECK lines).
func (c *Conn) ExpectClosed() {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		s, err := c.R.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open")
			}
			return
		}
		if s != "CHECK \r\n" {
			c.t.Fatalf("got %q, want the connection closed", Trunc(s))
		}
	}
}

// Trunc shortens s for a test message.
func Trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// WithT returns a copy of c that reports to t, for use in a subtest or a
// fuzz iteration.
func (c *Conn) WithT(t testing.TB) *Conn {
	cc := *c
	cc.t = t
	return &cc
}
