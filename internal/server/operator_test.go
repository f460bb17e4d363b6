package server_test

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

// banList is a BanList of fixed users and prefixes.
type banList struct {
	users    map[string]bool
	prefixes []netip.Prefix
}

func (b *banList) UserBanned(u string) bool { return b.users[u] }
func (b *banList) AddrBanned(a netip.Addr) bool {
	for _, p := range b.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestKick(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	if srv.Server.Kick("nobody") {
		t.Error("kicked a user who is not online")
	}
	if !srv.Server.Kick("alice") {
		t.Fatal("alice not kicked")
	}
	alice.Expect("END <kicked> \r\n")
	alice.ExpectClosed()
	login(t, srv, "alice", "pw-alice") // a kick is not a ban
}

// TestNotice: notices reach version-1 and version-2 sessions in the same
// RELAY form, from "server", to everyone, one user, or a group.
func TestNotice(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob, carol := loginV2(t, srv, "bob"), loginV2(t, srv, "carol")
	joinAll(t, "#team", []string{"bob", "carol"}, []*lineConn{bob, carol})
	if n, err := srv.Server.Notice("", "restart in 5 minutes"); err != nil || n != 3 {
		t.Fatalf("notice to all: %d, %v", n, err)
	}
	alice.Expect("RELAY alice server restart in 5 minutes \r\n")
	bob.Expect("RELAY bob server restart in 5 minutes \r\n")
	carol.Expect("RELAY carol server restart in 5 minutes \r\n")
	if n, err := srv.Server.Notice("alice", "just you"); err != nil || n != 1 {
		t.Fatalf("notice to alice: %d, %v", n, err)
	}
	alice.Expect("RELAY alice server just you \r\n")
	if n, err := srv.Server.Notice("#TEAM", "team notice"); err != nil || n != 2 {
		t.Fatalf("notice to #team: %d, %v", n, err)
	}
	bob.Expect("RELAY bob server team notice \r\n")
	carol.Expect("RELAY carol server team notice \r\n")
	marker(alice, "alice", "nothing else")
	for _, tc := range []struct{ to, text string }{{"dave", "x"}, {"#none", "x"}, {"", ""}, {"", "bell\a"}, {"", strings.Repeat("x", 5000)}} {
		if _, err := srv.Server.Notice(tc.to, tc.text); err == nil {
			t.Errorf("Notice(%q, %q) succeeded", tc.to, servertest.Trunc(tc.text))
		}
	}
}

// TestBans: a banned address is refused at its first line, before any
// password check; a banned user only after a right password; live
// sessions of the banned end with END <banned>.
func TestBans(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := loginV2(t, srv, "bob")
	if n := srv.Server.SetBans(&banList{users: map[string]bool{"alice": true}}); n != 1 {
		t.Fatalf("SetBans ended %d sessions, want 1", n)
	}
	alice.Expect("END <banned> \r\n")
	alice.ExpectClosed()
	marker(bob, "bob", "still here")
	c := dial(t, srv)
	c.Send("AUTH alice wrong \r\n")
	c.Expect("END <incorrect username or password> \r\n")
	c = dial(t, srv)
	c.Send("AUTH alice pw-alice \r\n")
	c.Expect("END <banned> \r\n")

	failed := srv.Server.Stats().LoginsFailed.Load()
	srv.Server.SetBans(&banList{prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	bob.Expect("END <banned> \r\n")
	for _, first := range []string{"AUTH carol wrong", "HELLO 2", "END"} {
		c := dial(t, srv)
		c.Send(first + " \r\n")
		c.Expect("END <banned> \r\n")
		c.ExpectClosed()
	}
	if n := srv.Server.Stats().LoginsFailed.Load(); n != failed {
		t.Errorf("a banned address's login was checked: failed logins %d, was %d", n, failed)
	}
	srv.Server.SetBans(nil)
	login(t, srv, "alice", "pw-alice")
}

// accounts makes accounts in a real user file and reloads the server's
// table, as the glue does; invites are a fixed set of single-use words.
type accounts struct {
	srv     *servertest.Server
	mu      sync.Mutex
	invites map[string]bool
}

func (a *accounts) Create(name string, password []byte, invite string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if invite != "" {
		if !a.invites[invite] {
			return server.ErrInvalidInvite
		}
	}
	if err := users.Add(a.srv.UsersFile, name, password); err != nil {
		return err
	}
	delete(a.invites, invite)
	t, err := users.Load(a.srv.UsersFile)
	if err != nil {
		return err
	}
	a.srv.Server.SetUsers(t)
	return nil
}

func startSignup(t *testing.T, mode server.SignupMode, perAddr int) *servertest.Server {
	t.Helper()
	acc := &accounts{invites: map[string]bool{"inv-one": true, "inv-two": true}}
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.Signup, c.Accounts, c.SignupsPerAddr = mode, acc, perAddr
	})
	acc.srv = srv
	return srv
}

func TestSignup(t *testing.T) {
	srv := startSignup(t, server.SignupInvite, 10)
	c := dial(t, srv)
	c.Send("HELLO 2 \r\n")
	c.Expect("HELLO 2 presence=100 groups=20,500 signup=invite \r\n")
	c.Send("PUT b@d password1 inv-one \r\nPUT server password1 inv-one \r\nPUT erin short inv-one \r\n")
	c.Expect("TRY <invalid name> \r\n")
	c.Expect("TRY <reserved name> \r\n")
	c.Expect("TRY <password too short> \r\n")
	c.Expect("END <too many attempts> \r\n")
	c.ExpectClosed()

	c = dial(t, srv)
	c.Send("HELLO 2 \r\nPUT erin password1 \r\nPUT erin password1 nope \r\nPUT ALICE password1 inv-one \r\n")
	c.Expect("HELLO 2 presence=100 groups=20,500 signup=invite \r\n")
	c.Expect("TRY <invite required> \r\n")
	c.Expect("TRY <invalid invite> \r\n")
	c.Expect("TRY <username already taken> \r\n")
	c.Expect("END <too many attempts> \r\n")

	c = loginHello(t, srv)
	c.Send("PUT erin password1 inv-one \r\n")
	c.Expect("ACCEPT erin \r\n")
	marker(c, "erin", "a session like any other")
	// The invite is used up; the account is there for the next login.
	d := loginHello(t, srv)
	d.Send("PUT frank password1 inv-one \r\n")
	d.Expect("TRY <invalid invite> \r\n")
	login(t, srv, "erin", "password1")
}

func loginHello(t *testing.T, srv *servertest.Server) *lineConn {
	t.Helper()
	c := dial(t, srv)
	c.Send("HELLO 2 \r\n")
	if l := c.Line(); !strings.HasPrefix(l, "HELLO 2 ") {
		t.Fatalf("got %q", l)
	}
	return c
}

// TestSignupRefusedWithoutOffer: PUT on a server that does not offer
// sign-up, before HELLO, or after HELLO 1, is a protocol error.
func TestSignupRefusedWithoutOffer(t *testing.T) {
	off := servertest.Start(t, testUsers)
	c := loginHello(t, off)
	c.Send("PUT erin password1 \r\n")
	c.Expect("END * <incorrect protocol> \r\n")
	open := startSignup(t, server.SignupOpen, 10)
	for _, lines := range []string{"PUT erin password1", "HELLO 1 \r\nPUT erin password1"} {
		c := dial(t, open)
		c.Send(lines + " \r\n")
		if strings.HasPrefix(lines, "HELLO") {
			c.Expect("HELLO 1 \r\n")
		}
		c.Expect("END * <incorrect protocol> \r\n")
	}
	c = dial(t, open)
	c.Send("HELLO 2 \r\nPUT erin password1 \r\n")
	c.Expect("HELLO 2 presence=100 groups=20,500 signup=open \r\n")
	c.Expect("ACCEPT erin \r\n")
}

// TestSignupThrottle: sign-ups from one address are limited per window.
func TestSignupThrottle(t *testing.T) {
	srv := startSignup(t, server.SignupOpen, 2)
	for i, name := range []string{"erin", "frank", "gina"} {
		c := loginHello(t, srv)
		c.Send("PUT " + name + " password1 \r\n")
		if i < 2 {
			c.Expect("ACCEPT " + name + " \r\n")
		} else {
			c.Expect("TRY <too many sign-ups> \r\n")
		}
	}
	if n := srv.Server.Stats().Signups.Load(); n != 2 {
		t.Errorf("%d sign-ups, want 2", n)
	}
}
