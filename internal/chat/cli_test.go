package chat_test

// These tests run the real messager binary against a real server: under a
// pseudo-terminal for the interactive client, with pipes for scripts.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/server/servertest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "messager-chat-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "messager")
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	build := exec.Command(gobin, "build", "-o", binary, "github.com/messager/messager/cmd/messager")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build messager:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var testUsers = servertest.Users{"alice": "pw1", "bob": "pw2", "carol": "pw3"}

// timeout bounds every wait in these tests.
const timeout = 10 * time.Second

// clientEnv returns the environment of a client run: a fresh
// configuration directory, no colour unless asked, and extra variables.
func clientEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"TERM=xterm",
		"NO_COLOR=1",
	}
	return append(env, extra...)
}

// peer logs in as user with the client package and collects what it
// receives.
type peer struct {
	t      *testing.T
	conn   *client.Conn
	events chan client.Event
}

func connectPeer(t *testing.T, srv *servertest.Server, user string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Dial(ctx, srv.Addr, srv.ClientTLS())
	if err != nil {
		t.Fatalf("peer %s: %v", user, err)
	}
	if err := c.Login(ctx, user, testUsers[user]); err != nil {
		t.Fatalf("peer %s: %v", user, err)
	}
	return newPeer(t, c)
}

// newPeer collects what a logged-in connection receives.
func newPeer(t *testing.T, c *client.Conn) *peer {
	p := &peer{t: t, conn: c, events: make(chan client.Event, 1000)}
	go func() {
		defer close(p.events)
		for {
			ev, err := c.Receive()
			if err != nil {
				return
			}
			p.events <- ev
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

// expectRelay waits for a message and checks it.
func (p *peer) expectRelay(from, text string) {
	p.t.Helper()
	select {
	case ev, ok := <-p.events:
		if !ok {
			p.t.Fatalf("peer connection ended, want %s: %s", from, text)
		}
		r, isRelay := ev.(client.Relay)
		if !isRelay || r.From != from || r.Text != text {
			p.t.Fatalf("peer got %#v, want relay %s: %q", ev, from, text)
		}
	case <-time.After(timeout):
		p.t.Fatalf("peer: timed out waiting for %s: %q", from, text)
	}
}

func (p *peer) send(to, text string) {
	p.t.Helper()
	if err := p.conn.Send(to, text); err != nil {
		p.t.Fatalf("peer send: %v", err)
	}
}

// stream collects output and lets a test wait for text in it,
// expect-style: each match moves the search start past it.
type stream struct {
	mu     sync.Mutex
	out    []byte
	mark   int
	more   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newStream() *stream {
	return &stream{more: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (s *stream) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.out = append(s.out, b...)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (s *stream) close() { s.once.Do(func() { close(s.closed) }) }

func (s *stream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.out)
}

func (s *stream) find(want string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := bytes.Index(s.out[s.mark:], []byte(want))
	if i >= 0 {
		s.mark += i + len(want)
	}
	return i >= 0
}

func (s *stream) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(timeout)
	for !s.find(want) {
		select {
		case <-s.more:
		case <-s.closed:
			if !s.find(want) {
				t.Fatalf("output ended without %q", want)
			}
			return
		case <-deadline:
			t.Fatalf("timed out waiting for %q", want)
		}
	}
}

// term is a messager process on a pseudo-terminal.
type term struct {
	t   *testing.T
	cmd *exec.Cmd
	pty *os.File
	out *stream
}

func startTerm(t *testing.T, env []string, args ...string) *term {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatalf("start on a pty: %v", err)
	}
	tm := &term{t: t, cmd: cmd, pty: f, out: newStream()}
	go func() {
		io.Copy(tm.out, f)
		tm.out.close()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			t.Logf("terminal output:\n%q", tm.out.String())
		}
	})
	return tm
}

func (tm *term) output() string { return tm.out.String() }

func (tm *term) expect(s string) {
	tm.t.Helper()
	tm.out.expect(tm.t, s)
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.pty.WriteString(s); err != nil {
		tm.t.Fatalf("write to the terminal: %v", err)
	}
}

// exit waits for the process and returns its exit status, once all it
// wrote has been read from the terminal.
func (tm *term) exit() int {
	tm.t.Helper()
	code := waitExit(tm.t, tm.cmd)
	select {
	case <-tm.out.closed:
	case <-time.After(timeout):
		tm.t.Fatalf("terminal output did not end after the process exited")
	}
	return code
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("process did not exit")
		return -1
	}
}

