// Package client is the connection API a messager front end uses: dial a
// server over TLS, log in, send messages and receive what the server sends,
// as typed events.
//
// A Conn has one receiving side and one sending side. Receive must be
// called from one goroutine at a time; Queue, Send, Flush and SendEnd may be
// called from another goroutine at the same time. Close may be called from
// anywhere.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Defaults of a connection.
const (
	// DefaultCheckInterval is how often a server sends CHECK unless it is
	// configured otherwise.
	DefaultCheckInterval = 30 * time.Second
	// SilentChecks is how many check intervals of silence make a connection
	// count as dead.
	SilentChecks = 3
	// DefaultWriteTimeout bounds every write to the server.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultLoginTimeout bounds the handshake and the login when the
	// caller's context has no deadline. The server allows 10 s.
	DefaultLoginTimeout = 10 * time.Second
)

// Errors of a connection.
var (
	// ErrSilent reports that nothing came from the server for SilentChecks
	// check intervals: the connection is treated as dead.
	ErrSilent = errors.New("server silent for too long, connection presumed dead")
	// ErrClosed reports use of a connection after Close or after the
	// session ended.
	ErrClosed = errors.New("connection closed")
	// ErrNotLoggedIn reports a send before a successful Login.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrEmptyMessage reports a message with nothing but spaces in it.
	ErrEmptyMessage = errors.New("empty message")
	// ErrControlCharacter reports a message holding a control character
	// other than TAB, which the protocol forbids.
	ErrControlCharacter = errors.New("message holds a control character")
)

// EndError reports that the server ended the session with END: a refused
// login, or any other reason the server gave.
type EndError struct {
	// Reason is the server's reason, without angle brackets, as sent:
	// escape it before showing it (Error does).
	Reason string
	// ProtocolError is set when the server said the client broke the
	// protocol (END * <reason>).
	ProtocolError bool
	// Login is set when the END answered AUTH: the login was refused.
	Login bool
}

// Error describes the END with the server's reason escaped (see Escape),
// so that the message is safe to print.
func (e *EndError) Error() string {
	reason := Escape(e.Reason)
	if e.Login {
		return "login refused: " + reason
	}
	if e.ProtocolError {
		return "server ended the session (protocol error): " + reason
	}
	return "server ended the session: " + reason
}

// Refused reports whether the END refused a login for good: wrong
// credentials, too many attempts, or a protocol error. Other reasons
// (shutting down, server full) may pass if tried again later.
func (e *EndError) Refused() bool {
	if e.ProtocolError {
		return true
	}
	switch e.Reason {
	case protocol.ReasonBadLogin, protocol.ReasonTooManyAttempts, protocol.ReasonAccountRemoved:
		return true
	}
	return false
}

// TooLongError reports a message whose MSG line would exceed the
// protocol's line limit; it is refused before anything is sent.
type TooLongError struct {
	// Len is the length the MSG line would have, terminator included.
	Len int
	// MaxText is the longest text that fits for this target and sender.
	MaxText int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("message too long: the line would be %d bytes, the limit is %d (at most %d bytes of text to this user)",
		e.Len, protocol.MaxLine, e.MaxText)
}

// NameError reports a target that is not a valid username.
type NameError struct{ Name string }

func (e *NameError) Error() string {
	return fmt.Sprintf("%q is not a valid username (1 to %d characters from A-Z a-z 0-9 _ . -)", e.Name, protocol.MaxNameLen)
}

// Options tune a connection. The zero value is the protocol's defaults.
type Options struct {
	// CheckInterval is the server's CHECK interval; a connection on which
	// nothing arrives for SilentChecks intervals is dead. Zero means
	// DefaultCheckInterval, a negative value disables the watchdog.
	CheckInterval time.Duration
	// WriteTimeout bounds each write; zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Now returns the current time, for events; nil means time.Now.
	Now func() time.Time
}

