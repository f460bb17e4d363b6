package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
)

// tlsServer is a TLS listener on loopback that completes handshakes with
// a fresh self-signed certificate.
type tlsServer struct {
	addr        string
	certFile    string
	fingerprint string
}

func startTLS(t *testing.T) *tlsServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "messager test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return &tlsServer{addr: ln.Addr().String(), certFile: certFile, fingerprint: certs.Fingerprint(der)}
}

func handshake(t *testing.T, addr string, v *Verifier) error {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: v.TLSConfig()}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

func TestTrustOnFirstUse(t *testing.T) {
	srv := startTLS(t)
	dir := filepath.Join(t.TempDir(), "messager")

	// Without --trust-new a new server is refused, showing its fingerprint.
	v, err := New(srv.addr, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = handshake(t, srv.addr, v)
	var unknown *UnknownError
	if !errors.As(err, &unknown) || unknown.Fingerprint != srv.fingerprint {
		t.Fatalf("first contact: %v, want UnknownError with %s", err, srv.fingerprint)
	}
	if _, err := os.Stat(filepath.Join(dir, KnownServersName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("known_servers written without consent: %v", err)
	}

	// With --trust-new it is trusted and remembered.
	var notices bytes.Buffer
	v, err = New(srv.addr, Options{Dir: dir, TrustNew: true, Notices: &notices})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("trust new: %v", err)
	}
	if !strings.Contains(notices.String(), srv.fingerprint) {
		t.Errorf("notice %q does not show the fingerprint", notices.String())
	}
	file := filepath.Join(dir, KnownServersName)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_servers mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", dst.Mode().Perm())
	}
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), srv.addr+" "+srv.fingerprint+"\n") {
		t.Errorf("known_servers = %q", data)
	}

	// Later, the remembered server is trusted without --trust-new.
	v, _ = New(srv.addr, Options{Dir: dir})
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("known server: %v", err)
	}

	// A different certificate on the same address is refused loudly.
	other := startTLS(t)
	known, _ := LoadKnownServers(file)
	known.Set(other.addr, srv.fingerprint)
	if err := SaveKnownServers(file, known); err != nil {
		t.Fatal(err)
	}
	v, _ = New(other.addr, Options{Dir: dir, TrustNew: true})
	err = handshake(t, other.addr, v)
	var changed *ChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("changed certificate: %v, want ChangedError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, srv.fingerprint) || !strings.Contains(msg, other.fingerprint) || !strings.Contains(msg, "CHANGED") {
		t.Errorf("changed error does not show both fingerprints loudly: %s", msg)
	}
	if err := v.Trust(other.fingerprint); !errors.As(err, &changed) {
		t.Errorf("Trust over a changed entry: %v", err)
	}
}

func TestTrustAfterPrompt(t *testing.T) {
	srv := startTLS(t)
	dir := t.TempDir()
	v, _ := New(srv.addr, Options{Dir: dir})
	var unknown *UnknownError
	if err := handshake(t, srv.addr, v); !errors.As(err, &unknown) {
		t.Fatalf("first contact: %v", err)
	}
	if err := v.Trust(unknown.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("after trusting: %v", err)
	}
}

