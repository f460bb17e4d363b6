package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/messager/messager/internal/chat"
	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/trust"
)

// Environment variables the client reads when a flag is not given.
const (
	envServer   = "MESSAGER_SERVER"
	envUser     = "MESSAGER_USER"
	envPassword = "MESSAGER_PASSWORD"
	envJoin     = "MESSAGER_JOIN"
	envWatch    = "MESSAGER_WATCH"
	envInvite   = "MESSAGER_INVITE"
)

// fingerprintCommand prints a server's fingerprint on the server; the
// trust prompt names it.
const fingerprintCommand = "messager cert fingerprint"

// defaultServer is the server the client talks to unless told otherwise.
var defaultServer = "localhost:" + strconv.Itoa(protocol.DefaultPort)

func newChatCmd() *cobra.Command {
	f := connectFlags{offerSignup: true}
	var to, join, watch string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Chat with other users, on a terminal or through a pipe",
		Long: `Chat logs in to a messager server and sends and receives messages.

On a terminal it shows incoming messages as "[15:04] alice: text" above the
line being typed, and group messages as "[15:04] #team alice: text".
Commands: /to NAME or /to #GROUP changes the target, /join #GROUP and
/part [#GROUP] join and leave groups, /who [MASK] shows who is online,
/watch NAME... and /unwatch NAME... choose whose coming and going is told,
/quit ends the session, /help lists the commands. A missing user, password
or target is asked for; the client connects before it asks for the
password, and asks again after a wrong one, up to three times. Everything
the server sends is shown with control and invisible characters escaped.
After a reconnection the client joins its groups and watches its users
again.

On a server that offers sign-up, a refused login on a terminal offers to
make the account ("no account NAME here? sign up? [y/N]"), and /signup
typed at the user or password prompt does the same: the new password is
asked twice, an invite when the server wants one (or $MESSAGER_INVITE),
and the session goes on logged in as the new account. See "messager
signup".

When stdin is not a terminal, every input line is one message to --to (a
user, or a group, which is joined), and received messages are written to
stdout as "alice: text" or "#team alice: text", notices to stderr as
"* bob is not online". With --json, messages, notices and errors are JSON
lines on stdout, each with a "type" of "message", "notice" or "error", and
"presence", "who", "join", "part" or "fail" for presence and groups. At
the end of input the session ends once the server has handled every line.
Exit status: 0 when every line was delivered, 1 when some line could not be
sent (or on any other error), 2 when the target of some line was not
online or not a group one is in, when the server refused a --join or a
--watch, or does not offer groups or presence.

Groups and presence need a server that offers them (protocol version 2);
against an older server the rest works as before.

The server's certificate is trusted on first use and remembered in the
known_servers file of the user's configuration directory; see --ca,
--fingerprint, --trust-new and --insecure.

Environment: MESSAGER_SERVER, MESSAGER_USER and MESSAGER_PASSWORD stand in
for --server, --user and the password prompt; MESSAGER_JOIN and
MESSAGER_WATCH for --join and --watch; MESSAGER_INVITE for the invite of
a sign-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdinTTY := stdioIsTerminal(cmd.InOrStdin())
			stdoutTTY := stdioIsTerminal(cmd.OutOrStdout())
			if !stdinTTY && to == "" {
				return usageError(errors.New("--to is required when stdin is not a terminal"))
			}
			if err := checkTarget(to); err != nil {
				return usageError(fmt.Errorf("--to: %w", err))
			}
			groups, err := chat.ParseGroups(flagOrEnv(cmd, "join", join, envJoin))
			if err != nil {
				return usageError(fmt.Errorf("--join: %w", err))
			}
			names, err := chat.ParseNames(flagOrEnv(cmd, "watch", watch, envWatch))
			if err != nil {
				return usageError(fmt.Errorf("--watch: %w", err))
			}
			ctx := cmd.Context()
			s, err := f.setup(cmd)
			if err != nil {
				return err
			}
			conn, err := s.login(ctx)
			if err != nil {
				return err
			}
			err = chat.Run(ctx, chat.Config{
				Conn:        conn,
				Connect:     s.connect,
				To:          to,
				Join:        groups,
				Watch:       names,
				Interactive: stdinTTY,
				Color:       stdoutTTY && os.Getenv("NO_COLOR") == "",
				JSON:        jsonOut,
				Stdin:       cmd.InOrStdin(),
				Stdout:      cmd.OutOrStdout(),
				Stderr:      cmd.ErrOrStderr(),
			})
			var off *client.NotOfferedError
			switch {
			case errors.Is(err, chat.ErrNotSent):
				return withExitCode(1, nil)
			case errors.Is(err, chat.ErrNotOnline), errors.Is(err, chat.ErrRefused):
				return withExitCode(sendExitNotOnline, nil)
			case errors.As(err, &off):
				return withExitCode(sendExitNotOnline, err)
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&f.checkInterval, "check-interval", client.DefaultCheckInterval,
		"the server's CHECK interval; after 3 silent intervals the connection counts as dead and is reopened")
	cmd.Flags().StringVar(&to, "to", "", "send messages to `NAME`, or to a #group (joined)")
	cmd.Flags().StringVar(&join, "join", "", "join these `GROUPS` (\"#a,#b\"), again after every reconnection (default $"+envJoin+")")
	cmd.Flags().StringVar(&watch, "watch", "", "be told when these `NAMES` (\"bob,carol\") come and go (default $"+envWatch+")")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "write received messages, notices and errors as JSON lines on stdout (when stdin is not a terminal)")
	return cmd
}

// checkTarget checks a --to: a user or a group, or none.
func checkTarget(to string) error {
	switch {
	case to == "":
	case strings.HasPrefix(to, "#"):
		if !protocol.ValidGroupString(to) {
			return &client.GroupError{Group: to}
		}
	case !protocol.ValidNameString(to):
		return &client.NameError{Name: to}
	}
	return nil
}

// flagOrEnv is the value of a flag when it was given, else of an
// environment variable.
func flagOrEnv(cmd *cobra.Command, flag, value, env string) string {
	if cmd.Flags().Changed(flag) {
		return value
	}
	return os.Getenv(env)
}

// connectFlags are the flags shared by chat and send: where to connect,
// as whom, and how to trust the server.
type connectFlags struct {
	server, user, ca, fingerprint string
	trustNew, insecure            bool
	checkInterval                 time.Duration
	// offerSignup lets the login make an account on a terminal (chat
	// only; see clientSetup.login).
	offerSignup bool
}

func (f *connectFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.server, "server", "", "server `HOST:PORT` (default "+defaultServer+", or $"+envServer+")")
	fs.StringVar(&f.user, "user", "", "log in as `NAME` (default $"+envUser+", or asked)")
	f.registerTrust(cmd)
}

// registerTrust registers the flags that say how to trust the server.
func (f *connectFlags) registerTrust(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.ca, "ca", "", "verify the server against the certificates in `FILE` (e.g. the server's cert.pem)")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "require the server certificate with this `sha256:HEX` fingerprint")
	fs.BoolVar(&f.trustNew, "trust-new", false, "trust and remember a server seen for the first time without asking")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate (unsafe)")
}

// clientSetup is a resolved server, user, password and verifier.
type clientSetup struct {
	addr, user, password string
	verifier             *trust.Verifier
	options              client.Options
	stdin                io.Reader
	stderr               io.Writer
	terminal             bool
	// dialer makes every connection of the run, so that a server found
	// to speak only version 1 is not asked for version 2 again.
	dialer *client.Dialer

	// For a sign-up (see signUp): offerSignup lets a login on a terminal
	// make an account; signup is set when the user asked for one at the
	// user prompt; invite is the operator's invite, if any;
	// passwordGiven says the password came from --password-stdin, so
	// nothing is asked for and a refusal is final.
	offerSignup   bool
	signup        bool
	invite        string
	passwordGiven bool
}

// Login on a terminal.
const (
	// passwordTries is how often a terminal user may type the password.
	passwordTries = 3
	// freshConn is how long a connection made before the password was
	// asked for is used for the login; the server allows 10 s from the
	// connection to the login, so an older one is replaced.
	freshConn = 5 * time.Second
)

// setup resolves flags, environment and the user prompt. The password is
// asked for later, by login, once the server is known to be there. At
// the user prompt, /signup asks for the name of a new account instead,
// and login then signs up.
func (f *connectFlags) setup(cmd *cobra.Command) (*clientSetup, error) {
	s, err := f.start(cmd)
	if err != nil {
		return nil, err
	}
	s.user = f.user
	if s.user == "" {
		s.user = os.Getenv(envUser)
	}
	if s.user == "" {
		if !s.terminal {
			return nil, usageError(fmt.Errorf("no user: use --user or $%s", envUser))
		}
		if s.user, err = s.promptLine("user: "); err != nil {
			return nil, err
		}
		if s.offerSignup && strings.TrimSpace(s.user) == signupCommand {
			s.signup = true
			if s.user, err = s.askNewName(); err != nil {
				return nil, err
			}
		}
	}
	if !protocol.ValidNameString(s.user) {
		return nil, usageError(fmt.Errorf("user: %w", &client.NameError{Name: s.user}))
	}

	if !s.signup {
		s.password = os.Getenv(envPassword)
	}
	if s.password == "" && !s.terminal {
		return nil, fmt.Errorf("no password: set $%s or run on a terminal", envPassword)
	}
	// For a sign-up offered on the way; checked when it is used.
	s.invite = os.Getenv(envInvite)
	return s, f.trust(s)
}

// start resolves what every command that connects needs first: the
// terminal, the options and the server's address.
func (f *connectFlags) start(cmd *cobra.Command) (*clientSetup, error) {
	s := &clientSetup{stdin: cmd.InOrStdin(), stderr: cmd.ErrOrStderr()}
	if f.checkInterval < 0 {
		return nil, usageError(errors.New("--check-interval must not be negative"))
	}
	s.options.CheckInterval = f.checkInterval
	s.terminal = stdioIsTerminal(s.stdin)
	s.offerSignup = f.offerSignup && s.terminal

	server := f.server
	if server == "" {
		server = os.Getenv(envServer)
	}
	if server == "" {
		server = defaultServer
	}
	addr, err := serverAddr(server)
	if err != nil {
		return nil, usageError(err)
	}
	s.addr = addr
	return s, nil
}

// trust sets up the verification of the server's certificate and the
// dialer that uses it.
func (f *connectFlags) trust(s *clientSetup) error {
	var err error
	s.verifier, err = trust.New(s.addr, trust.Options{
		CAFile:      f.ca,
		Fingerprint: f.fingerprint,
		TrustNew:    f.trustNew,
		Insecure:    f.insecure,
		Notices:     s.stderr,
	})
	if err != nil {
		return err
	}
	s.dialer = &client.Dialer{Addr: s.addr, TLSConfig: s.verifier.TLSConfig(), Options: s.options}
	return nil
}

// serverAddr adds the default port to a server given without one.
func serverAddr(server string) (string, error) {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server, nil
	}
	if strings.Contains(strings.Trim(server, "[]"), ":") && !strings.HasPrefix(server, "[") {
		// A bare IPv6 address.
		return net.JoinHostPort(server, strconv.Itoa(protocol.DefaultPort)), nil
	}
	if server == "" || strings.ContainsAny(server, " /") {
		return "", fmt.Errorf("server %q: want HOST:PORT", server)
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), strconv.Itoa(protocol.DefaultPort)), nil
}

// connect dials and logs in; it is also the chat's reconnect function.
func (s *clientSetup) connect(ctx context.Context) (*client.Conn, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	return c, s.loginOn(ctx, c)
}

// dial connects, completes the TLS handshake, which checks the server's
// certificate, and says HELLO (see client.Dialer).
func (s *clientSetup) dial(ctx context.Context) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, client.DefaultLoginTimeout)
	defer cancel()
	return s.dialer.Dial(ctx)
}

// loginOn logs in on a connection made by dial.
func (s *clientSetup) loginOn(ctx context.Context, c *client.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, client.DefaultLoginTimeout)
	defer cancel()
	return c.Login(ctx, s.user, s.password)
}

// login makes the first connection. It connects before it asks for
// anything more, so that a wrong address or an untrusted server is known
// before the password is typed; on a terminal it asks whether to trust a
// server never seen before, then for the password, and again after a
// wrong one, up to passwordTries times.
//
// For chat (offerSignup), on a terminal and a server that offers
// sign-up, a refused login offers to make the account instead, once, and
// /signup typed at the password prompt does so at once (see signUp): the
// connection returned is then logged in as the new account.
func (s *clientSetup) login(ctx context.Context) (*client.Conn, error) {
	c, err := s.dialTrusting(ctx)
	if err != nil {
		return nil, err
	}
	dialed := time.Now()
	// The features of the first connection: the server's offer, known
	// even after a refused login closed the connection.
	offersSignup := s.offerSignup && c.Offers(client.FeatureSignup)
	if s.signup {
		if offersSignup {
			return s.signUpChat(ctx, c, dialed)
		}
		fmt.Fprintf(s.stderr, "messager: %s; log in instead\n", &client.NotOfferedError{Feature: client.FeatureSignup})
	}
	asked := s.password == ""
	offered := false
	for try := 1; ; try++ {
		for asked && s.password == "" {
			if s.password, err = s.promptPassword(fmt.Sprintf("password for %s@%s: ", s.user, s.addr)); err != nil {
				closeConn(c)
				return nil, err
			}
			if !s.offerSignup || s.password != signupCommand {
				break
			}
			s.password = ""
			if offersSignup {
				return s.signUpChat(ctx, c, dialed)
			}
			fmt.Fprintf(s.stderr, "messager: %s\n", &client.NotOfferedError{Feature: client.FeatureSignup})
		}
		if c == nil || time.Since(dialed) > freshConn {
			closeConn(c)
			if c, err = s.dial(ctx); err != nil {
				return nil, err
			}
			dialed = time.Now()
		}
		err = s.loginOn(ctx, c)
		if err == nil {
			return c, nil
		}
		c = nil
		var end *client.EndError
		badLogin := errors.As(err, &end) && end.Reason == protocol.ReasonBadLogin
		final := !asked || !badLogin || try == passwordTries
		if badLogin && offersSignup && !offered {
			offered = true
			fmt.Fprintf(s.stderr, "messager: %s\n", err)
			yes, err := s.askYes(fmt.Sprintf("no account %s here? sign up? [y/N] ", s.user))
			if err != nil {
				return nil, err
			}
			if yes {
				s.password = ""
				return s.signUpChat(ctx, nil, time.Time{})
			}
			if final {
				// Told already.
				return nil, withExitCode(1, nil)
			}
			s.password = ""
			continue
		}
		if final {
			return nil, err
		}
		fmt.Fprintf(s.stderr, "messager: %s; try again\n", err)
		s.password = ""
	}
}

// signUpChat is signUp for chat, which goes on logged in as the new
// account: it says so on the terminal.
func (s *clientSetup) signUpChat(ctx context.Context, c *client.Conn, dialed time.Time) (*client.Conn, error) {
	c, err := s.signUp(ctx, c, dialed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.stderr, "signed up as %s on %s\n", s.user, s.addr)
	return c, nil
}

// closeConn closes c unless it is nil.
func closeConn(c *client.Conn) {
	if c != nil {
		c.Close()
	}
}

// askYes asks a yes-or-no question on the terminal; anything but y or
// yes is no. /signup is a yes too, since the questions it answers offer
// a sign-up.
func (s *clientSetup) askYes(prompt string) (bool, error) {
	answer, err := s.promptLine(prompt)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes", signupCommand:
		return true, nil
	}
	return false, nil
}

// dialTrusting dials, asking on a terminal whether to trust a server
// never seen before.
func (s *clientSetup) dialTrusting(ctx context.Context) (*client.Conn, error) {
	c, err := s.dial(ctx)
	var unknown *trust.UnknownError
	if err == nil || !errors.As(err, &unknown) || !s.terminal {
		return c, err
	}
	fmt.Fprintf(s.stderr, "the server %s is not known yet.\nits certificate fingerprint is %s\n"+
		"compare it with the one the server printed when it started, or that %q prints on the server.\n",
		unknown.Addr, unknown.Fingerprint, fingerprintCommand)
	answer, err := s.promptLine("trust this server and remember it? [y/N] ")
	if err != nil {
		return nil, err
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return nil, errors.New("server not trusted")
	}
	if err := s.verifier.Trust(unknown.Fingerprint); err != nil {
		return nil, err
	}
	fmt.Fprintf(s.stderr, "remembered %s in %s\n", unknown.Addr, s.verifier.KnownServersFile())
	return s.dial(ctx)
}

// promptLine asks for one line on the terminal. It reads byte by byte so
// that nothing typed after the line is taken from the line editor.
func (s *clientSetup) promptLine(prompt string) (string, error) {
	fmt.Fprint(s.stderr, prompt)
	return s.readLine()
}

// errEndOfInput ends a line that readLine could not finish.
var errEndOfInput = errors.New("no answer: end of input")

// readLine reads one line of stdin, byte by byte, without its line end.
// At the end of input it returns what it read, and errEndOfInput.
func (s *clientSetup) readLine() (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := s.stdin.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimRight(string(b), "\r"), nil
			}
			b = append(b, one[0])
			if len(b) > 1024 {
				return "", errors.New("answer too long")
			}
		}
		if err == io.EOF {
			return strings.TrimRight(string(b), "\r"), errEndOfInput
		}
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
	}
}

// promptPassword asks for a password on the terminal without echo.
func (s *clientSetup) promptPassword(prompt string) (string, error) {
	f, ok := s.stdin.(*os.File)
	if !ok {
		return "", errors.New("no terminal to ask for the password")
	}
	fmt.Fprint(s.stderr, prompt)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(s.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(pw), nil
}

// stdioIsTerminal reports whether a command's stream is a terminal.
func stdioIsTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