// proc is a messager process with pipes.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *stream
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	p := &proc{t: t, cmd: cmd, stdout: newStream(), stderr: newStream()}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

func (p *proc) write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil && !errors.Is(err, syscall.EPIPE) {
		// A broken pipe is a command that exited before reading its
		// input (a refused login): its exit status tells the test.
		p.t.Fatalf("write stdin: %v", err)
	}
}

// exit closes stdin and returns the exit status.
func (p *proc) exit() int {
	p.t.Helper()
	p.stdin.Close()
	code := waitExit(p.t, p.cmd)
	p.stdout.close()
	p.stderr.close()
	return code
}

// run runs messager to completion with stdin and returns its exit status,
// stdout and stderr.
func run(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	p := startProc(t, env, args...)
	p.write(stdin)
	code := p.exit()
	return code, p.stdout.String(), p.stderr.String()
}

func TestInteractiveSession(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t)
	tm := startTerm(t, env, "chat", "--server", srv.Addr)

	// Everything missing is asked for: user, trust (the client has
	// connected by then), password (no echo), then the target.
	tm.expect("user: ")
	tm.send("alice\r")
	tm.expect(srv.Fingerprint)
	tm.expect("[y/N] ")
	tm.send("y\r")
	tm.expect("password for alice@" + srv.Addr + ": ")
	if !waitEchoOff(tm.pty) {
		t.Fatal("echo not turned off for the password")
	}
	tm.send("pw1\r")
	tm.expect("logged in to " + srv.Addr + " as alice")
	tm.expect("send to: ")
	tm.send("bob\r")
	tm.expect("[to bob] ")
	if strings.Contains(tm.output(), "pw1") {
		t.Fatal("the password was echoed")
	}
	known, err := os.ReadFile(filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "messager", "known_servers"))
	if err != nil || !strings.Contains(string(known), srv.Addr+" "+srv.Fingerprint) {
		t.Fatalf("known_servers after accepting: %q, %v", known, err)
	}

	tm.send("hello bob\r")
	bob.expectRelay("alice", "hello bob")
	tm.expect("alice → bob: hello bob")

	// A message arrives while a line is half typed: it is shown above,
	// and the half-typed line is redrawn and finished intact.
	tm.send("half typed")
	tm.expect("half typed")
	bob.send("alice", "interrupting you")
	tm.expect("bob: interrupting you")
	tm.expect("[to bob] half typed")
	tm.send(" and finished\r")
	bob.expectRelay("alice", "half typed and finished")

	// History: the up arrow brings back the last line.
	tm.send("\x1b[A\r")
	bob.expectRelay("alice", "half typed and finished")

	tm.send("/help\r")
	tm.expect("/to NAME")
	tm.expect("/quit")

	tm.send("/to carol\r")
	tm.expect("sending to carol")
	tm.expect("[to carol] ")
	tm.send("anyone there?\r")
	tm.expect("* carol is not online")

	tm.send("/to bob\r")
	tm.expect("[to bob] ")
	tm.send("//slash\r")
	bob.expectRelay("alice", "/slash")

	// Three bytes a character: over the byte limit with a third of the
	// keystrokes, since the line editor redraws the line for each one.
	tooLong := strings.Repeat("€", 1370)
	tm.send(tooLong + "\r")
	tm.expect("message not sent: message too long")

	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status after /quit: %d", code)
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestInteractiveColour(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	env = slicesDelete(env, "NO_COLOR=1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob")
	tm.expect("[to bob] ")
	bob.send("alice", "in colour")
	colour := regexp.MustCompile(`\x1b\[\d+mbob\x1b\[0m: in colour`)
	tm.expect("in colour")
	if !colour.MatchString(tm.output()) {
		t.Fatalf("sender not coloured")
	}
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

func slicesDelete(env []string, kv string) []string {
	var out []string
	for _, e := range env {
		if e != kv {
			out = append(out, e)
		}
	}
	return out
}

func TestInteractiveRefusedLogin(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_PASSWORD=wrong")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--user", "alice", "--fingerprint", srv.Fingerprint)
	tm.expect("login refused: incorrect username or password")
	if code := tm.exit(); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
}

