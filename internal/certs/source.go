package certs

import (
	"crypto/tls"
	"sync/atomic"
)

// Source serves a server's certificate and can reload it from disk, so a
// renewed certificate needs no restart.
type Source struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
	fingerprint       atomic.Pointer[string]
}

// NewSource loads the certificate and key, generating a self-signed pair
// when both files are missing. created reports that it did.
func NewSource(certFile, keyFile string) (src *Source, created bool, err error) {
	cert, fp, created, err := LoadOrCreate(certFile, keyFile)
	if err != nil {
		return nil, false, err
	}
	src = &Source{certFile: certFile, keyFile: keyFile}
	src.cert.Store(&cert)
	src.fingerprint.Store(&fp)
	return src, created, nil
}

// Reload loads the files again; on error the old certificate stays.
func (c *Source) Reload() (fingerprint string, err error) {
	cert, fp, err := Load(c.certFile, c.keyFile)
	if err != nil {
		return "", err
	}
	c.cert.Store(&cert)
	c.fingerprint.Store(&fp)
	return fp, nil
}

// Fingerprint returns the current certificate's fingerprint.
func (c *Source) Fingerprint() string { return *c.fingerprint.Load() }

// KeyFile is the path of the private key.
func (c *Source) KeyFile() string { return c.keyFile }

// TLSConfig returns a server configuration that always serves the
// current certificate.
func (c *Source) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
}
