package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Time limits of a server the bench starts: to start listening (it may
// generate a certificate first) and to shut down after SIGTERM.
const (
	childStartTimeout = 30 * time.Second
	childStopTimeout  = 10 * time.Second
)

// child is a "messager serve" the bench started.
type child struct {
	cmd         *exec.Cmd
	dir         string // removed when the child stops
	addr        string
	fingerprint string
	pid         int
	exited      chan struct{} // closed when the process has been waited for
	waitErr     error

	mu   sync.Mutex
	tail []string // last lines of its log, for errors
}

// childTailLines is how many log lines of the server an error quotes.
const childTailLines = 5

// startChild runs exe with args in dir and waits for its JSON log line
// with "msg":"listening", which tells the address and the certificate's
// fingerprint. The rest of its log is read and kept only as a short tail.
func startChild(ctx context.Context, exe string, args []string, dir string) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C at the terminal reaches the
		// bench, which reports and then stops the server, rather than
		// both at once.
		Setpgid: true,
		// A bench killed outright does not leave its server behind.
		Pdeathsig: syscall.SIGTERM,
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	c := &child{cmd: cmd, dir: dir, pid: cmd.Process.Pid, exited: make(chan struct{})}
	listening := make(chan listenLine, 1)
	go func() {
		// Wait closes the pipe, so it must come after the last read.
		c.readLog(stderr, listening)
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	select {
	case l := <-listening:
		c.addr, c.fingerprint = l.Addr, l.Fingerprint
		return c, nil
	case <-c.exited:
		err = fmt.Errorf("server exited before listening (%v)%s", c.waitErr, c.tailText())
	case <-timer.C:
		err = fmt.Errorf("server did not start listening within %s%s", childStartTimeout, c.tailText())
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.stop()
	return nil, err
}

// listenLine is the part of the server's "listening" log line the bench
// needs.
type listenLine struct {
	Msg         string `json:"msg"`
	Addr        string `json:"addr"`
	Fingerprint string `json:"fingerprint"`
}

// readLog reads the server's log until it ends, reporting the listening
// line once. Reading to the end keeps the server from blocking on a full
// pipe.
func (c *child) readLog(r io.Reader, listening chan<- listenLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		if len(c.tail) == childTailLines {
			c.tail = c.tail[1:]
		}
		c.tail = append(c.tail, line)
		c.mu.Unlock()
		if found {
			continue
		}
		var l listenLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" && l.Addr != "" {
			found = true
			listening <- l
		}
	}
	// After an overlong line the scanner gives up; keep draining.
	_, _ = io.Copy(io.Discard, r)
}

func (c *child) tailText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tail) == 0 {
		return ""
	}
	return ":\n  " + strings.Join(c.tail, "\n  ")
}

// stop sends SIGTERM, waits for a graceful exit (SIGKILL after
// childStopTimeout), and removes the child's directory.
func (c *child) stop() error {
	defer os.RemoveAll(c.dir)
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(childStopTimeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		return nil
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return errors.New("server did not exit on SIGTERM; killed it")
	}
}