func TestPinned(t *testing.T) {
	srv := startTLS(t)
	upper := "sha256:" + strings.ToUpper(strings.TrimPrefix(srv.fingerprint, "sha256:"))
	v, err := New(srv.addr, Options{Fingerprint: upper, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	wrong := "sha256:" + strings.Repeat("ab", 32)
	v, _ = New(srv.addr, Options{Fingerprint: wrong})
	err = handshake(t, srv.addr, v)
	var pe *PinError
	if !errors.As(err, &pe) || pe.Got != srv.fingerprint {
		t.Fatalf("wrong pin: %v", err)
	}
}

func TestCA(t *testing.T) {
	srv := startTLS(t)
	v, err := New(srv.addr, Options{CAFile: srv.certFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("--ca with the server's certificate: %v", err)
	}
	other := startTLS(t)
	v, _ = New(srv.addr, Options{CAFile: other.certFile})
	if err := handshake(t, srv.addr, v); err == nil {
		t.Fatal("--ca with another certificate succeeded")
	}
	_, port, _ := net.SplitHostPort(srv.addr)
	v, _ = New(net.JoinHostPort("localhost", port), Options{CAFile: srv.certFile})
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatalf("--ca by host name: %v", err)
	}
}

func TestInsecure(t *testing.T) {
	srv := startTLS(t)
	var notices bytes.Buffer
	v, err := New(srv.addr, Options{Insecure: true, Notices: &notices})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notices.String(), "warning") {
		t.Errorf("no warning for --insecure: %q", notices.String())
	}
	if err := handshake(t, srv.addr, v); err != nil {
		t.Fatal(err)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		addr string
		opts Options
	}{
		{"two modes", "h:1", Options{Insecure: true, Fingerprint: "sha256:" + strings.Repeat("00", 32)}},
		{"bad fingerprint", "h:1", Options{Fingerprint: "md5:00"}},
		{"missing ca", "h:1", Options{CAFile: filepath.Join(t.TempDir(), "none.pem")}},
		{"bad address", "nohost", Options{Dir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.addr, tt.opts); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestDefaultDirHonoursXDG(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	got, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "messager"); got != want {
		t.Errorf("DefaultDir = %q, want %q", got, want)
	}
}

func TestParseFingerprints(t *testing.T) {
	a := "sha256:" + strings.Repeat("ab", 32)
	b := "sha256:" + strings.Repeat("0f", 32)
	upperB := "sha256:" + strings.Repeat("0F", 32)
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{in: a, want: []string{a}},
		{in: a + "," + b, want: []string{a, b}},
		{in: " " + a + " , " + upperB + " ", want: []string{a, b}},
		{in: "", err: "no fingerprint"},
		{in: a + ",", err: "fingerprint 2 of 2 is empty"},
		{in: a + ",," + b, err: "fingerprint 2 of 3 is empty"},
		{in: "," + a, err: "fingerprint 1 of 2 is empty"},
		{in: a + "," + a, err: "fingerprint " + a + " is listed twice"},
		{in: b + "," + upperB, err: "is listed twice"},
		{in: a + ",md5:00", err: "md5:00"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFingerprints(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseFingerprints(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("ParseFingerprints(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestPinnedList: with several fingerprints pinned, a certificate with
// any of them passes, on any address; one with none is refused, and the
// error lists them all.
func TestPinnedList(t *testing.T) {
	one, two := startTLS(t), startTLS(t)
	other := "sha256:" + strings.Repeat("ab", 32)
	vs, err := NewList([]string{one.addr, two.addr}, Options{Fingerprint: other + "," + two.fingerprint + "," + one.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, one.addr, vs[0]); err != nil {
		t.Fatalf("first server: %v", err)
	}
	if err := handshake(t, two.addr, vs[1]); err != nil {
		t.Fatalf("second server: %v", err)
	}
	vs, _ = NewList([]string{one.addr, two.addr}, Options{Fingerprint: other + "," + two.fingerprint})
	err = handshake(t, one.addr, vs[0])
	var pe *PinError
	if !errors.As(err, &pe) || pe.Got != one.fingerprint || len(pe.Want) != 2 {
		t.Fatalf("first server, not pinned: %v", err)
	}
	want := "the certificate fingerprint of " + one.addr + " did not match --fingerprint\n" +
		"  expected one of: " + other + "\n" +
		"                   " + two.fingerprint + "\n" +
		"  got:             " + one.fingerprint + "\n"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start %q", err, want)
	}
}

// TestKnownList: the Verifiers of a list trust each address on first use
// with its own certificate, in the one known_servers file, and a changed
// certificate on one address is refused without touching the others.
func TestKnownList(t *testing.T) {
	one, two := startTLS(t), startTLS(t)
	dir := t.TempDir()
	var notices bytes.Buffer
	vs, err := NewList([]string{one.addr, two.addr}, Options{Dir: dir, TrustNew: true, Notices: &notices})
	if err != nil {
		t.Fatal(err)
	}
	for i, srv := range []*tlsServer{one, two} {
		if err := handshake(t, srv.addr, vs[i]); err != nil {
			t.Fatalf("server %d: %v", i+1, err)
		}
	}
	for _, srv := range []*tlsServer{one, two} {
		if !strings.Contains(notices.String(), "trusting "+srv.addr+" on first use, certificate fingerprint "+srv.fingerprint) {
			t.Errorf("notices %q do not tell of %s", notices.String(), srv.addr)
		}
	}
	known, err := LoadKnownServers(filepath.Join(dir, KnownServersName))
	if err != nil {
		t.Fatal(err)
	}
	if fp, _ := known.Lookup(one.addr); fp != one.fingerprint {
		t.Errorf("first server remembered as %q", fp)
	}
	if fp, _ := known.Lookup(two.addr); fp != two.fingerprint {
		t.Errorf("second server remembered as %q", fp)
	}

	// The second address now presents the first one's certificate.
	vs, _ = NewList([]string{one.addr, two.addr}, Options{Dir: dir})
	known.Set(two.addr, "sha256:"+strings.Repeat("cd", 32))
	if err := SaveKnownServers(filepath.Join(dir, KnownServersName), known); err != nil {
		t.Fatal(err)
	}
	var changed *ChangedError
	if err := handshake(t, two.addr, vs[1]); !errors.As(err, &changed) || changed.Addr != two.addr {
		t.Fatalf("changed second server: %v", err)
	}
	if err := handshake(t, one.addr, vs[0]); err != nil {
		t.Fatalf("first server after the second changed: %v", err)
	}
}

// TestInsecureListWarnsOnce: one warning for a list, naming every
// address.
func TestInsecureListWarnsOnce(t *testing.T) {
	var notices bytes.Buffer
	if _, err := NewList([]string{"a:1", "b:2"}, Options{Insecure: true, Notices: &notices}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(notices.String(), "warning"); n != 1 || !strings.Contains(notices.String(), "the identities of a:1, b:2 are not verified") {
		t.Errorf("notices %q, want one warning naming both", notices.String())
	}
}
