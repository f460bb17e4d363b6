//go:build unix

package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer collects a server's log; the server writes it from its
// connections' goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the lines of the log that contain all of words.
func (l *logBuffer) lines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		match := line != ""
		for _, w := range words {
			match = match && strings.Contains(line, w)
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}

// socketPath is a socket's path in a new private directory.
func socketPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), SocketName)
	if len(p) > maxSocketPath {
		t.Fatalf("test socket path %s is too long for a Unix socket", p)
	}
	return p
}

// startServer serves a fake controller on a new socket, with lim.
func startServer(t *testing.T, lim limits) (*Server, *fakeController, *logBuffer) {
	t.Helper()
	f := newFakeController()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := listen(socketPath(t), f, log, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, f, logs
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a connection that sends lines as given.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, path string) *rawConn {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// call sends line and returns the answer line, without its "\n".
func (c *rawConn) call(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	answer, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("answer to %q: %v", line, err)
	}
	return strings.TrimSuffix(answer, "\n")
}

// closed checks that the server closes the connection without another
// word.
func (c *rawConn) closed() {
	c.t.Helper()
	rest, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("connection not closed by the server: %v", err)
	}
	if len(rest) > 0 {
		c.t.Fatalf("the server sent %q before closing", rest)
	}
}

func TestListenRefusesDirWritableByOthers(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		want string
	}{
		{0o770, "can be written by group (mode 0770), who could replace the socket: run chmod g-w "},
		{0o707, "can be written by others (mode 0707), who could replace the socket: run chmod o-w "},
		{0o777, "can be written by group and others (mode 0777)"},
		{0o1777 | fs.ModeSticky, "can be written by group and others (mode 0777)"}, // as /tmp
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.Chmod(dir, tt.mode); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, SocketName)
		_, err := Listen(path, newFakeController(), nil)
		if err == nil {
			t.Fatalf("mode %v: Listen succeeded", tt.mode)
		}
		want := "admin socket " + path + ": directory " + dir + " " + tt.want
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("mode %v: error\n%q, want it to start with\n%q", tt.mode, err, want)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("mode %v: a socket was made: %v", tt.mode, err)
		}
	}
}

func TestCheckDirOwner(t *testing.T) {
	dir := t.TempDir()
	if err := checkDir(dir, os.Getuid()); err != nil {
		t.Fatalf("own private directory refused: %v", err)
	}
	err := checkDir(dir, os.Getuid()+1)
	want := "directory " + dir + " belongs to uid " + strconv.Itoa(os.Getuid()) + ", not to uid " + strconv.Itoa(os.Getuid()+1) + " who runs the server"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("directory of another user: got %v, want %q", err, want)
	}
	err = checkDir(filepath.Join(dir, "missing"), os.Getuid())
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("missing directory: got %v", err)
	}
}

