package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/trust"
	"github.com/messager/messager/internal/web"
)

// loginTimeout bounds the TLS handshake and the AUTH exchange, like the
// server's own 10 s limit.
const loginTimeout = 10 * time.Second

// TLS describes how the bench checks the server's certificate.
type TLS struct {
	// Fingerprint pins the certificate: "sha256:" and the lowercase hex
	// SHA-256 of its DER bytes.
	Fingerprint string
	// CAFile is a PEM file of certificates to trust.
	CAFile string
	// ServerName overrides the name checked against a CA-signed certificate.
	ServerName string
}

// verification says in words how the certificate is checked.
func (t TLS) verification() string {
	switch {
	case t.Fingerprint != "":
		return "pinned by fingerprint"
	case t.CAFile != "":
		return "verified against " + t.CAFile
	}
	return "not verified"
}

// config builds the client TLS configuration for a server at addr, with
// the client's own certificate checks. Without a fingerprint or CA the
// certificate is not checked: a bench measures, it does not carry secrets.
func (t TLS) config(addr string) (*tls.Config, error) {
	v, err := trust.New(addr, trust.Options{
		Fingerprint: t.Fingerprint,
		CAFile:      t.CAFile,
		Insecure:    t.Fingerprint == "" && t.CAFile == "",
	})
	if err != nil {
		return nil, err
	}
	cfg := v.TLSConfig()
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	// Resumption makes thousands of logins cheaper for both sides.
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
	return cfg, nil
}

// dialer logs sessions in to one server.
type dialer struct {
	addr string
	tls  *tls.Config
	// ws: sessions use the web client's WebSocket on the same port
	// rather than the line protocol over TLS.
	ws bool
}

// loginError is the server's refusal of a login, with its END reason.
type loginError struct {
	user, reason string
}

func (e *loginError) Error() string {
	return fmt.Sprintf("login %s: server answered END <%s>", e.user, e.reason)
}

// session is a logged-in connection and the reader of its lines.
type session struct {
	user string
	// conn is the TLS connection, or a WebSocket of lines: either way
	// lines ending in CRLF go in and come out.
	conn   net.Conn
	reader *protocol.Reader
	// features is what a version-2 server offered in its HELLO; zero
	// for a version-1 session.
	features protocol.Features
}

// loginOptions say how a session logs in.
type loginOptions struct {
	// local is the source address; nil for any.
	local net.IP
	// busy sessions, which receive a load, read through a large buffer;
	// idle ones stay small.
	busy bool
	// version2 sends HELLO 2 before AUTH (in the same write) and expects
	// the server to speak version 2.
	version2 bool
	// beforeAuth, when set, is called just before the AUTH line is
	// written: a presence run times a login from there.
	beforeAuth func()
}

// bufferedConn reads a connection through a large buffer. Under TLS
// every record is read separately, header first; with the buffer, one
// read system call takes all the records waiting in the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// busyReadBuffer is the read buffer of a session that receives a load.
// It must exceed the TLS layer's own record buffer (16 KiB and a bit), or
// bufio passes reads straight through.
const busyReadBuffer = 64 << 10

// login connects, completes the TLS handshake (and the WebSocket's) and
// logs user in.
func (d *dialer) login(ctx context.Context, user, password string, o loginOptions) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	conn, err := d.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	line := make([]byte, 0, 80)
	if o.version2 {
		// A messager server takes AUTH right behind HELLO, in one write.
		line = protocol.AppendHelloQuery(line, 2)
	}
	line = protocol.AppendAuth(line, user, password)
	if o.beforeAuth != nil {
		o.beforeAuth()
	}
	if _, err := conn.Write(line); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	s := &session{user: user, conn: conn, reader: protocol.NewReader(conn, protocol.MaxServerLine)}
	fail := func(err error) (*session, error) {
		_ = conn.Close()
		return nil, err
	}
	hello := !o.version2
	for {
		raw, err := s.reader.ReadLine()
		if err != nil {
			return fail(fmt.Errorf("login %s: %w", user, err))
		}
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err != nil {
			return fail(fmt.Errorf("login %s: %w", user, err))
		}
		switch sl.Kind {
		case protocol.KindHello:
			if sl.Version != 2 {
				return fail(fmt.Errorf("login %s: the server speaks protocol version %d, this run needs version 2", user, sl.Version))
			}
			if s.features, err = protocol.ParseFeatures(sl.Features); err != nil {
				return fail(fmt.Errorf("login %s: malformed HELLO features", user))
			}
			hello = true
		case protocol.KindAccept:
			if !hello {
				return fail(fmt.Errorf("login %s: the server did not answer HELLO", user))
			}
			_ = conn.SetDeadline(time.Time{})
			return s, nil
		case protocol.KindEnd:
			if o.version2 && !hello && sl.ProtocolError {
				return fail(fmt.Errorf("login %s: the server does not speak protocol version 2 (END * <%s>)", user, sl.Reason))
			}
			return fail(&loginError{user: user, reason: string(sl.Reason)})
		}
		// CHECK or a line of a later protocol version: keep waiting.
	}
}

// connect opens a connection to the server, TLS or WebSocket, ready for
// the first line.
func (d *dialer) connect(ctx context.Context, o loginOptions) (net.Conn, error) {
	if d.ws {
		rb := 0
		if o.busy {
			rb = busyReadBuffer
		}
		return DialWebSocket(ctx, "wss://"+d.addr+"/ws", WebSocketOptions{
			TLS: d.tls,
			// The server upgrades only pages of its own host.
			Origin:       "https://" + d.addr,
			Subprotocols: []string{web.Subprotocol},
			Lines:        true,
			Local:        o.local,
			ReadBuffer:   rb,
			ReadLimit:    protocol.MaxServerLine,
		})
	}
	nd := net.Dialer{KeepAlive: -1}
	if o.local != nil {
		nd.LocalAddr = &net.TCPAddr{IP: o.local}
	}
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if o.busy {
		raw = &bufferedConn{Conn: raw, r: bufio.NewReaderSize(raw, busyReadBuffer)}
	}
	conn := tls.Client(raw, d.tls)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return conn, nil
}

// close says goodbye and closes the connection, without waiting long for
// a server that no longer reads.
func (s *session) close() {
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = s.conn.Write(protocol.AppendEndQuery(nil))
	_ = s.conn.Close()
}
