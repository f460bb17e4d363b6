// Package certs makes and loads the server's TLS certificate and computes
// the fingerprints clients pin.
//
// The server normally uses a self-signed certificate, so clients cannot
// check it against a certificate authority; instead they compare the
// certificate's fingerprint, "sha256:" followed by the lowercase hex
// SHA-256 of its DER bytes, with one they were given out of band.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/messager/messager/internal/atomicfile"
)

// DefaultValidity is how long generated certificates are valid: long, as
// clients pin the fingerprint and a renewal means telling every user the
// new one.
const DefaultValidity = 10 * 365 * 24 * time.Hour

// FingerprintPrefix starts every fingerprint.
const FingerprintPrefix = "sha256:"

// DefaultHosts returns the names a generated certificate is valid for when
// none are given: localhost, 127.0.0.1, ::1 and this machine's host name.
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
	}
	return hosts
}

// Generate makes a self-signed ECDSA P-256 certificate valid for validFor
// from now, for hosts: IP addresses become IP SANs, other names DNS SANs.
// It returns the certificate and its PKCS #8 private key, PEM-encoded.
func Generate(hosts []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("generate certificate: no host names")
	}
	if validFor <= 0 {
		return nil, nil, errors.New("generate certificate: validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial number: %w", err)
	}
	// Backdate a little so that a client whose clock is slightly behind
	// still accepts a certificate made a moment ago.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"messager"}, CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, nil, errors.New("generate certificate: empty host name")
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// WriteNew generates a certificate for hosts, valid for DefaultValidity,
// and writes it to certPath (mode 0644) and its key to keyPath (mode 0600).
// Unless force is set it refuses to replace either file. It returns the
// certificate's fingerprint.
func WriteNew(certPath, keyPath string, hosts []string, force bool) (fingerprint string, err error) {
	return writeNew(certPath, keyPath, hosts, DefaultValidity, force)
}

// WriteNewValidFor is WriteNew with a validity of validFor.
func WriteNewValidFor(certPath, keyPath string, hosts []string, validFor time.Duration, force bool) (fingerprint string, err error) {
	return writeNew(certPath, keyPath, hosts, validFor, force)
}

func writeNew(certPath, keyPath string, hosts []string, validFor time.Duration, force bool) (string, error) {
	if certPath == keyPath {
		return "", fmt.Errorf("certificate and key must be different files, both are %s", certPath)
	}
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", fmt.Errorf("%s already exists (use --force to replace it)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	certPEM, keyPEM, err := Generate(hosts, validFor)
	if err != nil {
		return "", err
	}
	// The key first: a certificate without its key is useless, and a
	// failure then leaves no certificate that seems to work.
	if err := writeFile(keyPath, keyPEM, 0o600, force); err != nil {
		return "", err
	}
	if err := writeFile(certPath, certPEM, 0o644, force); err != nil {
		return "", err
	}
	return FingerprintPEM(certPEM)
}

// writeFile writes a certificate or key file whole, with its final mode
// from the start. Without replace, an existing file is an error, even one
// created since the caller's check.
func writeFile(path string, data []byte, mode os.FileMode, replace bool) error {
	if replace {
		return atomicfile.Write(path, data, mode)
	}
	if err := atomicfile.Create(path, data, mode); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists (use --force to replace it)", path)
	} else if err != nil {
		return err
	}
	return nil
}

// LoadOrCreate loads the certificate and key at certPath and keyPath. When
// both files are missing it first generates a certificate for
// DefaultHosts there, and reports created. When only one is missing it
// fails rather than replace the other.
func LoadOrCreate(certPath, keyPath string) (cert tls.Certificate, fingerprint string, created bool, err error) {
	certMissing, err := missing(certPath)
	if err != nil {
		return tls.Certificate{}, "", false, err
	}
	keyMissing, err := missing(keyPath)
	if err != nil {
		return tls.Certificate{}, "", false, err
	}
	switch {
	case certMissing && keyMissing:
		if _, err := WriteNew(certPath, keyPath, DefaultHosts(), false); err != nil {
			return tls.Certificate{}, "", false, err
		}
		created = true
	case certMissing:
		return tls.Certificate{}, "", false, fmt.Errorf("key %s exists but certificate %s does not: give both files, or move the key away to generate a new pair", keyPath, certPath)
	case keyMissing:
		return tls.Certificate{}, "", false, fmt.Errorf("certificate %s exists but key %s does not: give both files, or move the certificate away to generate a new pair", certPath, keyPath)
	}
	cert, fingerprint, err = Load(certPath, keyPath)
	return cert, fingerprint, created, err
}

func missing(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return false, err
}

// Load reads a PEM certificate (chain) and its key and returns them with
// the fingerprint of the first, the server's own, certificate.
func Load(certPath, keyPath string) (tls.Certificate, string, error) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("load certificate %s and key %s: %w", certPath, keyPath, err)
	}
	return cert, Fingerprint(cert.Certificate[0]), nil
}

// Fingerprint returns "sha256:" and the lowercase hex SHA-256 of a
// certificate's DER bytes.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return FingerprintPrefix + hex.EncodeToString(sum[:])
}

// FingerprintPEM returns the fingerprint of the first certificate in
// pemBytes.
func FingerprintPEM(pemBytes []byte) (string, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", errors.New("no PEM certificate found")
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				return "", fmt.Errorf("parse certificate: %w", err)
			}
			return Fingerprint(block.Bytes), nil
		}
	}
}

// ParseFingerprint returns the 32-byte digest of a fingerprint written as
// "sha256:" and 64 hex digits. Upper- or lowercase hex is accepted, as are
// colons between pairs of digits ("AB:CD:..."), the way other tools print
// fingerprints; the "sha256:" prefix is optional.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.TrimSpace(s)
	if len(h) >= len(FingerprintPrefix) && strings.EqualFold(h[:len(FingerprintPrefix)], FingerprintPrefix) {
		h = h[len(FingerprintPrefix):]
	}
	if strings.Contains(h, ":") {
		pairs := strings.Split(h, ":")
		for _, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("invalid fingerprint %s: colons must separate pairs of hex digits", quote(s))
			}
		}
		h = strings.Join(pairs, "")
	}
	if len(h) != 2*sha256.Size {
		return nil, fmt.Errorf("invalid fingerprint %s: want %s and %d hex digits", quote(s), FingerprintPrefix, 2*sha256.Size)
	}
	sum, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("invalid fingerprint %s: not hex", quote(s))
	}
	return sum, nil
}

// CanonicalFingerprint returns a fingerprint written any way
// ParseFingerprint accepts in the one form the server prints and pins
// compare: "sha256:" and 64 lowercase hex digits.
func CanonicalFingerprint(s string) (string, error) {
	sum, err := ParseFingerprint(s)
	if err != nil {
		return "", err
	}
	return FingerprintPrefix + hex.EncodeToString(sum), nil
}

func quote(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q...", s[:80])
	}
	return fmt.Sprintf("%q", s)
}