// Conn is a connection to a messager server.
type Conn struct {
	nc   net.Conn
	addr string
	opts Options

	r *protocol.Reader // used only by the receiving goroutine

	wmu        sync.Mutex // guards w, user, lastTarget and the write deadline
	w          *bufio.Writer
	user       string
	lastTarget string
	buf        []byte

	checks   atomic.Int64
	ignored  atomic.Int64
	ended    atomic.Bool
	closed   atomic.Bool
	lastSeen atomic.Int64 // unix nanoseconds of the last line received
}

// Dial connects to addr ("host:port") over TLS with config, completing the
// handshake before it returns. When config has no ServerName, the host of
// addr is used. The handshake is bounded by ctx, or by DefaultLoginTimeout
// when ctx has no deadline.
func Dial(ctx context.Context, addr string, config *tls.Config) (*Conn, error) {
	return DialOptions(ctx, addr, config, Options{})
}

// DialOptions is Dial with options.
func DialOptions(ctx context.Context, addr string, config *tls.Config, opts Options) (*Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLoginTimeout)
		defer cancel()
	}
	if config == nil {
		config = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if config.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		config = config.Clone()
		config.ServerName = host
	}
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: config}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return newConn(nc, addr, opts), nil
}

// NewConn wraps an established connection, for tests and for transports
// other than TLS.
func NewConn(nc net.Conn, opts Options) *Conn {
	return newConn(nc, nc.RemoteAddr().String(), opts)
}

func newConn(nc net.Conn, addr string, opts Options) *Conn {
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Conn{
		nc:   nc,
		addr: addr,
		opts: opts,
		r:    protocol.NewReader(nc, protocol.MaxServerLine),
		// Big enough for several full MSG lines, so pipe mode coalesces
		// many messages into one TLS record.
		w: bufio.NewWriterSize(nc, 16<<10),
	}
	c.lastSeen.Store(opts.Now().UnixNano())
	return c
}

// Addr returns the address the connection was dialled to.
func (c *Conn) Addr() string { return c.addr }

// User returns the name logged in as, or "" before Login succeeds.
func (c *Conn) User() string {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.user
}

// ConnectionState returns the TLS state, when the connection is TLS.
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.nc.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// Login sends AUTH and waits for the server's answer. A refused login
// returns an *EndError carrying the server's reason, and the connection is
// closed; a network failure returns a wrapped network error. Login is
// bounded by ctx, or by DefaultLoginTimeout when ctx has no deadline.
func (c *Conn) Login(ctx context.Context, user, password string) error {
	if !protocol.ValidNameString(user) {
		return &NameError{Name: user}
	}
	if !protocol.ValidPassword([]byte(password)) {
		return fmt.Errorf("login: the password must be 1 to %d bytes without spaces or control characters", protocol.MaxPasswordLen)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultLoginTimeout)
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	// Cancelling ctx interrupts the blocked read by moving the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.wmu.Lock()
	c.buf = protocol.AppendAuth(c.buf[:0], user, password)
	_, err := c.w.Write(c.buf)
	if err == nil {
		err = c.w.Flush()
	}
	clear(c.buf) // the password must not linger
	c.wmu.Unlock()
	if err != nil {
		return c.loginError(ctx, fmt.Errorf("login: send: %w", err))
	}

	for {
		raw, err := c.r.ReadLine()
		if err != nil {
			return c.loginError(ctx, fmt.Errorf("login: %w", readError(err)))
		}
		line := protocol.TrimLine(raw)
		if len(line) == 0 {
			continue
		}
		c.seen()
		sl, err := protocol.ParseServerLine(line)
		if err != nil {
			c.ignored.Add(1)
			continue
		}
		switch sl.Kind {
		case protocol.KindAccept:
			if string(sl.User) != user {
				c.Close()
				return fmt.Errorf("login: server accepted %q instead of %q", sl.User, user)
			}
			c.wmu.Lock()
			c.user = user
			c.wmu.Unlock()
			if err := c.nc.SetDeadline(time.Time{}); err != nil {
				return fmt.Errorf("login: %w", err)
			}
			return nil
		case protocol.KindEnd:
			c.ended.Store(true)
			c.Close()
			return &EndError{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError, Login: true}
		case protocol.KindCheck:
			c.checks.Add(1)
		default:
			c.ignored.Add(1)
		}
	}
}

