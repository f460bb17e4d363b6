package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
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

--server takes one address, or several separated by commas
("a.example:18443,b.example:18443"): the nodes of one service, tried in
turn. The client logs in on the first it can reach, and tells on stderr
which it passed over and why. When a session is lost, it reconnects
starting with the server after the one lost, trying each once a round and
waiting between rounds as it does with a single server; the notice names
the server it is back on. A refused login, END <logged in elsewhere> and
END <user already online> are final on every server. A host without a
port gets 18443; an empty address, an address listed twice or a colon
without a port is a usage error.

Each server's certificate is trusted on first use and remembered in the
known_servers file of the user's configuration directory, under its own
address; see --ca, --fingerprint, --trust-new and --insecure. --ca and
--fingerprint apply to every server; --fingerprint takes several
fingerprints, comma separated, and a certificate with any of them passes.

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

// connectFlags are the flags shared by chat, send, who and signup: where
// to connect, as whom, and how to trust the server.
type connectFlags struct {
	server, user, ca, fingerprint string
	trustNew, insecure            bool
	checkInterval                 time.Duration
	// offerSignup lets the login make an account on a terminal (chat
	// only; see clientSetup.login).
	offerSignup bool
}

func (f *connectFlags) register(cmd *cobra.Command) {
	f.registerServer(cmd)
	cmd.Flags().StringVar(&f.user, "user", "", "log in as `NAME` (default $"+envUser+", or asked)")
	f.registerTrust(cmd)
}

// registerServer registers --server.
func (f *connectFlags) registerServer(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "",
		"the server's `HOST:PORT`, or several, comma separated, tried in turn (default "+defaultServer+", or $"+envServer+")")
}

// registerTrust registers the flags that say how to trust the server.
func (f *connectFlags) registerTrust(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.ca, "ca", "", "verify the server against the certificates in `FILE` (e.g. the server's cert.pem)")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "require a server certificate with this `sha256:HEX` fingerprint, or one of several, comma separated")
	fs.BoolVar(&f.trustNew, "trust-new", false, "trust and remember a server seen for the first time without asking")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate (unsafe)")
}

// clientSetup is a resolved list of servers, user, password and
// verifiers.
type clientSetup struct {
	user, password string
	// addrs are the servers' addresses, in the order to try them.
	addrs []string
	// verifiers check each address's certificate, by address.
	verifiers map[string]*trust.Verifier
	// trustNotices passes the verifiers' notices on (see noticeSink).
	trustNotices *noticeSink
	options      client.Options
	stdin        io.Reader
	stderr       io.Writer
	terminal     bool
	// servers make every connection of the run, one Dialer an address,
	// so that a server found to speak only version 1 is not asked for
	// version 2 again, and a reconnection starts with the address after
	// the one lost.
	servers *client.Servers

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
// terminal, the options and the servers' addresses.
func (f *connectFlags) start(cmd *cobra.Command) (*clientSetup, error) {
	s := &clientSetup{stdin: cmd.InOrStdin(), stderr: cmd.ErrOrStderr()}
	s.trustNotices = &noticeSink{w: s.stderr}
	if f.checkInterval < 0 {
		return nil, usageError(errors.New("--check-interval must not be negative"))
	}
	s.options.CheckInterval = f.checkInterval
	s.terminal = stdioIsTerminal(s.stdin)
	s.offerSignup = f.offerSignup && s.terminal

	server, from := f.server, "--server"
	if server == "" {
		server, from = os.Getenv(envServer), "$"+envServer
	}
	if server == "" {
		server = defaultServer
	}
	addrs, err := client.ParseServers(server)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", from, err))
	}
	s.addrs = addrs
	if f.fingerprint != "" {
		// Checked again by the verifiers; here a slip in the list is a
		// usage error, told before any prompt.
		if _, err := trust.ParseFingerprints(f.fingerprint); err != nil {
			return nil, usageError(fmt.Errorf("--fingerprint: %w", err))
		}
	}
	return s, nil
}

// trust sets up the verification of each server's certificate and the
// dialers that use it.
func (f *connectFlags) trust(s *clientSetup) error {
	verifiers, err := trust.NewList(s.addrs, trust.Options{
		CAFile:      f.ca,
		Fingerprint: f.fingerprint,
		TrustNew:    f.trustNew,
		Insecure:    f.insecure,
		Notices:     s.trustNotices,
	})
	if err != nil {
		return err
	}
	s.verifiers = make(map[string]*trust.Verifier, len(s.addrs))
	dialers := make([]*client.Dialer, len(s.addrs))
	for i, addr := range s.addrs {
		s.verifiers[addr] = verifiers[i]
		dialers[i] = &client.Dialer{Addr: addr, TLSConfig: verifiers[i].TLSConfig(), Options: s.options}
	}
	s.servers = client.NewServers(dialers...)
	return nil
}

// addr is the address of the server connected to last, or of the first
// one before any.
func (s *clientSetup) addr() string {
	if addr := s.servers.Last(); addr != "" {
		return addr
	}
	return s.addrs[0]
}

// serverList is the list of servers as the --server flag takes it.
func (s *clientSetup) serverList() string { return strings.Join(s.addrs, ",") }

