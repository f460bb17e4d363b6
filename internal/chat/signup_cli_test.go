package chat_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// startSignupServer starts a server on which users may sign up in mode,
// with the accounts made as "messager serve" makes them.
func startSignupServer(t *testing.T, mode server.SignupMode) (*servertest.Server, *operator.Operator) {
	t.Helper()
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.Signup = mode })
	dir := filepath.Dir(srv.UsersFile)
	op, err := operator.New(srv.Server, operator.Config{
		UsersFile:   srv.UsersFile,
		BansFile:    filepath.Join(dir, "bans.csv"),
		InvitesFile: filepath.Join(dir, "invites.csv"),
		Reloader:    reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Server.SetAccounts(op)
	return srv, op
}

// typePassword types a password once the terminal stopped echoing.
func (tm *term) typePassword(prompt, password string) {
	tm.t.Helper()
	tm.expect(prompt)
	if !waitEchoOff(tm.pty) {
		tm.t.Fatal("echo not turned off for the password")
	}
	tm.send(password + "\r")
}

// checkLogin logs in as user with the client package.
func checkLogin(t *testing.T, srv *servertest.Server, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS()}
	c, err := d.Login(ctx, user, password)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	c.Close()
}

// TestInteractiveSignup: messager signup on a terminal asks for the name
// and the password twice, without echo; a taken name is explained and
// another asked for, the password kept.
func TestInteractiveSignup(t *testing.T) {
	srv, _ := startSignupServer(t, server.SignupOpen)
	tm := startTerm(t, clientEnv(t), "signup", "--server", srv.Addr, "--fingerprint", srv.Fingerprint)
	tm.expect("name for the new account: ")
	tm.send("alice\r")
	prompt := "new password for alice@" + srv.Addr + ": "
	// Passwords that differ, then one too short, are asked for again.
	tm.typePassword(prompt, "correct-horse")
	tm.typePassword("the same password again: ", "correct-hoarse")
	tm.expect("messager: the passwords differ; try again")
	tm.typePassword(prompt, "short")
	tm.expect("messager: the password is too short: a new account needs at least 8 bytes")
	tm.typePassword(prompt, "correct-horse")
	tm.typePassword("the same password again: ", "correct-horse")

	tm.expect("messager: sign-up refused: username already taken; choose another name (names that differ only in case are the same)")
	tm.expect("name for the new account: ")
	tm.send("dave\r")
	tm.expect("signed up as dave on " + srv.Addr + "; log in with: messager chat --server " + srv.Addr + " --user dave")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	out := tm.output()
	if strings.Contains(out, "correct-horse") || strings.Contains(out, "short\r") {
		t.Fatalf("a password was echoed:\n%q", out)
	}
	if strings.Count(out, "new password for") != 3 {
		t.Errorf("the password was asked for again after the TRY:\n%q", out)
	}
	checkLogin(t, srv, "dave", "correct-horse")
}

// TestInteractiveChatSignup: a refused login on a server that signs up
// by invite offers to make the account; the invite and the password are
// asked for, and the chat goes on logged in as the new account.
func TestInteractiveChatSignup(t *testing.T) {
	srv, op := startSignupServer(t, server.SignupInvite)
	token, _, err := op.Invite(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob := connectPeer(t, srv, "bob")
	tm := startTerm(t, clientEnv(t), "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--user", "dave", "--to", "bob")
	tm.typePassword("password for dave@"+srv.Addr+": ", "guess1")
	tm.expect("messager: login refused: incorrect username or password\r\n")
	tm.expect("no account dave here? sign up? [y/N] ")
	tm.send("y\r")
	tm.expect("invite from the server's operator: ")
	tm.send(token + "\r")
	tm.typePassword("new password for dave@"+srv.Addr+": ", "correct-horse")
	tm.typePassword("the same password again: ", "correct-horse")
	tm.expect("signed up as dave on " + srv.Addr)
	tm.expect("logged in to " + srv.Addr + " as dave")
	tm.expect("[to bob] ")
	tm.send("hi bob, I am new\r")
	bob.expectRelay("dave", "hi bob, I am new")
	bob.send("dave", "welcome")
	tm.expect("bob: welcome")

	tm.send("/help\r")
	tm.expect("/signup")
	tm.send("/signup\r")
	tm.expect("logged in as dave already")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if strings.Contains(tm.output(), "correct-horse") {
		t.Fatalf("a password was echoed:\n%q", tm.output())
	}
	checkLogin(t, srv, "dave", "correct-horse")
}

// TestInteractiveChatSignupCommand: /signup at chat's user prompt asks
// for the new account's name, and declining the offer after a refused
// login asks for the password again.
func TestInteractiveChatSignupCommand(t *testing.T) {
	srv, _ := startSignupServer(t, server.SignupOpen)

	t.Run("at the user prompt", func(t *testing.T) {
		tm := startTerm(t, clientEnv(t), "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint)
		tm.expect("user: ")
		tm.send("/signup\r")
		tm.expect("name for the new account: ")
		tm.send("erin\r")
		tm.typePassword("new password for erin@"+srv.Addr+": ", "battery-staple")
		tm.typePassword("the same password again: ", "battery-staple")
		tm.expect("signed up as erin on " + srv.Addr)
		tm.expect("logged in to " + srv.Addr + " as erin")
		tm.expect("send to: ")
		tm.send("/quit\r")
		if code := tm.exit(); code != 0 {
			t.Fatalf("exit status %d, want 0", code)
		}
	})

	t.Run("declined, then at the password prompt", func(t *testing.T) {
		tm := startTerm(t, clientEnv(t), "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--user", "frank", "--to", "bob")
		prompt := "password for frank@" + srv.Addr + ": "
		tm.typePassword(prompt, "guess1")
		tm.expect("no account frank here? sign up? [y/N] ")
		tm.send("\r")
		tm.typePassword(prompt, "/signup")
		tm.typePassword("new password for frank@"+srv.Addr+": ", "battery-staple")
		tm.typePassword("the same password again: ", "battery-staple")
		tm.expect("logged in to " + srv.Addr + " as frank")
		tm.send("/quit\r")
		if code := tm.exit(); code != 0 {
			t.Fatalf("exit status %d, want 0", code)
		}
	})
}
