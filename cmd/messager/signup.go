package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
)

// signupCommand, typed at chat's user or password prompt, makes an
// account instead of logging in.
const signupCommand = "/signup"

func newSignupCmd() *cobra.Command {
	var f connectFlags
	var invite string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "signup --user NAME [--invite TOKEN] [--password-stdin]",
		Short: "Make an account on a server that lets users sign up",
		Long: `Signup makes the account --user on a server that offers sign-up, and
tells how to log in to it.

On a terminal it connects first, then asks for the new password twice,
without echo; a name, password or invite the server refuses is explained
and asked for again, up to the three tries the server allows. Otherwise
--password-stdin reads the password from the first line of stdin, and a
refusal is final. A password has at least 8 bytes and no spaces.

A server that signs up by invite only wants --invite, the token its
operator gave ("messager admin invite" makes one); on a terminal it is
asked for when needed.

Exit status: 0 when the account was made, 1 when the server refused it
or cannot be reached, 2 for a usage error (a bad name or password, a
missing invite or password).

The server and trust flags are those of "messager chat"; "messager chat"
also offers to sign up when a login is refused, and takes /signup at its
user and password prompts. With several servers (--server
a:18443,b:18443) the account is made on the first that can be reached;
the ones passed over are told on stderr.

Environment: MESSAGER_SERVER stands in for --server, MESSAGER_INVITE for
--invite.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.start(cmd)
			if err != nil {
				return err
			}
			s.user = f.user
			switch {
			case s.user != "":
				if err := client.CheckSignupName(s.user); err != nil {
					return usageError(fmt.Errorf("--user: %w", err))
				}
			case !s.terminal:
				return usageError(errors.New("no user: use --user NAME"))
			default:
				if s.user, err = s.askNewName(); err != nil {
					return err
				}
			}
			s.invite = invite
			if !cmd.Flags().Changed("invite") {
				s.invite = os.Getenv(envInvite)
			}
			if s.invite != "" {
				if err := client.CheckInvite(s.invite); err != nil {
					if cmd.Flags().Changed("invite") {
						return usageError(fmt.Errorf("--invite: %w", err))
					}
					return usageError(fmt.Errorf("$%s: %w", envInvite, err))
				}
			}
			switch {
			case passwordStdin:
				// The first line; a last line without a line end will do.
				pw, err := s.readLine()
				switch {
				case errors.Is(err, errEndOfInput) && pw == "":
					return usageError(errors.New("--password-stdin: no password on stdin"))
				case err != nil && !errors.Is(err, errEndOfInput):
					return usageError(fmt.Errorf("--password-stdin: %w", err))
				}
				if err := client.CheckSignupPassword(pw); err != nil {
					return usageError(fmt.Errorf("--password-stdin: %w", err))
				}
				s.password, s.passwordGiven = pw, true
			case !s.terminal:
				return usageError(errors.New("no password: use --password-stdin or run on a terminal"))
			}
			if err := f.trust(s); err != nil {
				return err
			}

			ctx := cmd.Context()
			c, err := s.dial(ctx)
			if err != nil {
				return err
			}
			conn, err := s.signUp(ctx, c, time.Now())
			if err != nil {
				return err
			}
			defer conn.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "signed up as %s on %s; log in with: messager chat --server %s --user %s\n",
				s.user, conn.Addr(), s.serverList(), s.user)
			goodbye(ctx, conn)
			return nil
		},
	}
	fs := cmd.Flags()
	f.registerServer(cmd)
	fs.StringVar(&f.user, "user", "", "the `NAME` of the new account (asked on a terminal)")
	fs.StringVar(&invite, "invite", "", "the invite `TOKEN` the server's operator gave (default $"+envInvite+")")
	fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.registerTrust(cmd)
	return cmd
}

// signUp makes the account s.user, with s.password and s.invite, and
// returns the connection logged in as it. c is a fresh connection (made
// at dialed), or nil. On a terminal, unless the password was given, it
// asks for what is missing (the password twice, an invite on a server
// that wants one) and, after a refusal, for what the server refused, up
// to client.SignupTries times. The name and password that worked are
// left in s, for reconnecting.
func (s *clientSetup) signUp(ctx context.Context, c *client.Conn, dialed time.Time) (*client.Conn, error) {
	ask := s.terminal && !s.passwordGiven
	defer func() {
		// Closed unless handed out; a nil c was handed out or is gone.
		closeConn(c)
	}()
	for try := 1; ; {
		if c == nil || time.Since(dialed) > freshConn {
			closeConn(c)
			var err error
			if c, err = s.dial(ctx); err != nil {
				c = nil
				return nil, err
			}
			dialed = time.Now()
		}
		if !c.Offers(client.FeatureSignup) {
			return nil, &client.NotOfferedError{Feature: client.FeatureSignup}
		}
		if err := client.CheckSignupName(s.user); err != nil {
			// A name chat tried to log in with, which no account may have.
			if !ask {
				return nil, usageError(err)
			}
			fmt.Fprintf(s.stderr, "messager: %s\n", client.EscapeLines(err.Error()))
			if s.user, err = s.askNewName(); err != nil {
				return nil, err
			}
		}
		if c.Features().Signup == protocol.SignupInvite {
			if s.invite != "" {
				if err := client.CheckInvite(s.invite); err != nil {
					fmt.Fprintf(s.stderr, "messager: %s\n", err)
					s.invite = ""
				}
			}
			if s.invite == "" {
				if !ask {
					return nil, usageError(fmt.Errorf("%w: use --invite TOKEN or $%s", client.ErrInviteRequired, envInvite))
				}
				var err error
				if s.invite, err = s.askInvite(); err != nil {
					return nil, err
				}
			}
		}
		if s.password == "" {
			var err error
			if s.password, err = s.askNewPassword(); err != nil {
				return nil, err
			}
		}
		if time.Since(dialed) > freshConn {
			// What was asked took a while: the server allows about 10 s
			// from connecting to logging in.
			continue
		}

		sctx, cancel := context.WithTimeout(ctx, client.DefaultLoginTimeout)
		err := c.SignUp(sctx, s.user, s.password, s.invite)
		cancel()
		if err == nil {
			done := c
			c = nil
			return done, nil
		}
		var refused *client.TryError
		if !errors.As(err, &refused) {
			if errors.Is(err, client.ErrClosed) {
				// The server closed after a TRY without saying so.
				c = nil
				continue
			}
			return nil, err
		}
		if refused.End != nil {
			c = nil
		}
		hint := signupHint(refused.Reason)
		explained := error(refused)
		if hint != "" {
			explained = fmt.Errorf("%w; %s", refused, hint)
		}
		if !ask || try == client.SignupTries || refused.Reason == protocol.ReasonTooManySignups {
			return nil, explained
		}
		try++
		fmt.Fprintf(s.stderr, "messager: %s\n", explained)
		switch refused.Reason {
		case protocol.ReasonNameTaken, protocol.ReasonInvalidName, protocol.ReasonReservedName:
			if s.user, err = s.askNewName(); err != nil {
				return nil, err
			}
		case protocol.ReasonInviteRequired, protocol.ReasonInvalidInvite:
			if s.invite, err = s.askInvite(); err != nil {
				return nil, err
			}
		default:
			// The password, or a reason of a later version.
			s.password = ""
		}
	}
}

// signupHint explains a TRY reason: what to do about it.
func signupHint(reason string) string {
	switch reason {
	case protocol.ReasonNameTaken:
		return "choose another name (names that differ only in case are the same)"
	case protocol.ReasonInvalidName:
		return "the server does not take this name; choose another"
	case protocol.ReasonReservedName:
		return "the name is reserved; choose another"
	case protocol.ReasonPasswordTooShort:
		return "the server wants a longer password"
	case protocol.ReasonInviteRequired:
		return "this server signs up by invite only; ask its operator for one"
	case protocol.ReasonInvalidInvite:
		return "the invite is unknown, used up or expired; ask the server's operator for a new one"
	case protocol.ReasonTooManySignups:
		return "the server takes only a few sign-ups an hour; try again later"
	}
	return ""
}

// askNewName asks for the name of a new account until it is one the
// server could take.
func (s *clientSetup) askNewName() (string, error) {
	for {
		name, err := s.promptLine("name for the new account: ")
		if err != nil {
			return "", err
		}
		name = strings.TrimSpace(name)
		err = client.CheckSignupName(name)
		if err == nil {
			return name, nil
		}
		fmt.Fprintf(s.stderr, "messager: %s\n", client.EscapeLines(err.Error()))
	}
}

// askNewPassword asks for a new password twice, without echo, until the
// two match and the password is one the server could take.
func (s *clientSetup) askNewPassword() (string, error) {
	for {
		pw, err := s.promptPassword(fmt.Sprintf("new password for %s@%s: ", s.user, s.addr()))
		if err != nil {
			return "", err
		}
		if err := client.CheckSignupPassword(pw); err != nil {
			fmt.Fprintf(s.stderr, "messager: %s\n", err)
			continue
		}
		again, err := s.promptPassword("the same password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			fmt.Fprintln(s.stderr, "messager: the passwords differ; try again")
			continue
		}
		return pw, nil
	}
}

// askInvite asks for the operator's invite until it is in the form of
// one.
func (s *clientSetup) askInvite() (string, error) {
	for {
		invite, err := s.promptLine("invite from the server's operator: ")
		if err != nil {
			return "", err
		}
		invite = strings.TrimSpace(invite)
		err = client.CheckInvite(invite)
		if err == nil {
			return invite, nil
		}
		fmt.Fprintf(s.stderr, "messager: %s\n", err)
	}
}
