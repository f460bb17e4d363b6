package chat_test

// These tests run the messager binary with several servers in --server,
// the nodes of one service: real servers over TLS on 127.0.0.1, each with
// its own certificate, and dead addresses (closed ports).

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/server/servertest"
)

// deadAddr is an address on 127.0.0.1 where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// untouchable listens and counts the connections it gets, closing them
// at once: a node the client must not try.
func untouchable(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

func list(addrs ...string) string { return strings.Join(addrs, ",") }

// TestPipeReconnectsToOtherServer: the server of a pipe session shuts
// down; the client reconnects to the next server of the list and the
// session goes on there, both ways.
func TestPipeReconnectsToOtherServer(t *testing.T) {
	a := servertest.Start(t, testUsers)
	b := servertest.Start(t, testUsers)
	bobA := connectPeer(t, a, "bob")
	bobB := connectPeer(t, b, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--server", list(a.Addr, b.Addr), "--fingerprint", list(a.Fingerprint, b.Fingerprint), "--to", "bob")

	p.write("on a\n")
	bobA.expectRelay("alice", "on a")
	a.Stop()
	p.stderr.expect(t, "* connection lost: server ended the session: server shutting down; reconnecting\n")
	p.stderr.expect(t, "* reconnected to "+b.Addr+" as alice\n")
	p.write("on b\n")
	bobB.expectRelay("alice", "on b")
	bobB.send("alice", "hello from b")
	p.stdout.expect(t, "bob: hello from b\n")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	// b came first in the round: nothing was passed over.
	if strings.Contains(p.stderr.String(), "connect to") {
		t.Errorf("stderr %q", p.stderr.String())
	}
}

// TestPipeJSONServers: in JSON, the servers a reconnection passed over,
// with why, and the server it reached are notices.
func TestPipeJSONServers(t *testing.T) {
	dead := deadAddr(t)
	a := servertest.Start(t, testUsers)
	b := servertest.Start(t, testUsers)
	bobB := connectPeer(t, b, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	// The session starts on a; after a, the round is dead (passed
	// over), then b.
	p := startProc(t, env, "chat", "--server", list(a.Addr, dead, b.Addr), "--fingerprint", list(a.Fingerprint, b.Fingerprint),
		"--to", "bob", "--json")
	// Logged in once the server answers a line.
	p.write("to nobody yet\n")
	p.stdout.expect(t, `"type":"notice"`)
	a.Stop()
	p.stdout.expect(t, "reconnected to "+b.Addr+" as alice")
	p.write("on b\n")
	bobB.expectRelay("alice", "on b")
	if code := p.exit(); code != 2 {
		// The first line's target was not online on a.
		t.Fatalf("exit status %d, want 2", code)
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
		var m jsonLine
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if m.Type == "notice" {
			texts = append(texts, m.Text)
		}
	}
	want := []string{
		"bob is not online",
		"connection lost: server ended the session: server shutting down; reconnecting",
		"connect to " + dead + ": ",
		"reconnected to " + b.Addr + " as alice",
	}
	if len(texts) != len(want) {
		t.Fatalf("notices %q, want %q", texts, want)
	}
	for i := range want {
		if !strings.HasPrefix(texts[i], want[i]) {
			t.Errorf("notice %d is %q, want it to start %q", i, texts[i], want[i])
		}
	}
	if !strings.HasSuffix(texts[2], "; trying "+b.Addr) {
		t.Errorf("notice %q does not say what comes next", texts[2])
	}
	if p.stderr.String() != "" {
		t.Errorf("stderr %q", p.stderr.String())
	}
}

// TestPipeTrustEachServer: with --trust-new each server is trusted on
// first use under its own address, the one reached by a reconnection too,
// whose notice is a notice of the session.
func TestPipeTrustEachServer(t *testing.T) {
	a := servertest.Start(t, testUsers)
	b := servertest.Start(t, testUsers)
	connectPeer(t, b, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--server", list(a.Addr, b.Addr), "--trust-new", "--to", "alice")
	p.stderr.expect(t, "messager: trusting "+a.Addr+" on first use, certificate fingerprint "+a.Fingerprint)
	p.write("note to self\n")
	p.stdout.expect(t, "alice: note to self\n")
	a.Stop()
	p.stderr.expect(t, "* trusting "+b.Addr+" on first use, certificate fingerprint "+b.Fingerprint)
	p.stderr.expect(t, "* reconnected to "+b.Addr+" as alice\n")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	known, err := os.ReadFile(filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "messager", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*servertest.Server{a, b} {
		if !strings.Contains(string(known), srv.Addr+" "+srv.Fingerprint+"\n") {
			t.Errorf("known_servers lacks %s: %q", srv.Addr, known)
		}
	}
}

// TestLoggedInElsewhereFinalWithServers: END <logged in elsewhere> ends
// the session for good; the other server is not tried.
func TestLoggedInElsewhereFinalWithServers(t *testing.T) {
	a := servertest.Start(t, testUsers)
	other, accepted := untouchable(t)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--server", list(a.Addr, other), "--fingerprint", a.Fingerprint, "--to", "bob")
	p.write("hi\n")
	p.stderr.expect(t, "* bob is not online\n")
	connectPeer(t, a, "alice")
	p.stderr.expect(t, "logged in elsewhere")
	if code := p.exit(); code == 0 {
		t.Fatal("exit status 0 after END <logged in elsewhere>")
	}
	if strings.Contains(p.stderr.String(), "reconnect") || accepted.Load() != 0 {
		t.Fatalf("tried again: %d connections to the other server, stderr %q", accepted.Load(), p.stderr.String())
	}
}

// TestAlreadyOnlineFinalWithServers: the original server's
// END <user already online> is final: the next server is not tried.
func TestAlreadyOnlineFinalWithServers(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	seedPeer(t, s, "alice")
	other, accepted := untouchable(t)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	code, _, stderr := run(t, env, "hi\n", "chat", "--server", list(s.Addr, other), "--fingerprint", s.Fingerprint, "--to", "bob")
	if code != 1 || stderr != "messager: login refused: user already online\n" || accepted.Load() != 0 {
		t.Fatalf("exit %d, stderr %q, %d connections to the other server", code, stderr, accepted.Load())
	}
}

// TestInteractiveServers: on a terminal, a dead first address is told
// before the session; when the server goes away the client reconnects to
// the next one, names it, and the session goes on there.
func TestInteractiveServers(t *testing.T) {
	dead := deadAddr(t)
	a := servertest.Start(t, testUsers)
	b := servertest.Start(t, testUsers)
	bobB := connectPeer(t, b, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", list(dead, a.Addr, b.Addr), "--fingerprint", list(a.Fingerprint, b.Fingerprint), "--to", "bob")
	tm.expect("messager: connect to " + dead + ": ")
	tm.expect("; trying " + a.Addr)
	tm.expect("logged in to " + a.Addr + " as alice")
	tm.expect("[to bob] ")

	a.Stop()
	tm.expect("connection lost")
	tm.expect("reconnected to " + b.Addr + " as alice")
	tm.send("on b\r")
	bobB.expectRelay("alice", "on b")
	bobB.send("alice", "welcome to b")
	tm.expect("bob: welcome to b")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if n := strings.Count(tm.output(), "connect to "+dead); n != 1 {
		t.Errorf("the dead address told %d times", n)
	}
}

// TestInteractiveTrustNextServer: on a terminal, the server reached
// after a dead one is new: the client asks whether to trust it, then for
// the password for that server.
func TestInteractiveTrustNextServer(t *testing.T) {
	dead := deadAddr(t)
	a := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice")
	tm := startTerm(t, env, "chat", "--server", list(dead, a.Addr), "--to", "bob")
	tm.expect("; trying " + a.Addr)
	tm.expect("the server " + a.Addr + " is not known yet")
	tm.expect(a.Fingerprint)
	tm.expect("[y/N] ")
	tm.send("y\r")
	tm.typePassword("password for alice@"+a.Addr+": ", "pw1")
	tm.expect("logged in to " + a.Addr + " as alice")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	known, err := os.ReadFile(filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "messager", "known_servers"))
	if err != nil || !strings.Contains(string(known), a.Addr+" "+a.Fingerprint+"\n") {
		t.Fatalf("known_servers: %q, %v", known, err)
	}
}

// TestLoginElsewhereWhenFull: a server that takes the connection but is
// full at the login is passed over for the next one, at the start too.
func TestLoginElsewhereWhenFull(t *testing.T) {
	full, fullPin := fakeServerHello(t, "HELLO 2 \r\n", func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil { // AUTH
			return
		}
		io.WriteString(c, "END <server full> \r\n")
	})
	a := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	code, stdout, stderr := run(t, env, "note\n", "chat", "--server", list(full, a.Addr), "--fingerprint", list(fullPin, a.Fingerprint), "--to", "alice")
	want := "messager: " + full + ": login refused: server full; trying the other servers\n"
	if code != 0 || stdout != "alice: note\n" || stderr != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0, the note, %q", code, stdout, stderr, want)
	}
}

// TestPipeUnknownServerOnReconnect: the server a reconnection reaches is
// not known, and without a terminal the client may not ask: it is
// passed over, explained once however many rounds fail, and the client
// keeps trying, with waits, for the known one to come back.
func TestPipeUnknownServerOnReconnect(t *testing.T) {
	a := servertest.Start(t, testUsers)
	b := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	dir := filepath.Join(envValue(env, "XDG_CONFIG_HOME"), "messager")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_servers"), []byte(a.Addr+" "+a.Fingerprint+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, env, "chat", "--server", list(a.Addr, b.Addr), "--to", "alice")
	p.write("note\n")
	p.stdout.expect(t, "alice: note\n")
	a.Stop()
	p.stderr.expect(t, "* server "+b.Addr+" is not known yet; its certificate fingerprint is "+b.Fingerprint+"\n* compare it")
	p.stderr.expect(t, "--fingerprint; trying "+a.Addr+"\n")
	p.stderr.expect(t, "* connect to "+a.Addr+": ")
	p.stderr.expect(t, "* no server could be used; trying again in ")
	p.stderr.expect(t, "* no server could be used; trying again in ")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	out := p.stderr.String()
	if n := strings.Count(out, "is not known yet"); n != 1 {
		t.Errorf("the unknown server told %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "* connect to "+a.Addr); n != 1 {
		t.Errorf("the dead server told %d times:\n%s", n, out)
	}
}
