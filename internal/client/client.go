// Package client is the connection API a messager front end uses: dial a
// server over TLS, log in, send messages and receive what the server sends,
// as typed events.
//
// A Conn has one receiving side and one sending side. Receive must be
// called from one goroutine at a time; the sending methods (Queue, Send,
// Flush, SendEnd, and Who, Watch, Unwatch, Join, Part and SendGroup of
// version 2) may be called from other goroutines at the same time. Close
// may be called from anywhere.
//
// The client speaks so that the original server, the seed's, understands
// it too: every query in the seed shape ("MSG bob alice hi \r\n", with a
// space before the line end) and one query per TLS record, because that
// server takes each record it reads as one query. It reads that server's
// CHECK, which has no line end, as a line of its own.
//
// A connection asks for protocol version 2 with HELLO before it logs in
// (see Dialer). A server that answers it offers presence, groups and
// sign-up (Conn.Features; Conn.SignUp makes an account instead of
// Login); queries may then share a write, since such a server reads
// lines. A server that does not know HELLO gets version 1, as
// before, and the queries of version 2 are refused locally with a
// *NotOfferedError.
//
// A front end that may use several servers of one service, the nodes of
// a cluster (ParseServers reads the list), connects through Servers: it
// tries them in turn, and after a lost session starts with the server
// after the lost one; Reconnect paces the rounds.
package client

import (
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

// ReasonAlreadyOnline is how the original server refuses a login of a user
// who is online already (a messager server replaces the old session
// instead). Another attempt would get the same answer, so it is final.
const ReasonAlreadyOnline = "user already online"

// EndError reports that the server ended the session with END: a refused
// login, or any other reason the server gave.
type EndError struct {
	// Reason is the server's reason, without angle brackets, as sent:
	// escape it before showing it (Error does).
	Reason string
	// ProtocolError is set when the server said the client broke the
	// protocol (END * <reason>).
	ProtocolError bool
	// Login is set when the END answered AUTH or PUT: the login, or the
	// sign-up when SignUp is set too, was refused.
	Login bool
	// SignUp is set when the END answered PUT (see Conn.SignUp).
	SignUp bool
}

// Error describes the END with the server's reason escaped (see Escape),
// so that the message is safe to print.
func (e *EndError) Error() string {
	reason := Escape(e.Reason)
	if e.SignUp {
		return "sign-up refused: " + reason
	}
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
	case protocol.ReasonBadLogin, protocol.ReasonTooManyAttempts, protocol.ReasonAccountRemoved, ReasonAlreadyOnline,
		protocol.ReasonBanned:
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

	r *lineReader // used only by the receiving goroutine

	// The send path. Queries wait in out until Flush, each in the seed
	// shape; ends holds where each one ends. Flush writes every query
	// with its own Write, which on TLS is its own record, because the
	// original server reads one record as one query: two queries in one
	// record reach it as one garbled query.
	wmu        sync.Mutex // guards the send path, user, lastTarget and the write deadline
	out        []byte
	ends       []int
	shared     bool // queued queries may share a write: the server is known to read lines
	user       string
	lastTarget string
	buf        []byte

	// The server's answer to HELLO; set before the connection is handed
	// out, read-only after.
	version  int // 0 until a HELLO is answered: version 1
	features protocol.Features

	tries int // sign-ups answered TRY; used only before the session starts, like r

	checks   atomic.Int64
	ignored  atomic.Int64
	ended    atomic.Bool
	closed   atomic.Bool
	lastSeen atomic.Int64 // unix nanoseconds of the last line received
}

// Dial connects to addr ("host:port") over TLS with config, completing the
// handshake and HELLO (see Dialer.Dial) before it returns. When config has
// no ServerName, the host of addr is used. It is bounded by ctx, or by
// DefaultLoginTimeout when ctx has no deadline. A front end that connects
// again after a drop uses one Dialer for all its connections instead, so
// that what it learnt of the server's version is kept.
func Dial(ctx context.Context, addr string, config *tls.Config) (*Conn, error) {
	return DialOptions(ctx, addr, config, Options{})
}

// DialOptions is Dial with options.
func DialOptions(ctx context.Context, addr string, config *tls.Config, opts Options) (*Conn, error) {
	d := &Dialer{Addr: addr, TLSConfig: config, Options: opts}
	return d.Dial(ctx)
}

// dialTLS opens a TLS connection to addr and completes the handshake.
func dialTLS(ctx context.Context, addr string, config *tls.Config, opts Options) (*Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: config}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var permanent interface{ Permanent() bool }
		if errors.As(err, &permanent) && permanent.Permanent() {
			// The server was reached, and its certificate is not the one
			// trusted: the verifier's error says so, without a "connect
			// to" that reads like a network failure.
			return nil, err
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return newConn(nc, addr, opts), nil
}

// hostOf is the host of a "host:port".
func hostOf(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	return host, err
}

// NewConn wraps an established connection, for tests and for transports
// other than TLS. It says no HELLO: the connection speaks version 1.
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
	c := &Conn{nc: nc, addr: addr, opts: opts, r: newLineReader(nc)}
	// Any bytes at all are a sign of life, even half a line: the original
	// server's CHECK has no line end.
	c.r.after = func(int) { c.seen() }
	c.lastSeen.Store(opts.Now().UnixNano())
	return c
}

