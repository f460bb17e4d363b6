//go:build unix

package cluster_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/messager/messager/internal/cluster"
	"github.com/messager/messager/internal/server/servertest"
)

// freePort returns a loopback address nobody listens on (for a moment).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestThreeProcesses runs three `messager serve` processes of the built
// binary as one cluster, and a client written in Python logged in to all
// three.
func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "messager")
	build := exec.Command("go", "build", "-o", bin, "github.com/messager/messager/cmd/messager")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	secret := filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(secret, cluster.NewSecret(), 0o600); err != nil {
		t.Fatal(err)
	}
	usersCSV := servertest.UsersCSV(t, servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"})
	var listens, routes []string
	for range 3 {
		listens = append(listens, freePort(t))
		routes = append(routes, freePort(t))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodeLogs []*servertest.Logs
	var procs []*os.Process
	for i := range 3 {
		nd := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.Mkdir(nd, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nd, "user.csv"), []byte(usersCSV), 0o600); err != nil {
			t.Fatal(err)
		}
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, "nats-route://"+r)
			}
		}
		cmd := exec.CommandContext(ctx, bin, "serve", "--listen", listens[i],
			"--users", filepath.Join(nd, "user.csv"), "--cert", filepath.Join(nd, "cert.pem"), "--key", filepath.Join(nd, "key.pem"),
			"--admin-socket", "off", "--no-watch",
			"--cluster-name", "proc", "--node-name", fmt.Sprintf("n%d", i), "--cluster-listen", routes[i],
			"--routes", strings.Join(others, ","), "--cluster-secret", secret)
		logs := &servertest.Logs{}
		cmd.Stderr = logs
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("node n%d:\n%s", i, logs)
			}
		})
		nodeLogs = append(nodeLogs, logs)
		procs = append(procs, cmd.Process)
	}
	// Every node must know the other two before the client logs in.
	for i, logs := range nodeLogs {
		servertest.WaitFor(t, fmt.Sprintf("node n%d to know two others", i), func() bool {
			return strings.Count(logs.String(), "cluster node joined") >= 2
		})
	}
	runPython(t, python, strings.Join(listens, ","))

	// A frozen node (stopped, its sockets open) stalls nobody: the others
	// relay on, and its users are offline elsewhere after the timeout.
	alice := dialLogin(t, listens[0], "alice")
	bob := dialLogin(t, listens[1], "bob")
	dialLogin(t, listens[2], "carol")
	time.Sleep(500 * time.Millisecond) // the logins reach every node
	if err := procs[2].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = procs[2].Signal(syscall.SIGCONT) }()
	frozen := time.Now()
	for i := range 100 {
		alice.Send(fmt.Sprintf("MSG bob alice while n2 sleeps %d\r\n", i))
		alice.Send("MSG carol alice are you there\r\n")
	}
	for i := range 100 {
		bob.Expect(fmt.Sprintf("RELAY bob alice while n2 sleeps %d \r\n", i))
	}
	if d := time.Since(frozen); d > 2*time.Second {
		t.Errorf("messages between the live nodes took %v with one node frozen", d)
	}
	servertest.WaitFor(t, "carol offline on n0", func() bool {
		alice.Send("MSG carol alice still there?\r\n")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(nodeLogs[0].String(), "cluster node gone")
	})
	if d := time.Since(frozen); d > 8*time.Second {
		t.Errorf("the frozen node was noticed after %v", d)
	}
}

// dialLogin logs user in to the server at addr (any certificate) and
// returns the connection.
func dialLogin(t *testing.T, addr, user string) *servertest.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	conn := servertest.NewConn(t, c)
	conn.Send("AUTH " + user + " pw-" + user + " \r\n")
	conn.Expect("ACCEPT " + user + " \r\n")
	return conn
}

func runPython(t *testing.T, python, addrs string) {
	t.Helper()
	// The logins' news takes a moment to reach the other nodes; the
	// client allows for it, and is run again while the cluster settles.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, python, "testdata/cluster_client.py", addrs, "pw-").CombinedOutput()
		cancel()
		if err == nil {
			t.Logf("%s", out)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("python client: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
