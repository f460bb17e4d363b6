package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var fingerprintRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestGenerate(t *testing.T) {
	certPEM, keyPEM, err := Generate([]string{"localhost", "127.0.0.1", "::1", "[fe80::1]", "chat.example.org"}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("certificate PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"localhost", "chat.example.org"}) {
		t.Errorf("DNS SANs = %q", cert.DNSNames)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1", "fe80::1"}) {
		t.Errorf("IP SANs = %q", ips)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
	}
	if d := time.Until(cert.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("NotAfter in %v, want about 48h", d)
	}
	if time.Now().Before(cert.NotBefore) {
		t.Errorf("NotBefore %v is in the future", cert.NotBefore)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "chat.example.org"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("VerifyHostname(%q): %v", host, err)
		}
	}
	if err := cert.VerifyHostname("other.example.org"); err == nil {
		t.Error("certificate valid for a host it was not made for")
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("key does not match certificate: %v", err)
	}
	fp, err := FingerprintPEM(certPEM)
	if err != nil || fp != Fingerprint(block.Bytes) || !fingerprintRE.MatchString(fp) {
		t.Fatalf("FingerprintPEM = %q, %v", fp, err)
	}

	for _, hosts := range [][]string{nil, {"localhost", " "}} {
		if _, _, err := Generate(hosts, time.Hour); err == nil {
			t.Errorf("Generate(%q) succeeded", hosts)
		}
	}
	if _, _, err := Generate([]string{"localhost"}, 0); err == nil {
		t.Error("Generate with no validity succeeded")
	}
}

func TestDefaultHosts(t *testing.T) {
	h := DefaultHosts()
	if len(h) < 3 || h[0] != "localhost" || h[1] != "127.0.0.1" || h[2] != "::1" {
		t.Fatalf("DefaultHosts = %q", h)
	}
	if name, err := os.Hostname(); err == nil && name != "localhost" && !slices.Contains(h, name) {
		t.Fatalf("DefaultHosts = %q lacks host name %q", h, name)
	}
}