func TestSocketMode(t *testing.T) {
	path := socketPath(t)
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	s, err := Listen(path, newFakeController(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := syscall.Umask(0o002); got != 0o002 {
		t.Errorf("umask after Listen is %04o, want it restored to 0002", got)
	}
	fi, err := os.Lstat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket has mode %v, want a socket of mode 0600", fi.Mode())
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := socketPath(t)
	// A server that crashed leaves its socket, and nobody answers on it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	s, err := Listen(path, newFakeController(), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()
	if _, err := dial(t, path).Bans(); err != nil {
		t.Fatal(err)
	}
	if len(logs.lines("removed a stale admin socket", path)) != 1 {
		t.Errorf("removal not logged:\n%s", logs)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	s, _, _ := startServer(t, defaultLimits)
	_, err := Listen(s.Path(), newFakeController(), nil)
	want := "admin socket: another server is listening on " + s.Path()
	if err == nil || err.Error() != want {
		t.Fatalf("second Listen: got %v, want %q", err, want)
	}
	// The first server still serves, on its own socket.
	if _, err := dial(t, s.Path()).Bans(); err != nil {
		t.Fatal(err)
	}

	// Any listener, not only an admin server.
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(path, newFakeController(), nil); err == nil || !strings.Contains(err.Error(), "another server is listening on") {
		t.Fatalf("Listen over a live listener: got %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub, link} {
		_, err := Listen(path, newFakeController(), nil)
		want := "admin socket: " + path + " exists and is not a socket; not replacing it"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Listen at %s: got %v, want %q", path, err, want)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious\n" {
		t.Errorf("file changed: %q, %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("symbolic link changed: %v, %v", fi, err)
	}
}

func TestListenPathTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("s", maxSocketPath)+".sock")
	if _, err := Listen(path, newFakeController(), nil); err == nil || !strings.Contains(err.Error(), "bytes long") {
		t.Errorf("Listen: got %v", err)
	}
	if _, err := Dial(path); err == nil || !strings.Contains(err.Error(), "bytes long") {
		t.Errorf("Dial: got %v", err)
	}
}

func TestCloseRemovesSocket(t *testing.T) {
	s, err := Listen(socketPath(t), newFakeController(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Path())
	if _, err := c.Bans(); err != nil {
		t.Fatal(err)
	}
	// Close ends the open connection too, instead of waiting for it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := c.Bans(); err == nil {
		t.Error("call after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseLeavesReplacedSocket(t *testing.T) {
	s, err := Listen(socketPath(t), newFakeController(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed the socket and another server made its own.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(s.Path()); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("Close removed the other server's socket: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	s, f, _ := startServer(t, defaultLimits)
	c := dial(t, s.Path())
	now := f.now
	check := func(what string, got, want any, wantCalls ...string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got\n%#v, want\n%#v", what, got, want)
		}
		if calls := f.Calls(); !reflect.DeepEqual(calls, wantCalls) {
			t.Errorf("%s: the controller was called %q, want %q", what, calls, wantCalls)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	all, err := c.Sessions("")
	must(err)
	bob := f.sessions[1]
	bob.Groups = []string{} // never null on the wire
	check("sessions", all, []Session{f.sessions[0], bob}, `sessions ""`)
	one, err := c.Sessions("bob")
	must(err)
	check("sessions of bob", one, []Session{bob}, `sessions "bob"`)
	none, err := c.Sessions("carol")
	must(err)
	check("sessions of carol", none, []Session{}, `sessions "carol"`)

	kicked, err := c.Kick("bob", "spam & eggs")
	must(err)
	check("kick", kicked, true, `kick "bob" "spam & eggs"`)
	kicked, err = c.Kick("bob", "")
	must(err)
	check("kick again", kicked, false, `kick "bob" ""`)

	b, err := c.Ban("10.0.0.0/8", time.Hour, "flood")
	must(err)
	check("ban a network", b, Ban{Target: "10.0.0.0/8", Until: now.Add(time.Hour), Created: now, Reason: "flood"},
		`ban "10.0.0.0/8" 1h0m0s "flood"`)
	b, err = c.Ban("alice", 0, "")
	must(err)
	check("ban a user", b, Ban{Target: "alice", User: true, Created: now, Sessions: 1}, `ban "alice" 0s ""`)
	b, err = c.Ban("::ffff:192.0.2.7", 90*time.Second, "")
	must(err)
	check("ban a mapped address", b.Target, "192.0.2.7", `ban "192.0.2.7" 1m30s ""`)
	bans, err := c.Bans()
	must(err)
	check("bans", len(bans), 3, "bans")
	found, err := c.Unban("10.0.0.0/8")
	must(err)
	check("unban", found, true, `unban "10.0.0.0/8"`)
	found, err = c.Unban("::ffff:10.0.0.0/104")
	must(err)
	check("unban again", found, false, `unban "10.0.0.0/8"`)

	text := "hello <all> & \"friends\"\t¡olé! \\o/"
	n, err := c.Notice("", text)
	must(err)
	check("notice to everyone", n, 1, `notice "" "hello <all> & \"friends\"\t¡olé! \\o/"`)
	n, err = c.Notice("#ops", "x")
	must(err)
	check("notice to a group", n, 1, `notice "#ops" "x"`)
	_, err = c.Notice("#nope", "x")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeFailed || e.Message != "no such group" {
		t.Errorf("notice to a missing group: got %#v", err)
	}
	f.Calls()

	token, inv, err := c.Invite(3, 48*time.Hour)
	must(err)
	check("invite", []any{token, inv}, []any{"SECRET-TOKEN-1", Invite{ID: "inv1", Uses: 3, Expires: now.Add(48 * time.Hour), Created: now}},
		"invite 3 48h0m0s")
	invites, err := c.Invites()
	must(err)
	check("invites", invites, []Invite{inv}, "invites")
	must(c.Uninvite("inv1"))
	check("uninvite", nil, nil, `uninvite "inv1"`)
	err = c.Uninvite("inv1")
	if !errors.As(err, &e) || e.Code != CodeFailed || e.Message != `no invite "inv1"` {
		t.Errorf("uninvite again: got %#v", err)
	}
	f.Calls()
	invites, err = c.Invites()
	must(err)
	check("no invites", invites, []Invite{}, "invites")

	r, err := c.Reload()
	must(err)
	check("reload", r, f.reload, "reload")
	groups, err := c.Groups()
	must(err)
	check("groups", groups, f.groups, "groups")
}

// TestWireFormat pins the lines of the protocol.
func TestWireFormat(t *testing.T) {
	s, f, _ := startServer(t, defaultLimits)
	f.reload.Errors = nil
	c := dialRaw(t, s.Path())
	tests := []struct{ request, response string }{
		{`{"v":1,"cmd":"kick","user":"bob","reason":"spam"}`, `{"v":1,"ok":true,"result":{"kicked":true}}`},
		{`{"v":1,"cmd":"kick","user":"bob"}`, `{"v":1,"ok":false,"error":"bob is not online","code":"not-online"}`},
		{`{"v":1,"cmd":"sessions","user":"alice"}`, `{"v":1,"ok":true,"result":{"sessions":[{"user":"alice","remote":"192.0.2.1:50000","since":"2026-03-01T11:00:00Z","version":2,"queued_bytes":10,"groups":["#ops","#team"]}]}}`},
		{`{"v":1,"cmd":"bans"}`, `{"v":1,"ok":true,"result":{"bans":[]}}`},
		{`{"v":1,"cmd":"ban","target":"2001:db8::/32","for":"2h"}`,
			`{"v":1,"ok":true,"result":{"ban":{"target":"2001:db8::/32","user":false,"until":"2026-03-01T14:00:00Z","created":"2026-03-01T12:00:00Z","reason":"","sessions":0}}}`},
		{`{"v":1,"cmd":"ban","target":"carol"}`, `{"v":1,"ok":true,"result":{"ban":{"target":"carol","user":true,"created":"2026-03-01T12:00:00Z","reason":"","sessions":0}}}`},
		{`{"v":1,"cmd":"unban","target":"dave"}`, `{"v":1,"ok":false,"error":"no ban on dave","code":"not-banned"}`},
		{`{"v":1,"cmd":"notice","to":"alice","text":"a < b & c"}`, `{"v":1,"ok":true,"result":{"sessions":1}}`},
		{`{"v":1,"cmd":"invite","uses":1,"ttl":"24h"}`, `{"v":1,"ok":true,"result":{"token":"SECRET-TOKEN-1","invite":{"id":"inv1","uses":1,"expires":"2026-03-02T12:00:00Z","created":"2026-03-01T12:00:00Z"}}}`},
		{`{"v":1,"cmd":"uninvite","id":"inv1"}`, `{"v":1,"ok":true,"result":{}}`},
		{`{"v":1,"cmd":"reload"}`, `{"v":1,"ok":true,"result":{"reload":{"users":2,"groups":1,"bans":0,"fingerprint":"sha256:abcd","errors":[]}}}`},
		{`{"v":1,"cmd":"groups"}`, `{"v":1,"ok":true,"result":{"groups":[{"name":"#ops","members":1,"listed":true},{"name":"#team","members":1,"listed":false}]}}`},
		{`{"v":1,"cmd":"frobnicate"}`, `{"v":1,"ok":false,"error":"unknown command \"frobnicate\"","code":"unknown-command"}`},
	}
	for _, tt := range tests {
		if got := c.call(tt.request + "\n"); got != tt.response {
			t.Errorf("%s\nanswered %s\nwant     %s", tt.request, got, tt.response)
		}
	}
}

func TestBadRequests(t *testing.T) {
	s, f, logs := startServer(t, defaultLimits)
	c := dialRaw(t, s.Path())
	tests := []struct{ request, code, message string }{
		{`{"v":1,"cmd":"frobnicate"}`, CodeUnknownCommand, `unknown command "frobnicate"`},
		{`{"v":1,"cmd":`, CodeBadRequest, "malformed request: unexpected end of JSON input"},
		{`not json`, CodeBadRequest, "malformed request: invalid character 'o' in literal null (expecting 'u')"},
		{``, CodeBadRequest, "malformed request: unexpected end of JSON input"},
		{`[]`, CodeBadRequest, "malformed request: cannot unmarshal array into Go value of type struct"},
		{`{"v":1,"cmd":"bans"} {"v":1,"cmd":"bans"}`, CodeBadRequest, "malformed request: invalid character '{' after top-level value"},
		{`{"cmd":"bans"}`, CodeVersion, `request has no protocol version (want "v":1)`},
		{`{"v":2,"cmd":"bans","since":"yesterday"}`, CodeVersion, "protocol version 2 is not supported (this server speaks version 1)"},
		{`{"v":"1","cmd":"bans"}`, CodeBadRequest, "malformed request: cannot unmarshal string into Go struct field"},
		{`{"v":1}`, CodeBadRequest, `request has no "cmd"`},
		{`{"v":1,"cmd":"bans","usr":"bob"}`, CodeBadRequest, `malformed request: unknown field "usr"`},
		{`{"v":1,"cmd":"bans","user":"bob"}`, CodeBadRequest, `bans takes no "user"`},
		{`{"v":1,"cmd":"kick","user":"bob","text":"hi"}`, CodeBadRequest, `kick takes no "text"`},
		{`{"v":1,"cmd":"kick"}`, CodeBadRequest, `invalid user name "": want 1 to 32 of A-Z a-z 0-9 _ . -`},
		{`{"v":1,"cmd":"kick","user":"bad name"}`, CodeBadRequest, `invalid user name "bad name"`},
		{`{"v":1,"cmd":"kick","user":"bob","reason":"a\nb"}`, CodeBadRequest, "a reason must be one line of text without control characters, '<' or '>'"},
		{`{"v":1,"cmd":"kick","user":"bob","reason":"<b>"}`, CodeBadRequest, "a reason must be one line"},
		{`{"v":1,"cmd":"kick","user":"bob","reason":"` + strings.Repeat("x", MaxReasonLen+1) + `"}`, CodeBadRequest, "reason is 201 bytes long, longer than 200"},
		{`{"v":1,"cmd":"sessions","user":"a/b"}`, CodeBadRequest, `invalid user name "a/b"`},
		{`{"v":1,"cmd":"ban"}`, CodeBadRequest, `empty target (want a user name, an IP address or a CIDR prefix)`},
		{`{"v":1,"cmd":"ban","target":"10.0.0.0/33"}`, CodeBadRequest, `invalid CIDR prefix "10.0.0.0/33"`},
		{`{"v":1,"cmd":"ban","target":"10.1.2.3/8"}`, CodeBadRequest, `prefix "10.1.2.3/8" has bits set past its length (did you mean 10.0.0.0/8, or the single address 10.1.2.3?)`},
		{`{"v":1,"cmd":"ban","target":"fe80::1%eth0"}`, CodeBadRequest, `address "fe80::1%eth0" has a zone`},
		{`{"v":1,"cmd":"ban","target":"bob","for":"soon"}`, CodeBadRequest, `bad "for" "soon": want a duration such as 90m or 12h`},
		{`{"v":1,"cmd":"ban","target":"bob","for":"-1h"}`, CodeBadRequest, `bad "for" "-1h": a duration cannot be negative`},
		{`{"v":1,"cmd":"unban","target":"bad name"}`, CodeBadRequest, `invalid target "bad name"`},
		{`{"v":1,"cmd":"notice"}`, CodeBadRequest, "a notice needs text"},
		{`{"v":1,"cmd":"notice","text":"   "}`, CodeBadRequest, "a notice needs text"},
		{`{"v":1,"cmd":"notice","text":"a\u0000b"}`, CodeBadRequest, "a notice must be one line of text without control characters"},
		{`{"v":1,"cmd":"notice","text":"a\r\nb"}`, CodeBadRequest, "a notice must be one line"},
		{`{"v":1,"cmd":"notice","text":"` + strings.Repeat("x", MaxNoticeLen+1) + `"}`, CodeBadRequest, "notice is 8143 bytes long, longer than the 8142 that fit in a line"},
		{`{"v":1,"cmd":"notice","to":"#","text":"x"}`, CodeBadRequest, `invalid group name "#"`},
		{`{"v":1,"cmd":"notice","to":"a b","text":"x"}`, CodeBadRequest, `invalid user name "a b"`},
		{`{"v":1,"cmd":"invite","ttl":"1h"}`, CodeBadRequest, "an invite allows 1 to 1000000 uses, not 0"},
		{`{"v":1,"cmd":"invite","uses":-1,"ttl":"1h"}`, CodeBadRequest, "an invite allows 1 to 1000000 uses, not -1"},
		{`{"v":1,"cmd":"invite","uses":1}`, CodeBadRequest, `an invite needs a "ttl" longer than 0`},
		{`{"v":1,"cmd":"invite","uses":1,"ttl":"0s"}`, CodeBadRequest, `an invite needs a "ttl"`},
		{`{"v":1,"cmd":"uninvite"}`, CodeBadRequest, `invalid invite ID ""`},
		{`{"v":1,"cmd":"uninvite","id":"a b"}`, CodeBadRequest, `invalid invite ID "a b": want printable ASCII without spaces`},
	}
	for _, tt := range tests {
		var resp response
		if err := json.Unmarshal([]byte(c.call(tt.request+"\n")), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.V != Version || resp.OK || resp.Code != tt.code || !strings.HasPrefix(resp.Error, tt.message) || resp.Result != nil {
			t.Errorf("%.80s\nanswered %+v\nwant code %s, error %q", tt.request, resp, tt.code, tt.message)
		}
	}
	if calls := f.Calls(); len(calls) > 0 {
		t.Errorf("bad requests reached the controller: %q", calls)
	}
	// The connection still serves, and every refusal was logged.
	if got := c.call(`{"v":1,"cmd":"bans"}` + "\n"); got != `{"v":1,"ok":true,"result":{"bans":[]}}` {
		t.Errorf("after bad requests: %s", got)
	}
	refused := len(logs.lines("admin request refused")) + len(logs.lines("admin command failed"))
	if refused != len(tests) {
		t.Errorf("%d refusals logged, want %d:\n%s", refused, len(tests), logs)
	}
}

func TestOverlongLine(t *testing.T) {
	lim := defaultLimits
	lim.maxLine = 1024
	s, f, logs := startServer(t, lim)

	// A line of exactly the limit, "\n" included, is read.
	c := dialRaw(t, s.Path())
	req := `{"v":1,"cmd":"bans"}`
	if got := c.call(req + strings.Repeat(" ", lim.maxLine-len(req)-1) + "\n"); got != `{"v":1,"ok":true,"result":{"bans":[]}}` {
		t.Errorf("line of the limit: %s", got)
	}
	// One byte more is refused, and the connection closed.
	got := c.call(req + strings.Repeat(" ", lim.maxLine-len(req)) + "\n")
	if want := `{"v":1,"ok":false,"error":"request line longer than 1024 bytes","code":"line-too-long"}`; got != want {
		t.Errorf("overlong line: %s, want %s", got, want)
	}
	c.closed()

	// Through the client, whose connection then stays broken.
	cl := dial(t, s.Path())
	_, err := cl.Notice("", strings.Repeat("x", 2000))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeLineTooLong {
		t.Errorf("client's overlong notice: %v", err)
	}
	if _, err := cl.Bans(); !errors.As(err, &e) || e.Code != CodeLineTooLong {
		t.Errorf("call after the overlong line: %v", err)
	}
	if calls := f.Calls(); !reflect.DeepEqual(calls, []string{"bans"}) {
		t.Errorf("calls: %q", calls)
	}
	if n := len(logs.lines("admin request refused", "request line longer than 1024 bytes")); n != 2 {
		t.Errorf("%d overlong lines logged, want 2:\n%s", n, logs)
	}
}

func TestTimeouts(t *testing.T) {
	lim := defaultLimits
	lim.idle = 50 * time.Millisecond
	lim.read = 50 * time.Millisecond
	s, _, logs := startServer(t, lim)

	idle := dialRaw(t, s.Path())
	idle.call(`{"v":1,"cmd":"bans"}` + "\n")
	idle.closed()
	if len(logs.lines("admin connection closed: idle")) != 1 {
		t.Errorf("idle connection not logged:\n%s", logs)
	}

	slow := dialRaw(t, s.Path())
	if _, err := io.WriteString(slow.conn, `{"v":1,`); err != nil {
		t.Fatal(err)
	}
	slow.closed()
	if len(logs.lines("admin connection closed: request line not sent in time")) != 1 {
		t.Errorf("slow request not logged:\n%s", logs)
	}
}

func TestConnectionCap(t *testing.T) {
	lim := defaultLimits
	lim.maxConns = 2
	s, _, logs := startServer(t, lim)
	first, second := dial(t, s.Path()), dial(t, s.Path())
	for _, c := range []*Client{first, second} {
		if _, err := c.Bans(); err != nil { // served, so counted
			t.Fatal(err)
		}
	}
	third := dial(t, s.Path())
	_, err := third.Bans()
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBusy || e.Message != "too many admin connections (at most 2)" {
		t.Fatalf("third connection: got %v", err)
	}
	if len(logs.lines("admin connection refused: too many connections")) != 1 {
		t.Errorf("refusal not logged:\n%s", logs)
	}
	// A connection that ends makes room.
	first.Close()
	for {
		c, err := Dial(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Bans()
		c.Close()
		if err == nil {
			break
		}
		if !errors.As(err, &e) || e.Code != CodeBusy {
			t.Fatal(err)
		}
		runtime.Gosched() // the server has yet to see first's end
	}
}

func TestControllerPanic(t *testing.T) {
	s, f, logs := startServer(t, defaultLimits)
	f.panicky = true
	c := dial(t, s.Path())
	_, err := c.Groups()
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal || e.Message != "internal error" {
		t.Fatalf("panicking command: got %v", err)
	}
	if len(logs.lines("level=ERROR", "admin command panicked", "groups are broken")) != 1 {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if _, err := c.Bans(); err != nil {
		t.Errorf("after the panic: %v", err)
	}
}

func TestControllerError(t *testing.T) {
	s, f, logs := startServer(t, defaultLimits)
	f.fail = errors.New("ban file: permission denied")
	_, err := dial(t, s.Path()).Ban("bob", 0, "")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeFailed || e.Message != "ban file: permission denied" {
		t.Fatalf("got %#v", err)
	}
	if len(logs.lines("admin command failed", "cmd=ban", "target=bob", `error="ban file: permission denied"`)) != 1 {
		t.Errorf("failure not logged:\n%s", logs)
	}
}

func TestNoServer(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, SocketName)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	for _, path := range []string{missing, stale} {
		_, err := Dial(path)
		if !errors.Is(err, ErrNoServer) {
			t.Errorf("Dial %s: got %v, want ErrNoServer", path, err)
			continue
		}
		if want := "no server is listening on " + path + " (is messager serve running? see --admin-socket)"; err.Error() != want {
			t.Errorf("Dial %s:\n%q, want\n%q", path, err, want)
		}
	}
}

func TestLogPeerAndAction(t *testing.T) {
	s, _, logs := startServer(t, defaultLimits)
	c := dial(t, s.Path())
	if _, err := c.Kick("alice", "spam"); err != nil {
		t.Fatal(err)
	}
	const text = "the secret words of a notice"
	if _, err := c.Notice("", text); err != nil {
		t.Fatal(err)
	}
	token, _, err := c.Invite(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	who := "uid=unknown"
	if runtime.GOOS == "linux" {
		who = "uid=" + strconv.Itoa(os.Getuid()) + " pid=" + strconv.Itoa(os.Getpid())
	}
	for _, want := range [][]string{
		{"admin connection", who},
		{"admin command", who, "cmd=kick", "user=alice", "reason=spam"},
		{"admin command", who, "cmd=notice", `to=""`, "bytes=28", "sessions=1"},
		{"admin command", who, "cmd=invite", "uses=1", "ttl=1h0m0s", "id=inv1"},
	} {
		if n := len(logs.lines(want...)); n != 1 {
			t.Errorf("%d log lines with %q, want 1", n, want)
		}
	}
	if n := len(logs.lines("admin command")); n != 3 {
		t.Errorf("%d actions logged, want 3:\n%s", n, logs)
	}
	if l := logs.String(); strings.Contains(l, text) || strings.Contains(l, token) || strings.Contains(l, "secret") {
		t.Errorf("the log holds a notice's text or an invite's token:\n%s", l)
	}
}

func TestClientConcurrent(t *testing.T) {
	s, _, _ := startServer(t, defaultLimits)
	c := dial(t, s.Path())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if list, err := c.Sessions(""); err != nil || len(list) != 2 {
					t.Errorf("sessions: %v, %v", list, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
