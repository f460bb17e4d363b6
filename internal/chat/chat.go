// Package chat is the terminal front end of messager, on top of
// internal/client. On a terminal it runs a line editor with history, shows
// incoming messages above the line being typed without disturbing it, and
// takes commands (/to, /who, /watch, /join, /part, /quit, /help; /signup
// belongs to the login, before the session). With
// stdin not a terminal it is a pipe: every input line is one message,
// received messages go to stdout as text or JSON lines, and the end of
// input ends the session cleanly.
//
// A session remembers the groups it joined and the users it watches, and
// asks for them again after it reconnects. It reconnects through the
// front end's Connect, which may try several servers (the nodes of a
// cluster) in turn, and names the server it got back to.
package chat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chzyer/readline"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
)

// Config is what Run needs.
type Config struct {
	// Conn is the first connection, already logged in.
	Conn *client.Conn
	// Connect dials and logs in again after the connection drops; nil
	// disables reconnecting. It is called once a round of attempts, with
	// the backoff's wait before each (see client.Reconnect), so one call
	// may try several servers in turn (see client.Servers.Connect); notice
	// shows a line among the session's notices, escaped, so that it can
	// tell which servers it passed over and why.
	Connect func(ctx context.Context, notice func(string)) (*client.Conn, error)
	// Backoff paces reconnection attempts; nil means the defaults.
	Backoff *client.Backoff
	// To is the first target, a user or a group ("#team"); empty asks
	// for one (interactive) or is an error (pipe mode). A group is joined.
	To string
	// Join lists groups to join at the start ("#team"), and Watch users
	// whose coming and going to be told of. Both are asked for again
	// after a reconnection.
	Join, Watch []string
	// Interactive runs the line editor on the process's terminal (stdin
	// and Stdout). Otherwise Stdin is read as a pipe.
	Interactive bool
	// Color shows each sender's name in its colour (interactive only).
	Color bool
	// JSON writes received messages, notices and errors as JSON lines
	// on Stdout (pipe mode only).
	JSON bool
	// Stdin is the pipe-mode input.
	Stdin io.Reader
	// Stdout receives messages; Stderr receives notices in pipe mode.
	Stdout, Stderr io.Writer
	// QuitTimeout bounds the wait for END <end accepted> after /quit;
	// zero means 5 s. Pipe mode waits as long as the connection lives,
	// because its exit status says whether every line was handled.
	QuitTimeout time.Duration
}

// Results of pipe mode that are not failures of the session: every line
// was handled, and each of these was reported as it happened.
var (
	// ErrNotSent: some input lines could not be sent (too long, control
	// characters).
	ErrNotSent = errors.New("some lines were not sent")
	// ErrNotOnline: every line was sent, but the target of some was not
	// online, or the server refused them (FAIL MSG: not a member of the
	// group), so they were not delivered.
	ErrNotOnline = errors.New("some lines were not delivered: the target was not online")
	// ErrRefused: every line was delivered, but the server refused to
	// let the session join a group or watch a user.
	ErrRefused = errors.New("the server refused a group or a watch")
)