func TestInteractiveReconnect(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob")
	tm.expect("[to bob] ")

	srv.Restart()
	tm.expect("connection lost")
	tm.expect("server shutting down")
	tm.expect("reconnected to " + srv.Addr + " as alice")

	bob := connectPeer(t, srv, "bob")
	tm.send("after the restart\r")
	bob.expectRelay("alice", "after the restart")
	bob.send("alice", "welcome back")
	tm.expect("bob: welcome back")

	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

func TestInteractiveLoggedInElsewhere(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob")
	tm.expect("[to bob] ")
	tm.send("half")
	tm.expect("half")
	connectPeer(t, srv, "alice")
	tm.expect("logged in elsewhere")
	if code := tm.exit(); code == 0 {
		t.Fatal("exit status 0 after END <logged in elsewhere>")
	}
	if strings.Contains(tm.output(), "reconnect") {
		t.Fatal("reconnected after END <logged in elsewhere>")
	}
}

// hostileServer is a TLS server that accepts one login and sends lines
// no honest server would relay, then answers END. It returns its address
// and certificate fingerprint.
func hostileServer(t *testing.T, lines ...string) (addr, fingerprint string) {
	t.Helper()
	return fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil { // AUTH
			return
		}
		io.WriteString(c, "ACCEPT alice \r\n")
		for _, l := range lines {
			io.WriteString(c, l)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "END") {
				io.WriteString(c, "END <end accepted> \r\n")
				return
			}
		}
	})
}

func TestHostileTextEscaped(t *testing.T) {
	lines := []string{
		"RELAY alice bob \x1b[2J\x1b[Hcleared? \r\n",
		"RELAY alice bob fake\rmallory: forged \r\n",
		"RELAY alice bob c1 \xc2\x9b31m red \r\n",
		"RELAY alice b\x1b[31mob name too \r\n",
		"NEWTHING from the future \r\n",
		"RELAY alice bob done \r\n",
	}
	wants := []string{`\x1b[2J\x1b[Hcleared?`, `fake\x0dmallory: forged`, `c1 \u009b31m red`, `b\x1b[31mob: name too`}
	raws := []string{"\x1b[2J", "\x1b[H", "\xc2\x9b", "fake\r", "\x1b[31m"}
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")

	t.Run("terminal", func(t *testing.T) {
		addr, fp := hostileServer(t, lines...)
		tm := startTerm(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
		tm.expect("bob: done")
		out := tm.output()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		for _, raw := range raws {
			if strings.Contains(out, raw) {
				t.Errorf("raw %q reached the terminal", raw)
			}
		}
		tm.send("/quit\r")
		if code := tm.exit(); code != 0 {
			t.Fatalf("exit status %d", code)
		}
	})

	t.Run("pipe", func(t *testing.T) {
		addr, fp := hostileServer(t, lines...)
		p := startProc(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
		p.stdout.expect(t, "bob: done\n")
		if code := p.exit(); code != 0 {
			t.Fatalf("exit status %d", code)
		}
		out := p.stdout.String()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		for _, raw := range raws {
			if strings.Contains(out, raw) {
				t.Errorf("raw %q reached stdout", raw)
			}
		}
	})
}

func TestPipe(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_SERVER="+srv.Addr, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--fingerprint", srv.Fingerprint, "--to", "bob")

	// Messages both ways while the pipe is open.
	p.write("first line\n")
	bob.expectRelay("alice", "first line")
	bob.send("alice", "reply with  spaces")
	p.stdout.expect(t, "bob: reply with  spaces\n")

	// A burst, a line too long (reported, not sent) and a CRLF line; END
	// at the end of input waits until the server handled every line.
	var burst strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&burst, "burst %d\n", i)
	}
	burst.WriteString(strings.Repeat("y", 5000) + "\n")
	burst.WriteString("\n")
	burst.WriteString("windows line\r\n")
	burst.WriteString("no newline at the end")
	p.write(burst.String())
	code := p.exit()
	for i := 0; i < 500; i++ {
		bob.expectRelay("alice", fmt.Sprintf("burst %d", i))
	}
	bob.expectRelay("alice", "windows line")
	bob.expectRelay("alice", "no newline at the end")
	if code != 1 {
		t.Errorf("exit status %d with an unsendable line, want 1", code)
	}
	if !strings.Contains(p.stderr.String(), "line 502 not sent: message too long") {
		t.Errorf("stderr does not report the long line: %q", p.stderr.String())
	}
	if strings.Contains(p.stdout.String(), "*") {
		t.Errorf("notices on stdout: %q", p.stdout.String())
	}

	// All lines sent: exit 0; a target not online is a notice on stderr.
	code, stdout, stderr := run(t, env, "one\ntwo\n", "chat", "--fingerprint", srv.Fingerprint, "--to", "bob")
	if code != 0 || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bob.expectRelay("alice", "one")
	bob.expectRelay("alice", "two")
	// A target not online: every line was handled, but not delivered:
	// exit 2, as send does.
	code, _, stderr = run(t, env, "hello?\n", "chat", "--fingerprint", srv.Fingerprint, "--to", "carol")
	if code != 2 || !strings.Contains(stderr, "* carol is not online") {
		t.Errorf("offline target: exit %d, stderr %q", code, stderr)
	}

	// No --to without a terminal is a usage error.
	code, _, stderr = run(t, env, "", "chat", "--fingerprint", srv.Fingerprint)
	if code != 2 || !strings.Contains(stderr, "--to") {
		t.Errorf("no --to: exit %d, stderr %q", code, stderr)
	}
}

