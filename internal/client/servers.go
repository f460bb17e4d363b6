package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/messager/messager/internal/protocol"
)

// ParseServers parses a list of server addresses, as --server takes it:
// one address, or several separated by commas
// ("a.example:18443,b.example:18443"), the nodes of one service that a
// client may use in turn. Each is HOST:PORT; a host alone, a bare IPv6
// address included, gets protocol.DefaultPort, as a single address always
// has. Spaces around an address are dropped.
//
// It refuses, with an error that quotes the address, an empty address
// (",a", "a,,b", "a,"), a port missing after the colon ("a:") or not a
// number from 1 to 65535, a missing host, a host with spaces, slashes or
// other characters no host name has, and an address listed twice: hosts
// are compared ignoring case and IP addresses by value, so "A:1" and
// "a:1" are one server. The addresses are returned in order, as given,
// with the default port added where it was left out.
func ParseServers(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no server address")
	}
	parts := strings.Split(list, ",")
	addrs := make([]string, 0, len(parts))
	given := make([]string, 0, len(parts)) // as typed, for the errors
	keys := make(map[string]int, len(parts))
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("address %d of %q is empty (addresses are separated by single commas)", i+1, list)
		}
		addr, key, err := parseServer(part)
		if err != nil {
			return nil, err
		}
		if j, dup := keys[key]; dup {
			if given[j] == part {
				return nil, fmt.Errorf("address %q is listed twice", part)
			}
			return nil, fmt.Errorf("addresses %q and %q are the same server", given[j], part)
		}
		keys[key] = len(addrs)
		addrs = append(addrs, addr)
		given = append(given, part)
	}
	return addrs, nil
}

// parseServer checks one address of a list. It returns the address to
// dial, with the default port added when there was none, and the key
// that tells two spellings of one server apart from two servers.
func parseServer(s string) (addr, key string, err error) {
	host, port, splitErr := net.SplitHostPort(s)
	if splitErr != nil {
		// No port: a host alone, or a bare or bracketed IPv6 address.
		host = s
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
			if !strings.Contains(host, ":") {
				return "", "", fmt.Errorf("address %q: brackets are for IPv6 addresses only", s)
			}
		}
		port = strconv.Itoa(protocol.DefaultPort)
	}
	switch {
	case host == "":
		return "", "", fmt.Errorf("address %q: no host before the port", s)
	case splitErr == nil && port == "":
		return "", "", fmt.Errorf("address %q: no port after the colon (want HOST:PORT, or HOST alone for port %d)", s, protocol.DefaultPort)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.ContainsAny(port, "+-") {
		return "", "", fmt.Errorf("address %q: the port must be a number from 1 to 65535", s)
	}
	port = strconv.Itoa(n)
	key = strings.ToLower(host)
	if !validHost(host) {
		return "", "", fmt.Errorf("address %q: want HOST:PORT", s)
	}
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			if splitErr != nil {
				return "", "", fmt.Errorf("address %q: want HOST:PORT (an IPv6 address with a port goes in brackets: [::1]:%d)", s, protocol.DefaultPort)
			}
			return "", "", fmt.Errorf("address %q: want HOST:PORT", s)
		}
		key = ip.String()
	} else if ip, err := netip.ParseAddr(host); err == nil {
		key = ip.String()
	}
	return net.JoinHostPort(host, port), net.JoinHostPort(key, port), nil
}

// validHost reports whether host could be a host name or an IP address
// (an IPv6 zone included): nothing a URL, a user name or a path would
// add (spaces, slashes, @, #, ?, brackets), nor anything Escape would
// show escaped, which would make the notices naming it unreadable.
func validHost(host string) bool {
	if !utf8.ValidString(host) || strings.ContainsAny(host, " \t/\\@#?[]") {
		return false
	}
	return Escape(host) == host
}

// ConnectError is a failure to reach a server or to complete the TLS
// handshake with it, its certificate check included. Nothing was said to
// that server yet, so another address of the same service may be tried
// at once. Its text is the wrapped error's, which names the address.
type ConnectError struct {
	// Addr is the address dialled.
	Addr string
	// Err is what failed.
	Err error
}