// connect is the chat's reconnect function: one round over the servers,
// starting with the one after the server lost, logging in on the first
// that takes the connection. notice shows the servers passed over, and
// the servers trusted on first use, among the session's notices.
func (s *clientSetup) connect(ctx context.Context, notice func(string)) (*client.Conn, error) {
	s.trustNotices.divert(notice)
	defer s.trustNotices.divert(nil)
	return s.servers.Connect(ctx, client.Round{
		Login:  s.loginOn,
		Report: func(f *client.Failure) { notice(failureText(f)) },
	})
}

// failureText describes a server passed over, and which one comes next.
func failureText(f *client.Failure) string {
	if f.Next == "" {
		return f.Error()
	}
	return f.Error() + "; trying " + f.Next
}

// dial connects, completes the TLS handshake, which checks the server's
// certificate, and says HELLO (see client.Dialer): to the server of the
// last connection, or to the first of the list, and to the next ones in
// turn when it cannot. On a terminal it asks whether to trust a server
// never seen before. A server passed over is told on stderr, with why;
// when none could be used the error is the last one's.
func (s *clientSetup) dial(ctx context.Context) (*client.Conn, error) {
	r := client.Round{
		Stay: true,
		Report: func(f *client.Failure) {
			if f.Next != "" {
				// The last one's failure is the error.
				fmt.Fprintf(s.stderr, "messager: %s\n", client.EscapeLines(failureText(f)))
			}
		},
	}
	if s.terminal {
		r.Again = s.trustAsked
	}
	c, err := s.servers.Connect(ctx, r)
	var none *client.ServersError
	if errors.As(err, &none) {
		return nil, none.Last()
	}
	return c, err
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
	c, err := s.dial(ctx)
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
			if s.password, err = s.promptPassword(fmt.Sprintf("password for %s@%s: ", s.user, s.addr())); err != nil {
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
		lost := c.Addr()
		c = nil
		if s.servers.Len() > 1 && client.Retryable(err) {
			// This server is shutting down, full, or went away after
			// the handshake: another one may take the login.
			return s.loginElsewhere(ctx, &client.Failure{Addr: lost, Err: err})
		}
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

// loginElsewhere logs in on the other servers, in turn, after the login
// failed on one of them for a reason that may pass there (failed): the
// round starts with the server after it and ends with it.
func (s *clientSetup) loginElsewhere(ctx context.Context, failed *client.Failure) (*client.Conn, error) {
	fmt.Fprintf(s.stderr, "messager: %s; trying the other servers\n", client.EscapeLines(failed.Error()))
	r := client.Round{
		Login: s.loginOn,
		Report: func(f *client.Failure) {
			if f.Next != "" {
				fmt.Fprintf(s.stderr, "messager: %s\n", client.EscapeLines(failureText(f)))
			}
		},
	}
	if s.terminal {
		r.Again = s.trustAsked
	}
	c, err := s.servers.Connect(ctx, r)
	var none *client.ServersError
	if errors.As(err, &none) {
		return nil, none.Last()
	}
	return c, err
}

// signUpChat is signUp for chat, which goes on logged in as the new
// account: it says so on the terminal.
func (s *clientSetup) signUpChat(ctx context.Context, c *client.Conn, dialed time.Time) (*client.Conn, error) {
	c, err := s.signUp(ctx, c, dialed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.stderr, "signed up as %s on %s\n", s.user, c.Addr())
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

// trustAsked is told of a server that could not be connected to (see
// client.Round.Again). When it is a server never seen before, it asks on
// the terminal whether to trust it, remembers it when the answer is yes
// (and the server is dialled again), and ends the round when it is no.
func (s *clientSetup) trustAsked(addr string, err error) (bool, error) {
	var unknown *trust.UnknownError
	v := s.verifiers[addr]
	if !errors.As(err, &unknown) || v == nil {
		return false, nil
	}
	fmt.Fprintf(s.stderr, "the server %s is not known yet.\nits certificate fingerprint is %s\n"+
		"compare it with the one the server printed when it started, or that %q prints on the server.\n",
		client.Escape(unknown.Addr), unknown.Fingerprint, fingerprintCommand)
	answer, err := s.promptLine("trust this server and remember it? [y/N] ")
	if err != nil {
		return false, err
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return false, errors.New("server not trusted")
	}
	if err := v.Trust(unknown.Fingerprint); err != nil {
		return false, err
	}
	fmt.Fprintf(s.stderr, "remembered %s in %s\n", client.Escape(unknown.Addr), v.KnownServersFile())
	return true, nil
}

// noticeSink takes the verifiers' notices (a server trusted on first
// use) and writes them to stderr, or, while a chat session reconnects,
// passes them to its notices: the session may be showing a line editor
// in raw mode, where a line written to stderr would break the display.
type noticeSink struct {
	w io.Writer

	mu     sync.Mutex
	notice func(string)
}

// divert sends the notices to notice from now on, or back to stderr when
// it is nil.
func (n *noticeSink) divert(notice func(string)) {
	n.mu.Lock()
	n.notice = notice
	n.mu.Unlock()
}

// Write takes one or more whole lines, each with the program's prefix,
// which a session's notice does not need.
func (n *noticeSink) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.notice == nil {
		return n.w.Write(p)
	}
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		n.notice(strings.TrimPrefix(line, "messager: "))
	}
	return len(p), nil
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