func TestPipeJSON(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob", "--json")
	p.write("ping\n")
	bob.expectRelay("alice", "ping")
	bob.send("alice", `quote " and backslash \ and tab	here`)
	bob.send("alice", "second")
	p.stdout.expect(t, "second")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(p.stdout.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q, want two JSON lines", p.stdout.String())
	}
	var m jsonLine
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	if m.Type != "message" || m.From != "bob" || m.To != "alice" || m.Text != `quote " and backslash \ and tab	here` || time.Since(m.Time) > time.Minute {
		t.Errorf("decoded %+v", m)
	}

	// Notices and errors are JSON too, on stdout with the messages.
	p = startProc(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "carol", "--json")
	p.write("anyone?\n")
	p.stdout.expect(t, "not online")
	if code := p.exit(); code != 2 {
		t.Errorf("exit status %d after a line to a target not online, want 2", code)
	}
	if err := json.Unmarshal([]byte(p.stdout.String()), &m); err != nil {
		t.Fatalf("line %q: %v", p.stdout.String(), err)
	}
	if m.Type != "notice" || m.To != "carol" || m.Text != "carol is not online" || time.Since(m.Time) > time.Minute {
		t.Errorf("not-online notice decoded as %+v", m)
	}
	code, stdout, stderr := run(t, env, "fits\n"+strings.Repeat("x", 5000)+"\n", "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob", "--json")
	bob.expectRelay("alice", "fits")
	if code != 1 || stderr != "" {
		t.Errorf("exit status %d, stderr %q after a line too long, want 1 and nothing", code, stderr)
	}
	m = jsonLine{}
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("line %q: %v", stdout, err)
	}
	if m.Type != "error" || m.Line != 2 || !strings.HasPrefix(m.Text, "line 2 not sent: message too long") {
		t.Errorf("error decoded as %+v", m)
	}
}

// jsonLine is any line of pipe mode's JSON output.
type jsonLine struct {
	Type           string
	Time           time.Time
	From, To, Text string
	Line           int
}

func TestSendExitStatus(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_SERVER="+srv.Addr, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	pin := "--fingerprint=" + srv.Fingerprint
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"relayed", env, []string{"send", pin, "--to", "bob", "hello", "there"}, 0, ""},
		{"not online", env, []string{"send", pin, "--to", "carol", "hello"}, 2, "carol is not online"},
		{"to self", env, []string{"send", pin, "--to", "alice", "note to self"}, 0, ""},
		{"wrong password", with(env, "MESSAGER_PASSWORD=nope"), []string{"send", pin, "--to", "bob", "x"}, 1, "login refused: incorrect username or password"},
		{"too long", env, []string{"send", pin, "--to", "bob", strings.Repeat("z", 5000)}, 1, "message too long"},
		{"no server", with(env, "MESSAGER_SERVER=127.0.0.1:1"), []string{"send", pin, "--to", "bob", "x"}, 1, "connect to 127.0.0.1:1"},
		{"no --to", env, []string{"send", pin, "x"}, 2, "--to is required"},
		{"no password", clientEnv(t, "MESSAGER_SERVER="+srv.Addr, "MESSAGER_USER=alice"), []string{"send", pin, "--to", "bob", "x"}, 1, "MESSAGER_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.env, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
	bob.expectRelay("alice", "hello there")
}

