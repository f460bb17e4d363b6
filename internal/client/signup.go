package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// FeatureSignup is PUT: people making their own accounts.
const FeatureSignup = "signup"

// SignupTries is how many refused sign-ups one connection may have: the
// server follows the third TRY with END <too many attempts> and closes.
const SignupTries = 3

// Errors of a sign-up refused before anything is sent.
var (
	// ErrInviteRequired: the server signs up by invite only
	// (signup=invite) and no invite was given.
	ErrInviteRequired = errors.New("this server signs up by invite only: an invite from its operator is needed")
	// ErrMalformedInvite: the invite is not in the form operators hand
	// out, so no server would take it.
	ErrMalformedInvite = errors.New("the invite is not in the form an operator gives: 1 to " +
		strconv.Itoa(protocol.MaxInviteLen) + " characters from A-Z a-z 0-9 - _")
	// ErrPasswordTooShort: sign-up wants a password of at least
	// protocol.MinSignupPassword bytes.
	ErrPasswordTooShort = errors.New("the password is too short: a new account needs at least " +
		strconv.Itoa(protocol.MinSignupPassword) + " bytes")
	// ErrInvalidPassword: the password cannot be sent (a space, a control
	// character, or over protocol.MaxPasswordLen bytes).
	ErrInvalidPassword = errors.New("the password must be 1 to " + strconv.Itoa(protocol.MaxPasswordLen) +
		" bytes without spaces or control characters")
	// ErrLoggedIn: the connection is logged in already; an account is
	// made instead of logging in, not after.
	ErrLoggedIn = errors.New("already logged in")
)

// ReservedNameError reports a name no account may have: "server", in any
// case, is the sender of the operator's notices.
type ReservedNameError struct{ Name string }

func (e *ReservedNameError) Error() string {
	return fmt.Sprintf("%q is reserved for the server's own notices; choose another name", e.Name)
}

// TryError reports a sign-up the server refused with TRY: no account was
// made. Unless End is set, the connection stays open for another SignUp
// (or a Login).
type TryError struct {
	// Reason is the server's reason, without angle brackets, as sent
	// (one of protocol.ReasonNameTaken to protocol.ReasonTooManySignups,
	// or another): escape it before showing it (Error does).
	Reason string
	// End is set when the server ended the connection after this TRY:
	// the last of SignupTries a connection may have.
	End *EndError
}

// Error describes the refusal with the server's reason escaped.
func (e *TryError) Error() string { return "sign-up refused: " + Escape(e.Reason) }

// Unwrap returns End, so that errors.As finds the END when there was one.
func (e *TryError) Unwrap() error {
	if e.End == nil {
		return nil
	}
	return e.End
}

// Permanent reports that trying the same sign-up again would be refused
// again: it is not a network failure (see Retryable).
func (e *TryError) Permanent() bool { return true }

// CheckSignupName reports whether name can be a new account's name: a
// valid username (a *NameError if not) and not the reserved one (a
// *ReservedNameError).
func CheckSignupName(name string) error {
	if !protocol.ValidNameString(name) {
		return &NameError{Name: name}
	}
	if strings.EqualFold(name, protocol.NoticeSender) {
		return &ReservedNameError{Name: name}
	}
	return nil
}

// CheckSignupPassword reports whether password can be a new account's:
// one that can be sent (ErrInvalidPassword) of at least
// protocol.MinSignupPassword bytes (ErrPasswordTooShort).
func CheckSignupPassword(password string) error {
	if !protocol.ValidPassword([]byte(password)) {
		if password == "" {
			return ErrPasswordTooShort
		}
		return ErrInvalidPassword
	}
	if len(password) < protocol.MinSignupPassword {
		return ErrPasswordTooShort
	}
	return nil
}

// CheckInvite reports whether invite is in the form of an invite
// (ErrMalformedInvite if not).
func CheckInvite(invite string) error {
	if !protocol.ValidInvite([]byte(invite)) {
		return ErrMalformedInvite
	}
	return nil
}

