package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// These tests sign up over real TLS, against a messager server whose
// accounts are made by the operator's glue: the user file, a reload, and
// invites.

// startSignup starts a server with sign-up in mode, the users of v2Users,
// and sign-ups limited per address to perAddr (the default when zero).
func startSignup(t *testing.T, mode server.SignupMode, perAddr int) (*servertest.Server, *operator.Operator) {
	t.Helper()
	srv := servertest.Start(t, v2Users, func(c *server.Config) {
		c.Signup = mode
		c.SignupsPerAddr = perAddr
	})
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

// dialOnly connects and says HELLO, without logging in.
func dialOnly(t *testing.T, srv *servertest.Server) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS()}
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func signUp(c *client.Conn, user, password, invite string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.SignUp(ctx, user, password, invite)
}

// wantTry checks that err is a TRY with reason, and whether the server
// ended the connection after it.
func wantTry(t *testing.T, err error, reason string, ended bool) {
	t.Helper()
	var try *client.TryError
	if !errors.As(err, &try) {
		t.Fatalf("sign-up error %v (%T), want TRY <%s>", err, err, reason)
	}
	if try.Reason != reason || (try.End != nil) != ended {
		t.Fatalf("got TRY <%s>, end %v; want <%s>, ended %v", try.Reason, try.End, reason, ended)
	}
	if client.Retryable(err) {
		t.Errorf("a TRY is retryable: %v", err)
	}
}

// TestSignUpThenMessage: a new account is logged in at once and chats;
// it exists for later logins too.
func TestSignUpThenMessage(t *testing.T) {
	srv, _ := startSignup(t, server.SignupOpen, 0)
	bob := dialV2(t, srv, "bob")
	dave := dialOnly(t, srv)
	if !dave.Offers(client.FeatureSignup) || dave.Features().Signup != protocol.SignupOpen {
		t.Fatalf("features %+v, want signup=open", dave.Features())
	}
	// An open server takes no invite: a given one is not sent.
	if err := signUp(dave, "dave", "correct-horse", "unused-invite"); err != nil {
		t.Fatalf("sign-up: %v", err)
	}
	if dave.User() != "dave" {
		t.Fatalf("User() = %q after sign-up", dave.User())
	}
	if err := dave.Send("bob", "hi, I am new here"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, client.Relay{From: "dave", To: "bob", Text: "hi, I am new here"})
	if err := bob.Send("dave", "welcome"); err != nil {
		t.Fatal(err)
	}
	expect(t, dave, client.Relay{From: "bob", To: "dave", Text: "welcome"})
	if err := signUp(dave, "dave2", "correct-horse", ""); !errors.Is(err, client.ErrLoggedIn) {
		t.Errorf("second sign-up on a session: %v, want ErrLoggedIn", err)
	}

	// The account is there for the next login, which replaces the first.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS()}
	again, err := d.Login(ctx, "dave", "correct-horse")
	if err != nil {
		t.Fatalf("login after sign-up: %v", err)
	}
	again.Close()
}

// TestSignUpTry: refusals keep the connection for another try, until the
// third, which the server follows with END <too many attempts>.
func TestSignUpTry(t *testing.T) {
	srv, _ := startSignup(t, server.SignupOpen, 100)

	t.Run("taken, then another name", func(t *testing.T) {
		c := dialOnly(t, srv)
		wantTry(t, signUp(c, "alice", "password1", ""), protocol.ReasonNameTaken, false)
		// Names that differ only in case are the same name.
		wantTry(t, signUp(c, "ALICE", "password1", ""), protocol.ReasonNameTaken, false)
		if err := signUp(c, "erin", "password1", ""); err != nil {
			t.Fatalf("third try: %v", err)
		}
		if c.User() != "erin" {
			t.Fatalf("User() = %q", c.User())
		}
	})

	t.Run("taken, then a login", func(t *testing.T) {
		c := dialOnly(t, srv)
		wantTry(t, signUp(c, "bob", "password1", ""), protocol.ReasonNameTaken, false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Login(ctx, "bob", v2Users["bob"]); err != nil {
			t.Fatalf("login after a TRY: %v", err)
		}
	})

	t.Run("three refusals end the connection", func(t *testing.T) {
		c := dialOnly(t, srv)
		wantTry(t, signUp(c, "alice", "password1", ""), protocol.ReasonNameTaken, false)
		wantTry(t, signUp(c, "bob", "password1", ""), protocol.ReasonNameTaken, false)
		err := signUp(c, "carol", "password1", "")
		wantTry(t, err, protocol.ReasonNameTaken, true)
		var end *client.EndError
		if !errors.As(err, &end) || end.Reason != protocol.ReasonTooManyAttempts || !end.SignUp {
			t.Fatalf("the third TRY's END: %#v", end)
		}
		if err := signUp(c, "frank", "password1", ""); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("sign-up after the END: %v, want ErrClosed", err)
		}
	})
}