// Run runs a chat session until the user quits, the input ends, or the
// server ends the session for good. It returns nil after /quit or a
// confirmed end of input, an *client.EndError when the server ended the
// session, and other errors when the connection was lost for good. At
// the end of input, pipe mode returns ErrNotSent when some line could not
// be sent, or else ErrNotOnline when some line was not delivered, or else
// ErrRefused when a group or a watch was refused. Pipe mode fails at once,
// with a *client.NotOfferedError, when the server does not offer groups
// or presence and the target, Join or Watch need them.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Conn == nil {
		return errors.New("chat: no connection")
	}
	if cfg.QuitTimeout <= 0 {
		cfg.QuitTimeout = 5 * time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = &client.Backoff{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{
		cfg:     cfg,
		mem:     newMemory(),
		user:    cfg.Conn.User(),
		to:      cfg.To,
		conn:    cfg.Conn, // usable before the receive loop starts
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		cancel:  cancel,
	}
	if cfg.Interactive {
		return s.interactive(ctx)
	}
	return s.pipe(ctx)
}

// session holds the state shared by the receive loop, which owns the
// connection's life, and the input loop, which sends.
type session struct {
	cfg    Config
	out    *output
	mem    *memory
	user   string
	to     string // used only by the input loop
	cancel context.CancelFunc

	mu      sync.Mutex
	conn    *client.Conn  // nil while reconnecting
	changed chan struct{} // closed and replaced when conn changes

	quitting  atomic.Bool
	notOnline atomic.Bool   // some message was answered with CNT or FAIL MSG
	refused   atomic.Bool   // a JOIN or a WATCH was answered with FAIL
	done      chan struct{} // closed when the receive loop ends
	err       error         // the loop's result, set before done closes
}

// setConn makes c the session's connection, or none when c is nil. It
// refuses a new connection, reporting false, when the user quit while
// the session had none: quit found nothing to end, stopped the
// reconnection and waits for the loop to end, and a connection made just
// then must not keep the loop receiving.
func (s *session) setConn(c *client.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c != nil && s.conn == nil && s.quitting.Load() {
		return false
	}
	s.conn = c
	close(s.changed)
	s.changed = make(chan struct{})
	return true
}

func (s *session) current() *client.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// waitConn returns the connection, waiting while the loop reconnects. It
// returns nil when the loop has ended or ctx is done.
func (s *session) waitConn(ctx context.Context) *client.Conn {
	for {
		s.mu.Lock()
		c, changed := s.conn, s.changed
		s.mu.Unlock()
		if c != nil {
			return c
		}
		select {
		case <-changed:
		case <-s.done:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// loop receives events and keeps the session connected: it reconnects
// after a drop unless the user is quitting or the server ended the session
// for a reason another login would not fix.
func (s *session) loop(ctx context.Context) {
	defer close(s.done)
	conn := s.cfg.Conn
	s.cfg.Backoff.Up()
	for {
		if !s.setConn(conn) {
			conn.Close()
			s.err = nil
			return
		}
		err := s.receive(conn)
		s.setConn(nil)
		conn.Close()
		if s.quitting.Load() || !s.reconnectAfter(err) {
			s.err = err
			return
		}
		s.out.notice("connection lost: %s; reconnecting", client.Escape(err.Error()))
		connect := func(ctx context.Context) (*client.Conn, error) { return s.cfg.Connect(ctx, s.connectNotice) }
		conn, err = client.Reconnect(ctx, s.cfg.Backoff, connect, func(err error, wait time.Duration) {
			var none *client.ServersError
			if errors.As(err, &none) {
				// Connect told which servers failed, and why, once each.
				s.out.notice("no server could be used; trying again in %s", wait.Round(100*time.Millisecond))
				return
			}
			s.out.notice("cannot connect: %s; trying again in %s", client.Escape(err.Error()), wait.Round(100*time.Millisecond))
		})
		if err != nil {
			if s.quitting.Load() && ctx.Err() != nil {
				s.err = nil
			} else {
				s.err = fmt.Errorf("reconnect: %w", err)
			}
			return
		}
		// The server may be another one of the list than before.
		s.out.notice("reconnected to %s as %s", client.Escape(conn.Addr()), client.Escape(conn.User()))
		// Before the input loop can send on it: a group message must
		// not overtake the group's JOIN.
		s.begin(conn, false)
	}
}

// connectNotice shows a notice of Connect, escaped: it may quote what a
// server said. An error that explains itself over several lines (a
// server not known yet, a changed certificate) keeps its lines, each
// marked as a notice's.
func (s *session) connectNotice(text string) {
	text = client.EscapeLines(text)
	if !s.out.json {
		text = strings.ReplaceAll(text, "\n", "\n* ")
	}
	s.out.notice("%s", text)
}

// receive shows the events of one connection until it ends; nil means the
// server accepted our END.
func (s *session) receive(conn *client.Conn) error {
	for {
		ev, err := conn.Receive()
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case client.Relay:
			s.out.relay(ev)
		case client.NotOnline:
			s.notOnline.Store(true)
			s.out.notOnline(ev.Name())
		case client.End:
			return ev.Err()
		default:
			s.handle(ev)
		}
	}
}

// reconnectAfter reports whether a lost connection is worth logging in
// again: not after END <logged in elsewhere> (another client of this user
// took over), a removed account or a protocol error.
func (s *session) reconnectAfter(err error) bool {
	if err == nil || s.cfg.Connect == nil {
		return false
	}
	var end *client.EndError
	if errors.As(err, &end) {
		if end.ProtocolError {
			return false
		}
		switch end.Reason {
		case protocol.ReasonShuttingDown, protocol.ReasonTooSlow, protocol.ReasonTimeout,
			protocol.ReasonServerFull, protocol.ReasonTooManyConns:
			return true
		}
		return false
	}
	return client.Retryable(err)
}

// quit ends the session: END, then the wait for END <end accepted> (or
// for the loop to give up), bounded by timeout when it is not zero.
func (s *session) quit(timeout time.Duration) {
	// Under the lock, so that a connection the loop makes meanwhile is
	// either seen here and ended, or refused by setConn.
	s.mu.Lock()
	s.quitting.Store(true)
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		// Reconnecting: stop that, there is nothing to end.
		s.cancel()
		<-s.done
		return
	}
	if err := c.SendEnd(); err != nil {
		c.Close()
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-s.done:
	case <-expired:
		s.out.notice("no answer from the server; closing")
		s.cancel()
		c.Close()
		<-s.done
	}
}

// pipe runs the non-interactive session: every input line is a message to
// the target; the end of input ends the session.
func (s *session) pipe(ctx context.Context) error {
	s.out = &output{msgs: s.cfg.Stdout, notices: s.cfg.Stderr, json: s.cfg.JSON, short: true}
	if s.to == "" {
		s.cfg.Conn.Close()
		return errors.New("no target: use --to NAME when stdin is not a terminal")
	}
	if err := s.checkPipe(s.cfg.Conn); err != nil {
		s.cfg.Conn.Close()
		return err
	}
	// Before any line: a group message must not overtake its JOIN.
	s.begin(s.cfg.Conn, true)
	go s.loop(ctx)

	type input struct {
		text  string
		more  bool // more input is buffered: flush later
		n     int
		err   error
		final bool
	}
	lines := make(chan input)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		br := bufio.NewReaderSize(s.cfg.Stdin, 64<<10)
		for n := 1; ; n++ {
			text, err := br.ReadString('\n')
			in := input{text: strings.TrimRight(text, "\r\n"), more: br.Buffered() > 0, n: n}
			if err != nil {
				in.final = true
				if err != io.EOF {
					in.err = err
				}
			}
			select {
			case lines <- in:
			case <-stop:
				return
			}
			if in.final {
				return
			}
		}
	}()

	notSent := false
	for {
		var in input
		select {
		case in = <-lines:
		case <-s.done:
			// The server ended the session before the input did.
			if s.err == nil {
				return errors.New("connection ended before the end of input")
			}
			return s.err
		}
		if in.text != "" {
			if !s.sendLine(ctx, in.text, in.n, in.more) {
				notSent = true
			}
		}
		if in.final {
			if in.err != nil {
				s.out.failure(0, "reading input: %v", in.err)
				notSent = true
			}
			s.quit(0)
			switch {
			case s.err != nil:
				return s.err
			case notSent:
				return ErrNotSent
			case s.notOnline.Load():
				return ErrNotOnline
			case s.refused.Load():
				return ErrRefused
			}
			return nil
		}
	}
}

// sendLine queues one pipe-mode line, flushing unless more input is
// already waiting; it reports whether the line was accepted for sending.
func (s *session) sendLine(ctx context.Context, text string, n int, more bool) bool {
	for {
		c := s.waitConn(ctx)
		if c == nil {
			return false
		}
		err := c.Queue(s.to, text)
		if errors.Is(err, client.ErrClosed) {
			// The connection dropped under us; the loop is reconnecting.
			continue
		}
		if err != nil {
			s.out.failure(n, "line %d not sent: %v", n, err)
			return false
		}
		if !more {
			// A failed flush means a dropped connection, which the
			// receive loop notices and reports.
			_ = c.Flush()
		}
		return true
	}
}

// checkPipe checks, before anything is sent, that the pipe's target is
// valid and that the server offers what the target, Join and Watch need;
// a group target is joined with the others.
func (s *session) checkPipe(c *client.Conn) error {
	if strings.HasPrefix(s.to, "#") {
		if !protocol.ValidGroupString(s.to) {
			return &client.GroupError{Group: s.to}
		}
		if !c.Offers(client.FeatureGroups) {
			return fmt.Errorf("--to %s: %w", s.to, &client.NotOfferedError{Feature: client.FeatureGroups})
		}
		s.mem.addGroup(s.to)
	} else if !protocol.ValidNameString(s.to) {
		return &client.NameError{Name: s.to}
	}
	if len(s.cfg.Join) > 0 && !c.Offers(client.FeatureGroups) {
		return fmt.Errorf("--join: %w", &client.NotOfferedError{Feature: client.FeatureGroups})
	}
	if len(s.cfg.Watch) > 0 && !c.Offers(client.FeaturePresence) {
		return fmt.Errorf("--watch: %w", &client.NotOfferedError{Feature: client.FeaturePresence})
	}
	return nil
}

// helpText lists the interactive commands.
const helpText = `commands:
  /to NAME          send to NAME from now on
  /to #GROUP        send to GROUP from now on, joining it
  /join #GROUP...   join groups; their messages show as "#team alice: text"
  /part [#GROUP]    leave a group (the one you send to, by default)
  /who [MASK]       who is online: everyone, a NAME, a start like al*, or a #GROUP
  /watch NAME...    be told when these users come and go; alone, the list
  /unwatch NAME...  stop watching them (/unwatch * stops watching anyone)
  /signup           make an account on a server that offers sign-up: type it
                    at the user or password prompt, before logging in
  /quit             end the session (Ctrl-D does the same)
  /help             show this list
  //text            send a message that starts with "/"`

// interactive runs the session on a terminal with a line editor.
func (s *session) interactive(ctx context.Context) error {
	raw := &heldRaw{fd: readline.GetStdin()}
	defer raw.restore()
	rl, err := readline.NewEx(&readline.Config{
		Prompt:       s.prompt(),
		HistoryLimit: 1000,
		// The sent line is shown again in the chat's own format.
		UniqueEditLine:      true,
		InterruptPrompt:     "^C",
		EOFPrompt:           "\n",
		Stdout:              s.cfg.Stdout,
		Stderr:              s.cfg.Stdout,
		FuncMakeRaw:         raw.enter,
		FuncExitRaw:         raw.exit,
		FuncFilterInputRune: raw.filter,
	})
	if err != nil {
		s.cfg.Conn.Close()
		return fmt.Errorf("start the line editor: %w", err)
	}
	defer rl.Close()
	// Raw from now on: what is typed before the first prompt is not
	// echoed either.
	raw.enter()
	w := termWriter{rl: rl, w: rl.Stdout()}
	s.out = &output{msgs: w, notices: w, color: s.cfg.Color}
	s.out.notice("logged in to %s as %s; /help lists the commands", client.Escape(s.cfg.Conn.Addr()), client.Escape(s.user))
	if s.to != "" && !s.firstTarget() {
		s.to = ""
	}
	s.begin(s.cfg.Conn, true)
	go s.loop(ctx)
	go func() {
		// A session the server ended stops the editor.
		<-s.done
		rl.Close()
	}()

	for s.to == "" {
		rl.SetPrompt("send to: ")
		line, err := rl.Readline()
		if s.ended() {
			return s.endedBy(rl)
		}
		if err != nil {
			if errors.Is(err, readline.ErrInterrupt) && line != "" {
				continue
			}
			s.quitEditor(rl, err)
			return nil
		}
		if s.target(line) {
			s.quit(s.cfg.QuitTimeout)
			return nil
		}
	}
	rl.SetPrompt(s.prompt())

	for {
		line, err := rl.Readline()
		if s.ended() {
			return s.endedBy(rl)
		}
		if errors.Is(err, readline.ErrInterrupt) && line != "" {
			// Ctrl-C on a typed line drops the line.
			continue
		}
		if err != nil {
			// Ctrl-C on an empty line, Ctrl-D, or the terminal went away.
			s.quitEditor(rl, err)
			return nil
		}
		if s.command(rl, line) {
			return nil
		}
	}
}

// targetHelp is the help of the "send to:" prompt.
const targetHelp = `type the name of the user to send to, or a #group to join and send to, then chat:
  /who [MASK]  who is online (everyone, a NAME, a start like al*, or a #GROUP)
  /quit        end the session (Ctrl-D does the same)
  /help        show this list`

// target handles a line typed at the "send to:" prompt: a name becomes
// the target, anything else is explained. It reports whether the user
// quit.
func (s *session) target(line string) bool {
	name := strings.TrimSpace(line)
	if word, arg, _ := strings.Cut(name, " "); word == "/to" {
		name = strings.TrimSpace(arg)
	}
	switch {
	case name == "":
	case name == "/quit" || name == "/exit":
		return true
	case name == "/help":
		s.out.notice("%s", strings.ReplaceAll(targetHelp, "\n", "\n* "))
	case strings.HasPrefix(name, "/"):
		word, arg, _ := strings.Cut(name, " ")
		if !s.v2Command(word, strings.TrimSpace(arg)) {
			s.out.notice("unknown command %s; type a user name, /help or /quit", client.Escape(word))
		}
	default:
		s.setTarget(name)
	}
	return false
}

// quitEditor ends the session after the line editor stopped with err:
// after Ctrl-C the prompt is still on the screen, so the line is ended,
// and the shell's prompt does not land on it.
func (s *session) quitEditor(rl *readline.Instance, err error) {
	if errors.Is(err, readline.ErrInterrupt) {
		s.cfg.Stdout.Write([]byte("^C\n"))
	}
	s.quit(s.cfg.QuitTimeout)
}

// endedBy returns the receive loop's result once the server ended the
// session, with the line editor's prompt cleared, so that what follows
// (the reason, the shell's prompt) starts a line of its own.
func (s *session) endedBy(rl *readline.Instance) error {
	rl.Clean()
	return s.err
}

// ended reports whether the receive loop has ended by itself.
func (s *session) ended() bool {
	if s.quitting.Load() {
		return false
	}
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) prompt() string {
	if s.to == "" {
		return "> "
	}
	return "[to " + s.to + "] "
}

// command handles one typed line; it reports whether the user quit.
func (s *session) command(rl *readline.Instance, line string) bool {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return false
	}
	if strings.HasPrefix(trimmed, "/") && !strings.HasPrefix(trimmed, "//") {
		word, arg, _ := strings.Cut(trimmed, " ")
		arg = strings.TrimSpace(arg)
		switch word {
		case "/quit", "/exit":
			s.quit(s.cfg.QuitTimeout)
			return true
		case "/help":
			s.out.notice("%s", strings.ReplaceAll(helpText, "\n", "\n* "))
		case "/to":
			switch {
			case arg == "":
				s.out.notice("sending to %s", s.to)
			case s.setTarget(arg):
				rl.SetPrompt(s.prompt())
				s.out.notice("sending to %s", s.to)
			}
		default:
			if !s.v2Command(word, arg) {
				s.out.notice("unknown command %s; /help lists the commands", client.Escape(word))
			}
		}
		return false
	}
	if strings.HasPrefix(line, "//") {
		line = line[1:]
	}
	c := s.current()
	if c == nil {
		s.out.notice("not connected, message not sent; reconnecting")
		return false
	}
	if err := c.Send(s.to, line); err != nil {
		s.out.notice("message not sent: %v", err)
		return false
	}
	s.out.sent(time.Now(), s.user, s.to, strings.TrimRight(line, " \t"))
	return false
}