func TestTrust(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_SERVER="+srv.Addr, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	known := filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "messager", "known_servers")
	send := func(args ...string) (int, string) {
		t.Helper()
		code, _, stderr := run(t, env, "", append([]string{"send", "--to", "bob"}, append(args, "hi")...)...)
		return code, stderr
	}

	// First use without a terminal: refused, fingerprint shown.
	code, stderr := send()
	if code != 1 || !strings.Contains(stderr, srv.Fingerprint) || !strings.Contains(stderr, "--trust-new") {
		t.Fatalf("unknown server: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(known); err == nil {
		t.Fatal("known_servers written without consent")
	}

	// --trust-new trusts and remembers; afterwards no flag is needed.
	code, stderr = send("--trust-new")
	if code != 0 || !strings.Contains(stderr, "trusting "+srv.Addr+" on first use") {
		t.Fatalf("--trust-new: exit %d, stderr %q", code, stderr)
	}
	st, err := os.Stat(known)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_servers: %v, %v", st, err)
	}
	if code, stderr = send(); code != 0 || stderr != "" {
		t.Fatalf("known server: exit %d, stderr %q", code, stderr)
	}

	// A changed certificate is refused loudly, even with --trust-new.
	other := "sha256:" + strings.Repeat("0f", 32)
	if err := os.WriteFile(known, []byte(srv.Addr+" "+other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr = send("--trust-new")
	if code != 1 || !strings.Contains(stderr, "CHANGED") || !strings.Contains(stderr, other) || !strings.Contains(stderr, srv.Fingerprint) {
		t.Fatalf("changed certificate: exit %d, stderr %q", code, stderr)
	}

	// Pinned: the right fingerprint passes, a wrong one fails with both.
	if code, stderr = send("--fingerprint", srv.Fingerprint); code != 0 {
		t.Fatalf("pinned: exit %d, stderr %q", code, stderr)
	}
	code, stderr = send("--fingerprint", other)
	wantPin := "messager: the certificate fingerprint of " + srv.Addr + " did not match --fingerprint\n" +
		"  expected: " + other + "\n" +
		"  got:      " + srv.Fingerprint + "\n"
	if code != 1 || !strings.HasPrefix(stderr, wantPin) || strings.Contains(stderr, "refused") || strings.Contains(stderr, "connect to") {
		t.Fatalf("wrong pin: exit %d, stderr %q, want it to start %q", code, stderr, wantPin)
	}

	// --ca with the server's certificate.
	if code, stderr = send("--ca", srv.CertFile); code != 0 {
		t.Fatalf("--ca: exit %d, stderr %q", code, stderr)
	}
	otherCert := filepath.Join(t.TempDir(), "other.pem")
	otherPEM, _, _ := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	os.WriteFile(otherCert, otherPEM, 0o644)
	if code, stderr = send("--ca", otherCert); code != 1 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("--ca with another certificate: exit %d, stderr %q", code, stderr)
	}

	// --insecure works and warns every time.
	for i := 0; i < 2; i++ {
		if code, stderr = send("--insecure"); code != 0 || !strings.Contains(stderr, "warning: --insecure") {
			t.Fatalf("--insecure: exit %d, stderr %q", code, stderr)
		}
	}
	if code, stderr = send("--insecure", "--ca", srv.CertFile); code != 1 || !strings.Contains(stderr, "choose one") {
		t.Fatalf("two trust modes: exit %d, stderr %q", code, stderr)
	}
}

func TestTrustPromptRefused(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--to", "bob")
	tm.expect(srv.Fingerprint)
	tm.expect("[y/N] ")
	tm.send("\r")
	tm.expect("server not trusted")
	if code := tm.exit(); code != 1 {
		t.Fatalf("exit status %d", code)
	}
}

// with returns a copy of env with kv added; later entries win.
func with(env []string, kv string) []string {
	return append(append([]string(nil), env...), kv)
}