// TestSignUpTooMany: the server allows a few sign-ups an hour from one
// address.
func TestSignUpTooMany(t *testing.T) {
	srv, _ := startSignup(t, server.SignupOpen, 1)
	if err := signUp(dialOnly(t, srv), "dave", "password1", ""); err != nil {
		t.Fatal(err)
	}
	c := dialOnly(t, srv)
	wantTry(t, signUp(c, "erin", "password1", ""), protocol.ReasonTooManySignups, false)
}

// TestSignUpInvite: a server that wants invites takes each one as often
// as the operator said, and no other.
func TestSignUpInvite(t *testing.T) {
	srv, op := startSignup(t, server.SignupInvite, 100)
	token, _, err := op.Invite(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	c := dialOnly(t, srv)
	if c.Features().Signup != protocol.SignupInvite {
		t.Fatalf("features %+v, want signup=invite", c.Features())
	}
	if err := signUp(c, "dave", "password1", ""); !errors.Is(err, client.ErrInviteRequired) {
		t.Fatalf("no invite: %v, want ErrInviteRequired", err)
	}
	if err := signUp(c, "dave", "password1", "not an invite"); !errors.Is(err, client.ErrMalformedInvite) {
		t.Fatalf("malformed invite: %v, want ErrMalformedInvite", err)
	}
	// Well-formed, but no operator made it.
	wantTry(t, signUp(c, "dave", "password1", "AAAAAAAAAAAAAAAAAAAAAAAA"), protocol.ReasonInvalidInvite, false)
	if err := signUp(c, "dave", "password1", token); err != nil {
		t.Fatalf("sign-up with the invite: %v", err)
	}

	// Used up.
	c = dialOnly(t, srv)
	wantTry(t, signUp(c, "erin", "password1", token), protocol.ReasonInvalidInvite, false)
	// A taken name does not spend an invite.
	token, _, err = op.Invite(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantTry(t, signUp(c, "Dave", "password1", token), protocol.ReasonNameTaken, false)
	if err := signUp(c, "erin", "password1", token); err != nil {
		t.Fatalf("sign-up with the invite after a taken name: %v", err)
	}
}

// TestSignUpRefusedLocally: what no server would take, and a server that
// offers no sign-up, are refused before anything is sent: the connection
// can still log in.
func TestSignUpRefusedLocally(t *testing.T) {
	srv, _ := startSignup(t, server.SignupOpen, 100)
	var name *client.NameError
	var reserved *client.ReservedNameError
	tests := []struct {
		name, user, password string
		ok                   func(error) bool
	}{
		{"invalid name", "da ve", "password1", func(err error) bool { return errors.As(err, &name) }},
		{"long name", "a123456789012345678901234567890123", "password1", func(err error) bool { return errors.As(err, &name) }},
		{"reserved name", "Server", "password1", func(err error) bool { return errors.As(err, &reserved) }},
		{"short password", "dave", "1234567", func(err error) bool { return errors.Is(err, client.ErrPasswordTooShort) }},
		{"empty password", "dave", "", func(err error) bool { return errors.Is(err, client.ErrPasswordTooShort) }},
		{"space in password", "dave", "pass word1", func(err error) bool { return errors.Is(err, client.ErrInvalidPassword) }},
		{"control in password", "dave", "password\x01", func(err error) bool { return errors.Is(err, client.ErrInvalidPassword) }},
	}
	c := dialOnly(t, srv)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := signUp(c, tt.user, tt.password, ""); !tt.ok(err) {
				t.Fatalf("sign-up: %v (%T)", err, err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Login(ctx, "alice", v2Users["alice"]); err != nil {
		t.Fatalf("login after local refusals: %v", err)
	}

	var off *client.NotOfferedError
	t.Run("not offered", func(t *testing.T) {
		plain := servertest.Start(t, v2Users)
		c := dialOnly(t, plain)
		if c.Offers(client.FeatureSignup) {
			t.Fatal("a server without sign-up offers it")
		}
		err := signUp(c, "dave", "password1", "")
		if !errors.As(err, &off) || off.Feature != client.FeatureSignup {
			t.Fatalf("sign-up: %v, want NotOfferedError", err)
		}
		if err.Error() != "this server does not offer sign-up: its operator makes the accounts" {
			t.Errorf("error text %q", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Login(ctx, "bob", v2Users["bob"]); err != nil {
			t.Fatalf("login: %v", err)
		}
	})

	t.Run("original server", func(t *testing.T) {
		seed := seedserver.Start(t, seedserver.Users(v2Users), seedserver.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := &client.Dialer{Addr: seed.Addr, TLSConfig: seedTLS(seed)}
		c, err := d.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SignUp(ctx, "dave", "password1", ""); !errors.As(err, &off) {
			t.Fatalf("sign-up: %v, want NotOfferedError", err)
		}
	})
}
