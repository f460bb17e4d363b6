package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// signupScripted is a scripted server that offers sign-up in mode.
func signupScripted(t *testing.T, mode string) (*Conn, *scripted) {
	t.Helper()
	c, s := newScripted(t, Options{})
	c.features = protocol.Features{Signup: mode}
	c.version = 2
	return c, s
}

// TestSignUpQuery: PUT in the seed shape, in one write, with the invite
// only where the server wants one.
func TestSignUpQuery(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		c, s := signupScripted(t, protocol.SignupOpen)
		s.write("ACCEPT dave \r\n")
		if err := c.SignUp(context.Background(), "dave", "password1", "some-invite"); err != nil {
			t.Fatal(err)
		}
		s.expect("PUT dave password1 \r\n")
		if c.User() != "dave" {
			t.Fatalf("User() = %q", c.User())
		}
	})
	t.Run("invite", func(t *testing.T) {
		c, s := signupScripted(t, protocol.SignupInvite)
		s.write("CHECK \r\n", "ACCEPT dave \r\n")
		if err := c.SignUp(context.Background(), "dave", "password1", "tok_en-1="); err != nil {
			t.Fatal(err)
		}
		s.expect("PUT dave password1 tok_en-1= \r\n")
		if c.Checks() != 1 {
			t.Errorf("checks %d, want 1", c.Checks())
		}
	})
}

// TestSignUpServerReasons: a server may refuse what the client does not
// check (its own name rules, a reason of a later version); the reason is
// kept as sent and shown escaped, and the connection stays usable.
func TestSignUpServerReasons(t *testing.T) {
	c, s := signupScripted(t, protocol.SignupOpen)
	s.write("TRY <invalid name> \r\n")
	err := c.SignUp(context.Background(), "x", "password1", "")
	var try *TryError
	if !errors.As(err, &try) || try.Reason != protocol.ReasonInvalidName || try.End != nil {
		t.Fatalf("got %v, want TRY <invalid name>", err)
	}
	s.expect("PUT x password1 \r\n")
	s.write("TRY <password \x1b[31mweak> \r\n")
	err = c.SignUp(context.Background(), "xavier", "password1", "")
	if !errors.As(err, &try) || err.Error() != `sign-up refused: password \x1b[31mweak` {
		t.Fatalf("got %q", err)
	}
	var end *EndError
	if errors.As(err, &end) {
		t.Fatalf("a TRY that is not the last unwraps to %v", end)
	}
	s.expect("PUT xavier password1 \r\n")
	s.write("ACCEPT xavier \r\n")
	if err := c.SignUp(context.Background(), "xavier", "password12", ""); err != nil {
		t.Fatalf("third try: %v", err)
	}
}

// TestSignUpEnd: an END in answer to PUT is an *EndError of a sign-up,
// and closes the connection.
func TestSignUpEnd(t *testing.T) {
	c, s := signupScripted(t, protocol.SignupOpen)
	s.write("END <banned> \r\n")
	err := c.SignUp(context.Background(), "dave", "password1", "")
	var end *EndError
	if !errors.As(err, &end) || !end.SignUp || !end.Refused() || err.Error() != "sign-up refused: banned" {
		t.Fatalf("got %v, want END <banned> of a sign-up", err)
	}
	if err := c.SignUp(context.Background(), "dave", "password1", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the END: %v", err)
	}
}

// TestSignUpWrongAccept: an ACCEPT of another name is not a login.
func TestSignUpWrongAccept(t *testing.T) {
	c, s := signupScripted(t, protocol.SignupOpen)
	s.write("ACCEPT mallory \r\n")
	err := c.SignUp(context.Background(), "dave", "password1", "")
	if err == nil || !strings.Contains(err.Error(), `accepted "mallory" instead of "dave"`) || c.User() != "" {
		t.Fatalf("got %v, user %q", err, c.User())
	}
}

// TestSignUpDeadline: a server that does not answer fails the sign-up
// with the context's deadline.
func TestSignUpDeadline(t *testing.T) {
	c, _ := signupScripted(t, protocol.SignupOpen)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.SignUp(ctx, "dave", "password1", "")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "sign-up: ") {
		t.Fatalf("got %v, want the deadline", err)
	}
}

// TestCheckSignup: the local checks of name, password and invite.
func TestCheckSignup(t *testing.T) {
	for _, name := range []string{"dave", "a", "A.b-c_9", strings.Repeat("n", protocol.MaxNameLen), "servers"} {
		if err := CheckSignupName(name); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, name := range []string{"", "da ve", "dave!", strings.Repeat("n", protocol.MaxNameLen+1), "server", "SERVER", "Server"} {
		if err := CheckSignupName(name); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	for _, pw := range []string{"12345678", "pässwörd", strings.Repeat("p", protocol.MaxPasswordLen)} {
		if err := CheckSignupPassword(pw); err != nil {
			t.Errorf("password %q: %v", pw, err)
		}
	}
	for _, pw := range []string{"", "1234567", "pass word", "password\t", strings.Repeat("p", protocol.MaxPasswordLen+1), "password\x7f"} {
		if err := CheckSignupPassword(pw); err == nil {
			t.Errorf("password %q accepted", pw)
		}
	}
	for _, inv := range []string{"AAAA", "a-b_c", "abc=", "abc=="} {
		if err := CheckInvite(inv); err != nil {
			t.Errorf("invite %q: %v", inv, err)
		}
	}
	for _, inv := range []string{"", "a b", "a/b", "abc===", "=", strings.Repeat("a", protocol.MaxInviteLen+1)} {
		if err := CheckInvite(inv); err == nil {
			t.Errorf("invite %q accepted", inv)
		}
	}
}