// Error is the failure's own text: it names the address already.
func (e *ConnectError) Error() string { return e.Err.Error() }

// Unwrap returns the failure, so that errors.As finds the certificate
// check's own error (the trust package's refusals among them).
func (e *ConnectError) Unwrap() error { return e.Err }

// Failure is why one server of several could not be used in a round
// (see Servers.Connect).
type Failure struct {
	// Addr is the server's address.
	Addr string
	// Err is what failed: connecting, the handshake, HELLO or the login.
	Err error
	// Next is the address tried next in the same round; empty when the
	// round ended with this one.
	Next string
}

// Error describes the failure, naming its address once: the errors of
// connecting name it already, the later ones get it in front.
func (f *Failure) Error() string {
	var ce *ConnectError
	if errors.As(f.Err, &ce) {
		return f.Err.Error()
	}
	return f.Addr + ": " + f.Err.Error()
}

// Unwrap returns the failure's error.
func (f *Failure) Unwrap() error { return f.Err }

// ServersError reports a round in which none of several servers could be
// used; Failures says why each one failed, in the order tried.
type ServersError struct {
	Failures []*Failure
}

// Error lists every server's failure, in the order tried.
func (e *ServersError) Error() string {
	var b strings.Builder
	b.WriteString("no server could be used: ")
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns every server's failure.
func (e *ServersError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f
	}
	return errs
}

// Last returns the failure of the server tried last.
func (e *ServersError) Last() *Failure { return e.Failures[len(e.Failures)-1] }

// retryable reports whether another round may find a server: when some
// server failed for a reason that may pass. A round in which every
// server refused its certificate check would fail the same way again.
func (e *ServersError) retryable() bool {
	for _, f := range e.Failures {
		if Retryable(f.Err) {
			return true
		}
	}
	return false
}

// Servers are the addresses of one service that a client may use, such
// as the nodes of a cluster, each with its own Dialer (so that what one
// node turned out to speak is not assumed of another), and which of them
// the client used last.
//
// A round (Connect) tries the addresses once each, in turn, and takes the
// first that works. The first round starts with the first address; later
// rounds start with the one after the address of the last connection
// made, so that a client whose server went away does not try that server
// first again. A front end that reconnects waits between rounds (see
// Reconnect), never between the addresses of one round: each server gets
// one attempt a round, and the rounds keep the backoff of a single one.
//
// A Servers is safe for use by several goroutines, but a front end
// makes one connection at a time.
type Servers struct {
	dialers []*Dialer

	mu   sync.Mutex
	last int               // the address of the last connection made; -1 before the first
	told map[string]string // the class of each address's failure reported since a connection was made
}

// NewServers returns the Servers of dialers, one for each address, in the
// order they are to be tried.
func NewServers(dialers ...*Dialer) *Servers {
	return &Servers{dialers: dialers, last: -1, told: make(map[string]string)}
}

// Len returns the number of addresses.
func (s *Servers) Len() int { return len(s.dialers) }

// Last returns the address of the last connection made, or "" before the
// first.
func (s *Servers) Last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last < 0 {
		return ""
	}
	return s.dialers[s.last].Addr
}

// Round says how Connect makes one round.
type Round struct {
	// Login logs in on each new connection (see Conn.Login); nil returns
	// the connection ready for a login, after HELLO.
	Login func(ctx context.Context, c *Conn) error
	// Stay starts the round with the address of the last connection made
	// instead of the one after it: for a new connection that replaces one
	// which has not logged in yet (it went stale while a password was
	// typed, or the password was wrong), which belongs on the same server.
	Stay bool
	// Again, when not nil, is told of each address that could not be
	// connected to (a *ConnectError). When it returns true, that address
	// is dialled once more before the next one is tried: a front end that
	// asked a person to trust a certificate never seen before. An error
	// from it ends the round with that error.
	Again func(addr string, err error) (bool, error)
	// Report, when not nil and there are several addresses, is told of
	// each server that failed and was passed over, with the address tried
	// next, so that a front end can say which failed and why. It is told
	// once for each kind of failure of each address until a connection is
	// made: a server that is down for a while is not reported every
	// round.
	Report func(*Failure)
}