func TestWriteNewLoad(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	fp, err := WriteNew(certPath, keyPath, []string{"localhost"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !fingerprintRE.MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
	checkMode(t, keyPath, 0o600)
	checkMode(t, certPath, 0o644)
	cert, fp2, err := Load(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fp2 != fp || Fingerprint(cert.Certificate[0]) != fp {
		t.Fatalf("Load fingerprint %q, WriteNew said %q", fp2, fp)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".messager-tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %q", left)
	}

	// No overwrite without force, of either file; nothing changes.
	before, _ := os.ReadFile(certPath)
	for _, paths := range [][2]string{{certPath, keyPath}, {certPath, filepath.Join(dir, "new-key.pem")}, {filepath.Join(dir, "new.pem"), keyPath}} {
		_, err := WriteNew(paths[0], paths[1], []string{"localhost"}, false)
		if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("WriteNew(%q) over existing files: %v", paths, err)
		}
	}
	if after, _ := os.ReadFile(certPath); !bytes.Equal(before, after) {
		t.Fatal("refused WriteNew changed the certificate")
	}
	for _, p := range []string{"new-key.pem", "new.pem"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Fatalf("refused WriteNew created %s", p)
		}
	}

	// With force, a new pair replaces the old one, modes kept.
	os.Chmod(keyPath, 0o644)
	fp3, err := WriteNew(certPath, keyPath, []string{"localhost"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if fp3 == fp {
		t.Fatal("forced WriteNew kept the old certificate")
	}
	checkMode(t, keyPath, 0o600)
	checkMode(t, certPath, 0o644)
	if _, fp4, err := Load(certPath, keyPath); err != nil || fp4 != fp3 {
		t.Fatalf("Load after force = %q, %v; want %q", fp4, err, fp3)
	}

	if _, err := WriteNew(certPath, certPath, []string{"localhost"}, true); err == nil {
		t.Fatal("WriteNew with one path for both files succeeded")
	}
	if _, err := WriteNew(filepath.Join(dir, "no", "c.pem"), filepath.Join(dir, "no", "k.pem"), []string{"localhost"}, false); err == nil {
		t.Fatal("WriteNew into a missing directory succeeded")
	}
}

func TestWriteNewValidFor(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := WriteNewValidFor(certPath, keyPath, []string{"localhost"}, 24*time.Hour, false); err != nil {
		t.Fatal(err)
	}
	cert, _, err := Load(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	if d := time.Until(leaf.NotAfter); d > 25*time.Hour {
		t.Fatalf("valid for %v, want 24h", d)
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert, fp, created, err := LoadOrCreate(certPath, keyPath)
	if err != nil || !created || !fingerprintRE.MatchString(fp) || len(cert.Certificate) == 0 {
		t.Fatalf("LoadOrCreate in empty dir = %q, created %v, %v", fp, created, err)
	}
	checkMode(t, keyPath, 0o600)
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	for _, h := range DefaultHosts() {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("generated certificate not valid for %q: %v", h, err)
		}
	}
	_, fp2, created, err := LoadOrCreate(certPath, keyPath)
	if err != nil || created || fp2 != fp {
		t.Fatalf("second LoadOrCreate = %q, created %v, %v; want %q", fp2, created, err, fp)
	}

	// One file missing: an error naming both, and nothing generated.
	os.Rename(keyPath, keyPath+".bak")
	_, _, _, err = LoadOrCreate(certPath, keyPath)
	if err == nil || !strings.Contains(err.Error(), keyPath) || !strings.Contains(err.Error(), "does not") {
		t.Fatalf("LoadOrCreate without key: %v", err)
	}
	if _, err := os.Stat(keyPath); err == nil {
		t.Fatal("LoadOrCreate made a key for an existing certificate")
	}
	os.Rename(keyPath+".bak", keyPath)
	os.Rename(certPath, certPath+".bak")
	_, _, _, err = LoadOrCreate(certPath, keyPath)
	if err == nil || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("LoadOrCreate without certificate: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, _, err := Load(certPath, keyPath); err == nil {
		t.Fatal("Load of missing files succeeded")
	}
	os.WriteFile(certPath, []byte("garbage\n"), 0o644)
	os.WriteFile(keyPath, []byte("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, _, err := Load(certPath, keyPath); err == nil || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("Load of garbage: %v", err)
	}
	if _, _, _, err := LoadOrCreate(certPath, keyPath); err == nil {
		t.Fatal("LoadOrCreate of garbage succeeded")
	}
	// A key that does not match the certificate.
	if _, err := WriteNew(certPath, filepath.Join(dir, "k1.pem"), []string{"localhost"}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNew(filepath.Join(dir, "c2.pem"), keyPath, []string{"localhost"}, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(certPath, keyPath); err == nil {
		t.Fatal("Load of mismatched pair succeeded")
	}
}

func TestFingerprintPEM(t *testing.T) {
	certPEM, keyPEM, err := Generate([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FingerprintPEM(certPEM)
	// A key block first is skipped.
	if got, err := FingerprintPEM(append(slices.Clone(keyPEM), certPEM...)); err != nil || got != want {
		t.Errorf("FingerprintPEM(key+cert) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "garbage", string(keyPEM), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if fp, err := FingerprintPEM([]byte(bad)); err == nil {
			t.Errorf("FingerprintPEM(%q) = %q", bad, fp)
		}
	}
	// Known vector: SHA-256 of the empty string.
	if got := Fingerprint(nil); got != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Fingerprint(nil) = %q", got)
	}
}

func TestParseFingerprint(t *testing.T) {
	const hexFP = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	want := Fingerprint(nil)
	colons := func(s string) string {
		var parts []string
		for i := 0; i < len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	good := []string{
		"sha256:" + hexFP,
		"SHA256:" + strings.ToUpper(hexFP),
		hexFP,
		"sha256:" + colons(hexFP),
		strings.ToUpper(colons(hexFP)),
		"  sha256:" + hexFP + "\n",
	}
	for _, s := range good {
		b, err := ParseFingerprint(s)
		if err != nil || FingerprintPrefix+hex.EncodeToString(b) != want {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, b, err)
		}
		if got, err := CanonicalFingerprint(s); err != nil || got != want {
			t.Errorf("CanonicalFingerprint(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	bad := []string{
		"",
		"sha256:",
		"sha256:" + hexFP[:62],
		"sha256:" + hexFP + "00",
		"sha256:" + hexFP[:63] + "g",
		"md5:" + hexFP,
		"sha256:" + colons(hexFP)[1:],
		"sha256:" + hexFP[:2] + "::" + hexFP[2:],
		"sha256:" + colons(hexFP) + ":",
	}
	for _, s := range bad {
		if b, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) = %x, want error", s, b)
		}
		if got, err := CanonicalFingerprint(s); err == nil {
			t.Errorf("CanonicalFingerprint(%q) = %q, want error", s, got)
		}
	}
}

// TestHandshake checks that a client pinning the fingerprint can talk to a
// server using the loaded certificate over real TLS.
func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	cert, fp, _, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("ok"))
		c.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, // checked by fingerprint below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != fp {
				t.Errorf("server fingerprint %s, want %s", got, fp)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func checkMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != want {
		t.Errorf("%s has mode %o, want %o", filepath.Base(p), m, want)
	}
}
