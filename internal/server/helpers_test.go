package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/messager/messager/internal/server/servertest"
)

// lineConn is a raw protocol client: it writes bytes as given and reads
// server lines exactly as sent, terminators included.
type lineConn struct {
	t    testing.TB
	conn *tls.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, srv *servertest.Server) *lineConn {
	t.Helper()
	c := srv.Dial(t)
	return &lineConn{t: t, conn: c, r: bufio.NewReaderSize(c, 16<<10)}
}

// login dials and logs in as user, expecting ACCEPT.
func login(t testing.TB, srv *servertest.Server, user, password string) *lineConn {
	t.Helper()
	c := dial(t, srv)
	c.send("AUTH " + user + " " + password + " \r\n")
	c.expect("ACCEPT " + user + " \r\n")
	return c
}

func (c *lineConn) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", trunc(s), err)
	}
}

// line reads one line, failing the test after a few seconds.
func (c *lineConn) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (got %q)", err, s)
	}
	return s
}

// expect reads the next line that is not CHECK and compares it exactly.
func (c *lineConn) expect(want string) {
	c.t.Helper()
	for {
		got := c.line()
		if got == "CHECK \r\n" && want != got {
			continue
		}
		if got != want {
			c.t.Fatalf("got %q, want %q", trunc(got), trunc(want))
		}
		return
	}
}

// expectClosed expects the server to close the connection (after any
// CHECK lines) within a few seconds.
func (c *lineConn) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open")
			}
			return
		}
		if s != "CHECK \r\n" {
			c.t.Fatalf("got %q, want the connection closed", trunc(s))
		}
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func rawDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
