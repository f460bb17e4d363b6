// Package servertest starts real messager servers for tests: TLS on
// 127.0.0.1 with an ephemeral port, a fresh self-signed certificate and a
// user table with cheap password hashes.
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/listen"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
	"github.com/messager/messager/internal/web"
)

// Users maps user names to passwords.
type Users map[string]string

// Option changes the server's configuration before it starts.
type Option func(*server.Config)

// Server is a running test server.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
	// CertFile is the path of the server's certificate, in PEM.
	CertFile string
	// CertPEM is the certificate itself.
	CertPEM []byte
	// Fingerprint is the certificate's "sha256:<hex>" fingerprint.
	Fingerprint string
	// UsersFile is the path of the user.csv the server loaded.
	UsersFile string
	// Server is the running server; it changes on Restart.
	Server *server.Server
	// Web is its web side (the page and /ws on the same port), as
	// `messager serve` runs it by default.
	Web *web.Server

	t       testing.TB
	tls     *tls.Config
	cfg     server.Config
	opts    []Option
	done    chan error
	stopped bool
}

// Start starts a server with the given users, stopped when the test ends.
func Start(t testing.TB, u Users, opts ...Option) *Server {
	t.Helper()
	return StartTLS(t, u, nil, opts...)
}

// StartTLS is Start with the server's TLS configuration; nil means a
// fresh self-signed certificate.
func StartTLS(t testing.TB, u Users, config *tls.Config, opts ...Option) *Server {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := certs.Generate([]string{"localhost", "127.0.0.1", "::1"}, 24*time.Hour)
	if err != nil {
		t.Fatalf("servertest: generate certificate: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("servertest: load certificate: %v", err)
	}
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "user.csv")
	if err := os.WriteFile(usersFile, []byte(UsersCSV(t, u)), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := users.Load(usersFile)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	if config == nil {
		config = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	s := &Server{
		CertFile:    certFile,
		CertPEM:     certPEM,
		Fingerprint: certs.Fingerprint(cert.Certificate[0]),
		UsersFile:   usersFile,
		t:           t,
		opts:        opts,
		tls:         config,
		cfg: server.Config{
			Users:  table,
			Logger: slog.New(slog.DiscardHandler),
			// The users have cheap hashes; so do failed logins.
			Checker: users.NewChecker(0).WithFloor(users.CheapParams),
		},
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.start("127.0.0.1:0")
	t.Cleanup(func() { s.Stop() })
	return s
}

// UsersCSV returns a user.csv holding u with cheap argon2id hashes.
func UsersCSV(t testing.TB, u Users) string {
	t.Helper()
	names := make([]string, 0, len(u))
	for name := range u {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		h, err := users.HashWithParams([]byte(u[name]), users.CheapParams)
		if err != nil {
			t.Fatalf("servertest: hash: %v", err)
		}
		b.WriteString(name + "," + h + "\n")
	}
	return b.String()
}

func (s *Server) start(addr string) {
	s.t.Helper()
	var ln net.Listener
	var err error
	// A restart may race the old socket's release for a moment.
	for i := 0; i < 100; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("servertest: listen: %v", err)
	}
	srv, err := server.New(s.cfg)
	if err != nil {
		s.t.Fatalf("servertest: %v", err)
	}
	s.Addr = ln.Addr().String()
	s.Server = srv
	s.stopped = false
	s.done = make(chan error, 1)
	s.Web = web.New(srv, web.Options{Fingerprint: func() string { return s.Fingerprint }})
	go func() { s.done <- listen.Serve(ln, srv, s.tls, s.Web) }()
}

// Stop shuts the server down gracefully and waits for it.
func (s *Server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		s.t.Errorf("servertest: shutdown: %v", err)
	}
	if err := <-s.done; err != nil {
		s.t.Errorf("servertest: serve: %v", err)
	}
}

// Restart stops the server and starts a new one on the same address with
// the same users and certificate.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(s.Addr)
}

// ServerTLS returns the server's TLS configuration, for a test that
// serves TLS with the same certificate.
func (s *Server) ServerTLS() *tls.Config { return s.tls }

// ClientTLS returns a client configuration that trusts the server's
// certificate.
func (s *Server) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Dial opens a raw TLS connection to the server, closed when the test
// ends.
func (s *Server) Dial(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr, s.ClientTLS())
	if err != nil {
		t.Fatalf("servertest: dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ReloadUsers loads the users file again into the running server.
func (s *Server) ReloadUsers(u Users) {
	s.t.Helper()
	if err := os.WriteFile(s.UsersFile, []byte(UsersCSV(s.t, u)), 0o600); err != nil {
		s.t.Fatal(err)
	}
	table, err := users.Load(s.UsersFile)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cfg.Users = table
	s.Server.SetUsers(table)
}
