package server_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/messager/messager/internal/server/servertest"
)

// lineConn is a raw protocol client (see servertest.Conn).
type lineConn = servertest.Conn

func dial(t testing.TB, srv *servertest.Server) *lineConn { return srv.DialConn(t) }

// login dials and logs in as user, expecting ACCEPT.
func login(t testing.TB, srv *servertest.Server, user, password string) *lineConn {
	return srv.Login(t, user, password)
}

func trunc(s string) string { return servertest.Trunc(s) }

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
