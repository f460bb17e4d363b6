package certs_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/server/servertest"
)

// TestCertReload swaps the certificate under a running server: new
// connections see the new one, sessions that are up go on, and a broken
// file keeps the old certificate.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	src, created, err := certs.NewSource(certFile, keyFile)
	if err != nil || !created {
		t.Fatalf("NewSource: created %v, %v", created, err)
	}
	first := src.Fingerprint()
	srv := servertest.StartTLS(t, servertest.Users{"alice": "pw-alice"}, src.TLSConfig())
	if got := servedFingerprint(t, srv.Addr); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}
	alice := loginInsecure(t, srv.Addr, "alice", "pw-alice")

	if _, err := certs.WriteNew(certFile, keyFile, []string{"localhost", "127.0.0.1"}, true); err != nil {
		t.Fatal(err)
	}
	second, err := src.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("the new certificate has the old fingerprint")
	}
	if got := servedFingerprint(t, srv.Addr); got != second {
		t.Errorf("after reload served %s, want %s", got, second)
	}
	alice.Send("MSG alice alice still connected\r\n")
	alice.Expect("RELAY alice alice still connected \r\n")

	// A broken key: the reload fails and the current certificate stays.
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(); err == nil {
		t.Error("reload of a broken key succeeded")
	}
	if got := servedFingerprint(t, srv.Addr); got != second {
		t.Errorf("after a failed reload served %s, want %s", got, second)
	}
	if src.Fingerprint() != second {
		t.Errorf("Fingerprint() = %s after a failed reload, want %s", src.Fingerprint(), second)
	}
}

// servedFingerprint connects and returns the fingerprint of the
// certificate the server presents.
func servedFingerprint(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return certs.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

// loginInsecure logs in without checking the certificate, which the test
// is about to change.
func loginInsecure(t *testing.T, addr, user, password string) *servertest.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := servertest.NewConn(t, conn)
	c.Send("AUTH " + user + " " + password + "\r\n")
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}
