package cluster

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", string(NewSecret()), 0o600)
	if b, err := LoadSecret(good); err != nil || len(b) < MinSecretBytes {
		t.Errorf("good secret: %d bytes, %v", len(b), err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"readable by others", write("open", string(NewSecret()), 0o644), "chmod 600"},
		{"too short", write("short", "short secret\n", 0o600), "need at least 32"},
		{"only white space", write("blank", strings.Repeat(" \n", 40), 0o600), "need at least 32"},
	}
	for _, tt := range tests {
		if _, err := LoadSecret(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

// handshake runs a TLS handshake between a server and a client config
// over loopback and returns the first error of either side.
func handshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, srv)
		err = s.Handshake()
		if err == nil {
			_, err = s.Write([]byte("x")) // the client reads it once the server is satisfied
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err == nil {
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
	}
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

func TestRouteTLS(t *testing.T) {
	secret := NewSecret()
	n1, err := RouteTLS(secret)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := RouteTLS(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, n1, n2); err != nil {
		t.Errorf("two nodes with one secret: %v", err)
	}
	other, err := RouteTLS(NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, n1, other); err == nil {
		t.Error("a node with another secret was accepted as a client")
	}
	if err := handshake(t, other, n1); err == nil {
		t.Error("a node with another secret was accepted as a server")
	}
	// A client with no certificate at all is refused.
	bare := n2.Clone()
	bare.Certificates = nil
	if err := handshake(t, n1, bare); err == nil {
		t.Error("a client without a certificate was accepted")
	}
}

func TestNATSLoggerLimitsByKind(t *testing.T) {
	l := &natsLogger{last: make(map[string]time.Time)}
	if l.limited("127.0.0.1:5001 - rid:1 - TLS route handshake error: %v") {
		t.Error("the first line was held back")
	}
	if !l.limited("127.0.0.1:5002 - rid:2 - TLS route handshake error: %v") {
		t.Error("the same kind of line from another connection was passed on")
	}
	if l.limited("Error trying to connect to route: %v") {
		t.Error("another kind of line was held back")
	}
}