// Version returns the protocol version of the session: 2 (or more) when
// the server answered HELLO with it, else 1.
func (c *Conn) Version() int { return max(c.version, 1) }

// Features returns what the server offered in its HELLO answer; none for
// a version-1 session.
func (c *Conn) Features() protocol.Features { return c.features }

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
	c.queueLocked(c.buf)
	err := c.writeLocked()
	// The password must not linger.
	clear(c.buf)
	clear(c.out[:cap(c.out)])
	c.wmu.Unlock()
	if err != nil {
		return c.loginError(ctx, fmt.Errorf("login: send: %w", err))
	}

	// The login's deadline bounds every read; the watchdog starts with
	// Receive.
	c.r.before = nil
	for {
		raw, err := c.r.next()
		if err != nil {
			return c.loginError(ctx, fmt.Errorf("login: %w", readError(err)))
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

// stepError is loginError for another step before the session (such as
// "sign-up"), which also prefixes err with the step.
func (c *Conn) stepError(ctx context.Context, step string, err error) error {
	c.Close()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", step, ctxErr)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("%s: %w", step, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", step, err)
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
// long. Trailing spaces and tabs are not counted, because the client
// removes them before sending.
func CheckText(target, sender, text string) error {
	text = strings.TrimRight(text, " \t")
	if text == "" {
		return ErrEmptyMessage
	}
	if !protocol.ValidText([]byte(text)) {
		return ErrControlCharacter
	}
	if n := MsgLen(target, sender, text); n > protocol.MaxLine {
		return &TooLongError{Len: n, MaxText: protocol.MaxLine - MsgLen(target, sender, "")}
	}
	return nil
}

// MsgLen is the length of the MSG line the client sends for text, in the
// seed shape: "MSG <target> <sender> <text> \r\n".
func MsgLen(target, sender, text string) int {
	return protocol.MsgLen(target, sender, text) + len(" ")
}

// queueLocked adds one query, formatted by protocol (ending in "\r\n"),
// to the send path in the seed shape: a space before the line end, which
// the original server needs and every server accepts.
func (c *Conn) queueLocked(query []byte) {
	query = query[:len(query)-len("\r\n")]
	c.out = append(c.out, query...)
	c.out = append(c.out, " \r\n"...)
	c.ends = append(c.ends, len(c.out))
}

// writeLocked writes the queued queries, one Write each unless they may
// share one, under the write timeout, and empties the queue.
func (c *Conn) writeLocked() error {
	if len(c.out) == 0 {
		return nil
	}
	defer func() { c.out, c.ends = c.out[:0], c.ends[:0] }()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return err
	}
	if c.shared {
		_, err := c.nc.Write(c.out)
		return err
	}
	start := 0
	for _, end := range c.ends {
		if _, err := c.nc.Write(c.out[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// Queue adds a message to target to the send queue without sending it;
// Flush sends what is queued. A target that starts with '#' is a group
// (see SendGroup). It refuses, sending nothing, a target that is not a
// valid name or group, a group on a server that does not offer groups,
// and a message that is empty, holds a control character, or would make
// a line longer than protocol.MaxLine (a *TooLongError).
func (c *Conn) Queue(target, text string) error {
	group := strings.HasPrefix(target, "#")
	if group {
		if !protocol.ValidGroupString(target) {
			return &GroupError{Group: target}
		}
		if err := c.offers(FeatureGroups); err != nil {
			return err
		}
	} else if !protocol.ValidNameString(target) {
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
	c.queueLocked(c.buf)
	if !group {
		// A version-1 CNT does not say whom it is about; this is the
		// best guess. Groups are never answered with CNT.
		c.lastTarget = target
	}
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
	if err := c.writeLocked(); err != nil {
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
	c.queueLocked(c.buf)
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

// LastSeen returns when anything last arrived from the server.
func (c *Conn) LastSeen() time.Time { return time.Unix(0, c.lastSeen.Load()) }

func (c *Conn) seen() { c.lastSeen.Store(c.opts.Now().UnixNano()) }

// Receive waits for the next event. CHECK lines and lines it does not know
// are counted and skipped. After an End event the connection is closed and
// Receive returns ErrClosed. When not a byte arrives for SilentChecks
// check intervals it returns ErrSilent; a network failure returns the
// error.
// After any error the connection is closed.
func (c *Conn) Receive() (Event, error) {
	if c.ended.Load() {
		return nil, ErrClosed
	}
	if c.opts.CheckInterval > 0 {
		c.r.before = c.watchdog
	}
	for {
		raw, err := c.r.next()
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
	now := c.opts.Now()
	switch sl.Kind {
	case protocol.KindRelay:
		r := Relay{From: string(sl.Sender), To: string(sl.Target), Text: string(sl.Text), Time: now}
		if sl.Target[0] == '#' {
			r.Group = r.To
		}
		return r, true
	case protocol.KindCNT:
		c.wmu.Lock()
		last := c.lastTarget
		c.wmu.Unlock()
		return NotOnline{Target: string(sl.Target), LastTarget: last, Time: now}, true
	case protocol.KindFail:
		return Fail{Verb: string(sl.Verb), Subject: string(sl.Subject), Reason: string(sl.Reason), Time: now}, true
	case protocol.KindPresence:
		return Presence{On: sl.On, Names: splitNames(sl.Names), Time: now}, true
	case protocol.KindWho:
		return Who{Mask: string(sl.Mask), Count: sl.Count, Names: splitNames(sl.Names), Time: now}, true
	case protocol.KindJoin:
		return GroupJoin{Group: string(sl.Group), User: string(sl.User), Time: now}, true
	case protocol.KindPart:
		return GroupPart{Group: string(sl.Group), User: string(sl.User), Time: now}, true
	case protocol.KindEnd:
		c.ended.Store(true)
		c.Close()
		return End{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError}, true
	case protocol.KindCheck:
		c.checks.Add(1)
	default:
		// HELLO and ACCEPT again, TRY, and words of later versions.
		c.ignored.Add(1)
	}
	return nil, false
}

// watchdog moves the read deadline before every read: a server sends
// CHECK every interval, so SilentChecks intervals without a single byte
// mean the path to it is gone.
func (c *Conn) watchdog() error {
	return c.nc.SetReadDeadline(time.Now().Add(SilentChecks * c.opts.CheckInterval))
}

func (c *Conn) fail(err error) error {
	c.Close()
	return err
}
