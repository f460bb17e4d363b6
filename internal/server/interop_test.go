package server_test

import (
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// TestInteropPython runs a client written in another language from the
// protocol page alone against a real server.
func TestInteropPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.CheckInterval = 100 * time.Millisecond })
	host, port, _ := net.SplitHostPort(srv.Addr)
	cmd := exec.Command(python, "testdata/interop_client.py", host, port)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