// Connect makes one round: it dials each address once, in turn, and logs
// in with r.Login, until one works. A connection that fails, a handshake
// or certificate check that fails, and a failure that may pass
// (Retryable: the server is shutting down or full) pass over to the next
// address. A refused login (a wrong password, a user already online, a
// ban), a bad name and a cancelled ctx end the round at once with their
// error: another node of the same service would refuse it just the same,
// and a client must not fight another session of its user from node to
// node.
//
// Each address gets DefaultLoginTimeout to connect and say HELLO, within
// ctx. When every address failed, the error is the one failure of a
// single address, as it was, or else a *ServersError with all of them.
func (s *Servers) Connect(ctx context.Context, r Round) (*Conn, error) {
	n := len(s.dialers)
	if n == 0 {
		return nil, errors.New("no server address")
	}
	s.mu.Lock()
	start := 0
	if s.last >= 0 {
		start = s.last
		if !r.Stay {
			start = (s.last + 1) % n
		}
	}
	s.mu.Unlock()

	var failures []*Failure
	for k := 0; k < n; k++ {
		i := (start + k) % n
		c, err, final := s.try(ctx, s.dialers[i], r)
		if err == nil {
			s.mu.Lock()
			s.last = i
			clear(s.told)
			s.mu.Unlock()
			return c, nil
		}
		if final || ctx.Err() != nil || !passOver(err) {
			return nil, err
		}
		f := &Failure{Addr: s.dialers[i].Addr, Err: err}
		if k+1 < n {
			f.Next = s.dialers[(i+1)%n].Addr
		}
		failures = append(failures, f)
		if n > 1 && r.Report != nil && s.tell(f) {
			r.Report(f)
		}
	}
	if n == 1 {
		return nil, failures[0].Err
	}
	return nil, &ServersError{Failures: failures}
}

// try connects to one address and logs in. final reports an error of
// r.Again, which ends the round whatever it is.
func (s *Servers) try(ctx context.Context, d *Dialer, r Round) (c *Conn, err error, final bool) {
	dial := func() (*Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, DefaultLoginTimeout)
		defer cancel()
		return d.Dial(ctx)
	}
	c, err = dial()
	var ce *ConnectError
	if err != nil && r.Again != nil && ctx.Err() == nil && errors.As(err, &ce) {
		again, aerr := r.Again(d.Addr, err)
		if aerr != nil {
			return nil, aerr, true
		}
		if again {
			c, err = dial()
		}
	}
	if err != nil {
		return nil, err, false
	}
	if r.Login != nil {
		if err := r.Login(ctx, c); err != nil {
			c.Close()
			return nil, err, false
		}
	}
	return c, nil, false
}

// tell reports whether a failure is news: the first of its kind for its
// address since a connection was made. Kinds, not texts, are compared,
// because a text may hold what changes every time (a local port).
func (s *Servers) tell(f *Failure) bool {
	class := failureClass(f.Err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.told[f.Addr] == class {
		return false
	}
	s.told[f.Addr] = class
	return true
}

// failureClass is the kind of a failure, for tell: a refused certificate
// (a change there must be told even when the server was down before), an
// END and its reason, another failure to connect, or anything else.
func failureClass(err error) string {
	var end *EndError
	switch {
	case certificateError(err):
		return "certificate"
	case errors.As(err, &end):
		return "end " + end.Reason
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return "connect"
	}
	return "other"
}

// passOver reports whether a failure of one server lets the round go on
// to the next: any failure to connect or to complete the handshake (that
// server, or the way to it, is the problem), and after that whatever may
// pass when tried again.
func passOver(err error) bool {
	var ce *ConnectError
	return errors.As(err, &ce) || Retryable(err)
}

// certificateError reports whether err is a refusal of a server's
// certificate: by the standard verification, or by a check that marks
// its errors as permanent (pinning, known servers).
func certificateError(err error) bool {
	var verify *x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var tlsVerify *tls.CertificateVerificationError
	if errors.As(err, &verify) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &tlsVerify) {
		return true
	}
	var ce *ConnectError
	var permanent interface{ Permanent() bool }
	return errors.As(err, &ce) && errors.As(err, &permanent) && permanent.Permanent()
}
