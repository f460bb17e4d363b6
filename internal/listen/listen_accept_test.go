package listen_test

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/messager/messager/internal/listen"
	"github.com/messager/messager/internal/server/servertest"
)

// emfileListener fails its first Accepts the way a process out of file
// descriptors does, then accepts for real. A real EMFILE would need the
// whole test process to run out of files.
type emfileListener struct {
	net.Listener
	failures atomic.Int32
	calls    atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptPausesOnEMFILE: when accept fails for want of files, the
// listener pauses (doubling from 5 ms) instead of spinning, logs it at
// most once a second, and serves again once files are back.
func TestAcceptPausesOnEMFILE(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, servertest.Users{"alice": "pw-alice"}, servertest.WithLogs(&logs))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &emfileListener{Listener: inner}
	ln.failures.Store(8)
	go func() { _ = listen.Serve(ln, srv.Server, srv.ServerTLS(), nil) }()
	start := time.Now()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", inner.Addr().String(), srv.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	conn := servertest.NewConn(t, c)
	conn.Send("AUTH alice pw-alice \r\n")
	conn.Expect("ACCEPT alice \r\n")
	// 5+10+20+...+640 ms: the pauses add up to over a second.
	if d := time.Since(start); d < time.Second {
		t.Errorf("served after %v through 8 failed accepts: the listener did not pause", d)
	}
	if n := ln.calls.Load(); n > 10 {
		t.Errorf("%d accepts for 8 failures: spinning", n)
	}
	if n := strings.Count(logs.String(), "accept failed"); n < 1 || n > 3 {
		t.Errorf("%d log lines for 8 failed accepts, want 1 to 3 (at most one a second)", n)
	}
}
