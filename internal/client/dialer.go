package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Dialer connects to one server again and again (a front end's first
// connection and its reconnections) and remembers what it learnt about the
// server on the way: a server that does not know HELLO (the original
// server, an older messager) answers it with END * <incorrect protocol>
// and closes, and from then on the Dialer speaks version 1 to it without
// asking again, for as long as the Dialer lives. Asking on every
// reconnection would double each one; asking in a loop would never end.
// With several servers, each has a Dialer of its own (see Servers): what
// one node turned out to speak says nothing of another.
//
// A Dialer is safe for use by several goroutines at once. Its fields must
// not change after the first Dial.
type Dialer struct {
	// Addr is the server's "host:port".
	Addr string
	// TLSConfig is the TLS configuration; see DialOptions.
	TLSConfig *tls.Config
	// Options tune every connection.
	Options Options
	// Version is the highest protocol version to ask for: zero means
	// protocol.Version, 1 never says HELLO.
	Version int

	version1 atomic.Bool // the server does not know HELLO
	dials    atomic.Int64
}

// errNoHello is a server's END * <incorrect protocol> in answer to HELLO:
// it does not know the word.
var errNoHello = errors.New("the server does not know HELLO")

// Dial connects, completes the TLS handshake and, unless the server is
// known to speak only version 1, says HELLO and reads the answer: the
// connection is then ready for Login, with the server's version and
// features known (see Conn.Version and Conn.Features). When the server
// answers HELLO with END * <incorrect protocol>, Dial connects once more
// and speaks version 1, now and on every later Dial. The whole of it is
// bounded by ctx, or by DefaultLoginTimeout when ctx has no deadline.
func (d *Dialer) Dial(ctx context.Context) (*Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLoginTimeout)
		defer cancel()
	}
	want := d.Version
	if want <= 0 || want > protocol.Version {
		want = protocol.Version
	}
	for {
		c, err := d.connect(ctx)
		if err != nil {
			return nil, err
		}
		if want < 2 || d.version1.Load() {
			return c, nil
		}
		err = c.hello(ctx, want)
		if errors.Is(err, errNoHello) {
			// The next round connects without HELLO, and so does every
			// later Dial: at most one connection more, never a loop.
			d.version1.Store(true)
			continue
		}
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Login dials and logs in: Dial, then Conn.Login.
func (d *Dialer) Login(ctx context.Context, user, password string) (*Conn, error) {
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx, user, password); err != nil {
		return nil, err
	}
	return c, nil
}

// Version1 reports whether the server turned out not to know HELLO, so
// that the Dialer speaks version 1 to it.
func (d *Dialer) Version1() bool { return d.version1.Load() }

// Dials returns how many connections the Dialer has opened, the one
// given up on after a HELLO that was not understood included.
func (d *Dialer) Dials() int64 { return d.dials.Load() }

// connect opens one TLS connection. Its errors are *ConnectError: this
// server could not be reached, or its certificate was refused, before
// anything was said to it.
func (d *Dialer) connect(ctx context.Context) (*Conn, error) {
	c, err := d.connectTLS(ctx)
	if err != nil {
		return nil, &ConnectError{Addr: d.Addr, Err: err}
	}
	return c, nil
}

func (d *Dialer) connectTLS(ctx context.Context) (*Conn, error) {
	addr, config := d.Addr, d.TLSConfig
	if config == nil {
		config = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if config.ServerName == "" {
		host, err := hostOf(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		config = config.Clone()
		config.ServerName = host
	}
	if !config.DynamicRecordSizingDisabled {
		// Go starts a connection with records of about 1 KB and grows
		// them; a longer query would be split over several records,
		// which the original server reads as several queries.
		config = config.Clone()
		config.DynamicRecordSizingDisabled = true
	}
	d.dials.Add(1)
	return dialTLS(ctx, addr, config, d.Options)
}

// hello says HELLO and reads the answer, under ctx's deadline. The
// server's version and features are kept; from a version-2 answer on,
// queries may share a write, because the server reads lines and not
// records. Nothing else is sent before the answer: the original server
// would garble a query sent with HELLO, and a server that closes after
// its END * must not find unread queries (its close would reset the
// connection, and the END could be lost).
func (c *Conn) hello(ctx context.Context, version int) error {
	if err := c.nc.SetDeadline(deadlineOf(ctx)); err != nil {
		c.Close()
		return fmt.Errorf("hello: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.wmu.Lock()
	c.buf = protocol.AppendHelloQuery(c.buf[:0], version)
	c.queueLocked(c.buf)
	err := c.writeLocked()
	c.wmu.Unlock()
	if err != nil {
		return c.loginError(ctx, fmt.Errorf("hello: send: %w", err))
	}
	for {
		raw, err := c.r.next()
		if err != nil {
			return c.loginError(ctx, fmt.Errorf("hello: %w", readError(err)))
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
		case protocol.KindHello:
			c.version = min(sl.Version, version)
			if f, err := protocol.ParseFeatures(sl.Features); err == nil {
				c.features = f
			} else {
				// A feature in a wrong form: none is trusted.
				c.ignored.Add(1)
			}
			if c.version >= 2 {
				c.wmu.Lock()
				c.shared = true
				c.wmu.Unlock()
			}
			if err := c.nc.SetDeadline(time.Time{}); err != nil {
				c.Close()
				return fmt.Errorf("hello: %w", err)
			}
			return nil
		case protocol.KindEnd:
			c.ended.Store(true)
			c.Close()
			if sl.ProtocolError && string(sl.Reason) == protocol.ReasonIncorrectProtocol {
				return errNoHello
			}
			return &EndError{Reason: string(sl.Reason), ProtocolError: sl.ProtocolError, Login: true}
		case protocol.KindCheck:
			c.checks.Add(1)
		default:
			c.ignored.Add(1)
		}
	}
}

// deadlineOf is ctx's deadline, or DefaultLoginTimeout from now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(DefaultLoginTimeout)
}