// SignUp makes the account user with password, instead of Login, on a
// server that offers sign-up (Features().Signup): invite is the
// operator's invite on a server that wants one, and is not sent to a
// server that signs up without. On success the account exists and the
// connection is logged in as it, exactly as after Login.
//
// It refuses locally, sending nothing, when the server does not offer
// sign-up (a *NotOfferedError), wants an invite and none is given
// (ErrInviteRequired), and a name, password or invite that the checks
// above refuse. A refusal by the server is a *TryError; the connection
// stays open for another try unless the TryError has End set (the
// server allows SignupTries). An END from the server is an *EndError,
// and closes the connection; so does a network failure. SignUp is
// bounded by ctx, or by DefaultLoginTimeout when ctx has no deadline;
// the server allows about 10 s from connecting to logging in, retries
// included.
func (c *Conn) SignUp(ctx context.Context, user, password, invite string) error {
	if err := c.offers(FeatureSignup); err != nil {
		return err
	}
	if err := CheckSignupName(user); err != nil {
		return err
	}
	if err := CheckSignupPassword(password); err != nil {
		return err
	}
	if c.features.Signup == protocol.SignupInvite {
		if invite == "" {
			return ErrInviteRequired
		}
		if err := CheckInvite(invite); err != nil {
			return err
		}
	} else {
		invite = ""
	}
	if c.User() != "" {
		return ErrLoggedIn
	}
	if c.closed.Load() || c.ended.Load() {
		return ErrClosed
	}
	if err := c.nc.SetDeadline(deadlineOf(ctx)); err != nil {
		return fmt.Errorf("sign-up: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.wmu.Lock()
	c.buf = protocol.AppendPut(c.buf[:0], user, password, invite)
	c.queueLocked(c.buf)
	err := c.writeLocked()
	// Neither the password nor the invite may linger.
	clear(c.buf)
	clear(c.out[:cap(c.out)])
	c.wmu.Unlock()
	if err != nil {
		return c.stepError(ctx, "sign-up", fmt.Errorf("send: %w", err))
	}

	c.r.before = nil
	for {
		sl, err := c.nextLoginLine()
		if err != nil {
			return c.stepError(ctx, "sign-up", err)
		}
		switch sl.Kind {
		case protocol.KindAccept:
			if string(sl.User) != user {
				c.Close()
				return fmt.Errorf("sign-up: server accepted %q instead of %q", sl.User, user)
			}
			c.wmu.Lock()
			c.user = user
			c.wmu.Unlock()
			if err := c.nc.SetDeadline(time.Time{}); err != nil {
				return fmt.Errorf("sign-up: %w", err)
			}
			return nil
		case protocol.KindTry:
			c.tries++
			te := &TryError{Reason: string(sl.Reason)}
			if c.tries >= SignupTries {
				// The END follows at once; reading it here tells the
				// caller that this connection is done.
				te.End = c.readEnd()
				return te
			}
			if err := c.nc.SetDeadline(time.Time{}); err != nil {
				c.Close()
			}
			return te
		case protocol.KindEnd:
			c.ended.Store(true)
			c.Close()
			return &EndError{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError, Login: true, SignUp: true}
		case protocol.KindCheck:
			c.checks.Add(1)
		default:
			c.ignored.Add(1)
		}
	}
}

// nextLoginLine reads the next server line of a login or sign-up that
// is not empty and parses; other lines are counted as ignored.
func (c *Conn) nextLoginLine() (protocol.ServerLine, error) {
	for {
		raw, err := c.r.next()
		if err != nil {
			return protocol.ServerLine{}, readError(err)
		}
		line := protocol.TrimLine(raw)
		if len(line) == 0 {
			continue
		}
		sl, err := protocol.ParseServerLine(line)
		if err != nil {
			c.ignored.Add(1)
			continue
		}
		return sl, nil
	}
}

// readEnd reads until the server's END, under the deadline already set,
// and closes the connection. It returns nil when something else ended
// the connection first.
func (c *Conn) readEnd() *EndError {
	defer c.Close()
	for {
		sl, err := c.nextLoginLine()
		if err != nil {
			return nil
		}
		switch sl.Kind {
		case protocol.KindEnd:
			c.ended.Store(true)
			return &EndError{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError, Login: true, SignUp: true}
		case protocol.KindCheck:
			c.checks.Add(1)
		default:
			c.ignored.Add(1)
		}
	}
}
