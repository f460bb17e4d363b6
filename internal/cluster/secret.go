package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"time"
)

// MinSecretBytes is the least a cluster secret holds.
const MinSecretBytes = 32

// routeServerName is the name every route certificate is made for and
// every route handshake asks for: routes are dialled by address, and the
// certificate proves membership of the cluster, not a host name.
const routeServerName = "messager-cluster"

// NewSecret returns a new cluster secret, as the text of a secret file:
// 32 random bytes in base64, and a line end.
func NewSecret() []byte {
	b := make([]byte, MinSecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return []byte(base64.StdEncoding.EncodeToString(b) + "\n")
}

// LoadSecret reads a cluster secret file. The file must not be readable
// or writable by group or others, and must hold at least 32 bytes (after
// trimming white space): anyone who has it can join the cluster.
func LoadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cluster secret %s: mode %04o lets others read it; run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("cluster secret %s: %d bytes, need at least %d (make one with: messager cluster secret > %s)", path, len(b), MinSecretBytes, path)
	}
	return b, nil
}

// derive returns n bytes derived from the secret for purpose.
func derive(secret []byte, purpose string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, []byte("messager cluster v1"), purpose, n)
	if err != nil {
		panic(err) // only for n too large, a programming error
	}
	return k
}

// RouteTLS returns the TLS configuration of the routes between nodes.
// Every node derives the same certificate authority from the secret (an
// Ed25519 key from HKDF, so the same key on every node) and makes itself
// a fresh route key and certificate signed by it at start. Both ends of a
// route must present a certificate of that authority: a peer without the
// secret can neither join nor read. The returned config serves both the
// accepting and the dialling side.
func RouteTLS(secret []byte) (*tls.Config, error) {
	caKey := ed25519.NewKeyFromSeed(derive(secret, "route ca key", ed25519.SeedSize))
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "messager cluster CA"},
		NotBefore:             notBefore,
		NotAfter:              time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          derive(secret, "route ca id", 20),
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster route CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("cluster route CA: %w", err)
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster route key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cluster route key: %w", err)
	}
	now := time.Now()
	nodeTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: routeServerName},
		DNSNames:     []string{routeServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, ca, nodeKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster route certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{nodeDER, caDER}, PrivateKey: nodeKey}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   routeServerName,
	}, nil
}

// errNoSecret is the refusal of a route port without a secret.
var errNoSecret = errors.New("cluster: a route port needs --cluster-secret FILE (make one with: messager cluster secret > FILE; chmod 600 FILE)")
