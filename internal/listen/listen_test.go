package listen_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/messager/messager/internal/server/servertest"
)

// TestTLSConfig: the listener offers TLS 1.2 with AEAD suites only, and
// never less than TLS 1.2.
func TestTLSConfig(t *testing.T) {
	srv := servertest.Start(t, servertest.Users{"alice": "pw-alice"})
	for _, tc := range []struct {
		name string
		cfg  func(*tls.Config)
		ok   bool
	}{
		{"TLS 1.3", func(c *tls.Config) {}, true},
		{"TLS 1.2 GCM", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, true},
		{"TLS 1.2 CBC", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
		}, false},
		{"TLS 1.1", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, false},
	} {
		cfg := srv.ClientTLS()
		tc.cfg(cfg)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.Addr, cfg)
		if err == nil {
			c.Close()
		}
		var ne net.Error
		if (err == nil) != tc.ok || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