// loginError closes the connection after a failed login and prefers the
// context's error when it caused the failure.
func (c *Conn) loginError(ctx context.Context, err error) error {
	c.Close()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("login: %w", ctxErr)
	}
	// The read deadline is the context's deadline, and may pass a moment
	// before the context notices.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("login: %w", context.DeadlineExceeded)
	}
	return err
}

// readError turns the end of the stream into a clear error.
func readError(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("server closed the connection")
	case errors.Is(err, protocol.ErrLineTooLong):
		return fmt.Errorf("server sent a line longer than %d bytes", protocol.MaxServerLine)
	}
	return err
}

// CheckText reports whether text can be sent to target by sender, and why
// not: an empty message, a control character, or a line that would be too
// long. Trailing spaces and tabs are not counted, because the server
// removes them.
func CheckText(target, sender, text string) error {
	text = strings.TrimRight(text, " \t")
	if text == "" {
		return ErrEmptyMessage
	}
	if !protocol.ValidText([]byte(text)) {
		return ErrControlCharacter
	}
	if n := protocol.MsgLen(target, sender, text); n > protocol.MaxLine {
		return &TooLongError{Len: n, MaxText: protocol.MaxLine - protocol.MsgLen(target, sender, "")}
	}
	return nil
}

// Queue appends a message to target to the send buffer without flushing
// it, so that many messages share a write; Flush sends them. It refuses,
// sending nothing, a message that is empty, holds a control character, or
// would make a line longer than protocol.MaxLine (a *TooLongError).
func (c *Conn) Queue(target, text string) error {
	if !protocol.ValidNameString(target) {
		return &NameError{Name: target}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.user == "" {
		return ErrNotLoggedIn
	}
	if err := CheckText(target, c.user, text); err != nil {
		return err
	}
	if c.closed.Load() || c.ended.Load() {
		return ErrClosed
	}
	text = strings.TrimRight(text, " \t")
	c.buf = protocol.AppendMsg(c.buf[:0], target, c.user, text)
	if _, err := c.w.Write(c.buf); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	c.lastTarget = target
	return nil
}

// Send queues a message to target and flushes it.
func (c *Conn) Send(target, text string) error {
	if err := c.Queue(target, text); err != nil {
		return err
	}
	return c.Flush()
}

// Flush writes everything queued, under the write timeout.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	if c.w.Buffered() == 0 {
		return nil
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// SendEnd sends END, after anything queued. The server answers with
// END <end accepted> once it has handled every earlier line; Receive
// returns that as an End event.
func (c *Conn) SendEnd() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	c.buf = protocol.AppendEndQuery(c.buf[:0])
	if _, err := c.w.Write(c.buf); err != nil {
		return fmt.Errorf("send end: %w", err)
	}
	return c.flushLocked()
}

// End sends END and reads until the server's END, discarding other
// events, then closes the connection. It returns nil when the server
// answered END <end accepted>. Use it only when no other goroutine calls
// Receive; a front end with a receive loop calls SendEnd and lets its loop
// see the End event.
func (c *Conn) End(ctx context.Context) error {
	defer c.Close()
	if err := c.SendEnd(); err != nil {
		return err
	}
	// Closing, not a deadline, interrupts the wait: Receive moves the read
	// deadline itself.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		ev, err := c.Receive()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("end: %w", ctxErr)
			}
			return fmt.Errorf("end: %w", err)
		}
		if e, ok := ev.(End); ok {
			return e.Err()
		}
	}
}

// Close closes the connection without saying goodbye. It is safe to call
// more than once and from any goroutine.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}

// Checks returns how many CHECK lines arrived: the server's liveness
// probes, counted but otherwise ignored.
func (c *Conn) Checks() int64 { return c.checks.Load() }

