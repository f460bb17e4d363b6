package chat_test

import (
	"net"
	"strings"
	"testing"

	"github.com/messager/messager/internal/server/servertest"
)

// TestInteractiveConnectsFirst: a wrong address fails before the user is
// asked for a password.
func TestInteractiveConnectsFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tm := startTerm(t, clientEnv(t), "chat", "--server", addr, "--user", "alice", "--to", "bob")
	if code := tm.exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	tm.out.expect(t, "connect to "+addr)
	if strings.Contains(tm.output(), "password") {
		t.Errorf("asked for a password before connecting:\n%q", tm.output())
	}
}

// TestInteractivePasswordRetry: a wrong password typed on a terminal is
// asked for again, up to three times.
func TestInteractivePasswordRetry(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	args := []string{"chat", "--server", srv.Addr, "--user", "alice", "--fingerprint", srv.Fingerprint, "--to", "bob"}
	prompt := "password for alice@" + srv.Addr + ": "

	t.Run("third time lucky", func(t *testing.T) {
		tm := startTerm(t, clientEnv(t), args...)
		for _, pw := range []string{"wrong", "again"} {
			tm.expect(prompt)
			waitEchoOff(tm.pty)
			tm.send(pw + "\r")
			tm.expect("login refused: incorrect username or password; try again")
		}
		tm.expect(prompt)
		waitEchoOff(tm.pty)
		tm.send("pw1\r")
		tm.expect("logged in to " + srv.Addr + " as alice")
		tm.expect("[to bob] ")
		tm.send("/quit\r")
		if code := tm.exit(); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
	})

	t.Run("three wrong", func(t *testing.T) {
		tm := startTerm(t, clientEnv(t), args...)
		for i := 0; i < 3; i++ {
			tm.expect(prompt)
			waitEchoOff(tm.pty)
			tm.send("wrong\r")
		}
		if code := tm.exit(); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		out := tm.output()
		if n := strings.Count(out, prompt); n != 3 {
			t.Errorf("asked %d times, want 3", n)
		}
		if !strings.Contains(out, "messager: login refused: incorrect username or password\r\n") {
			t.Errorf("no final refusal in %q", out)
		}
	})
}