// Ignored returns how many lines were ignored because their first word is
// unknown or their form is wrong.
func (c *Conn) Ignored() int64 { return c.ignored.Load() }

// LastSeen returns when the last line arrived from the server.
func (c *Conn) LastSeen() time.Time { return time.Unix(0, c.lastSeen.Load()) }

func (c *Conn) seen() { c.lastSeen.Store(c.opts.Now().UnixNano()) }

// Event is something the server told a logged-in client: Relay, NotOnline
// or End.
type Event interface{ event() }

// Relay is a message for this user.
type Relay struct {
	// From is the sender, To the recipient (this user), Text the message
	// as sent. None of them is escaped: a front end escapes what it shows.
	From, To, Text string
	// Time is when the message arrived.
	Time time.Time
}

// NotOnline reports that the target of a message was not online (CNT).
type NotOnline struct {
	// Target is the target of the last message sent, the one the server
	// means when messages are sent one at a time.
	Target string
	// Time is when the notice arrived.
	Time time.Time
}

// End is the server closing the session.
type End struct {
	// Reason is the server's reason, without angle brackets.
	Reason string
	// ProtocolError is set for END * <reason>.
	ProtocolError bool
}

// Accepted reports whether the END answers the client's own END.
func (e End) Accepted() bool { return !e.ProtocolError && e.Reason == protocol.ReasonEndAccepted }

// Err returns nil for END <end accepted> and an *EndError otherwise.
func (e End) Err() error {
	if e.Accepted() {
		return nil
	}
	return &EndError{Reason: e.Reason, ProtocolError: e.ProtocolError}
}

func (Relay) event()     {}
func (NotOnline) event() {}
func (End) event()       {}

// Receive waits for the next event. CHECK lines and lines it does not know
// are counted and skipped. After an End event the connection is closed and
// Receive returns ErrClosed. When nothing arrives for SilentChecks check
// intervals it returns ErrSilent; a network failure returns the error.
// After any error the connection is closed.
func (c *Conn) Receive() (Event, error) {
	if c.ended.Load() {
		return nil, ErrClosed
	}
	for {
		if c.opts.CheckInterval > 0 && c.r.Buffered() == 0 {
			// The watchdog: a server sends CHECK every interval, so three
			// silent intervals mean the path to it is gone.
			deadline := time.Now().Add(SilentChecks * c.opts.CheckInterval)
			if err := c.nc.SetReadDeadline(deadline); err != nil {
				return nil, c.fail(err)
			}
		}
		raw, err := c.r.ReadLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.closed.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, c.fail(ErrSilent)
			}
			if c.closed.Load() {
				return nil, ErrClosed
			}
			return nil, c.fail(readError(err))
		}
		line := protocol.TrimLine(raw)
		if len(line) == 0 {
			continue
		}
		c.seen()
		ev, ok := c.event(line)
		if ok {
			return ev, nil
		}
	}
}

// event turns a trimmed server line into an event; ok is false for lines
// that are only counted.
func (c *Conn) event(line []byte) (Event, bool) {
	sl, err := protocol.ParseServerLine(line)
	if err != nil {
		// A known word in a wrong form: a newer or broken server. Ignoring
		// it keeps the session usable.
		c.ignored.Add(1)
		return nil, false
	}
	switch sl.Kind {
	case protocol.KindRelay:
		return Relay{From: string(sl.Sender), To: string(sl.Target), Text: string(sl.Text), Time: c.opts.Now()}, true
	case protocol.KindCNT:
		c.wmu.Lock()
		target := c.lastTarget
		c.wmu.Unlock()
		return NotOnline{Target: target, Time: c.opts.Now()}, true
	case protocol.KindEnd:
		c.ended.Store(true)
		c.Close()
		return End{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError}, true
	case protocol.KindCheck:
		c.checks.Add(1)
	default:
		c.ignored.Add(1)
	}
	return nil, false
}

func (c *Conn) fail(err error) error {
	c.Close()
	return err
}
