package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchFlagErrors: bad transport and second-node flags are usage
// errors (exit status 2) that say what is wrong, before anything runs.
func TestBenchFlagErrors(t *testing.T) {
	fp := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown transport", []string{"--transport", "quic"}, "--transport must be tls or ws"},
		{"empty transport", []string{"--transport", ""}, "--transport must be tls or ws"},
		{"server b without server", []string{"--server-b", "127.0.0.1:2"}, "--server-b needs --server"},
		{"pid b without server b", []string{"--server", "127.0.0.1:1", "--server-pid", "1", "--server-pid-b", "1"}, "go with --server-b"},
		{"pid b without pid", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--server-pid-b", "1"}, "--server-pid-b goes with --server-pid"},
		{"fingerprint b without server b", []string{"--server", "127.0.0.1:1", "--fingerprint-b", fp}, "--fingerprint-b is for a --server-b"},
		{"fingerprint b and ca", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--ca", "ca.pem", "--fingerprint-b", fp}, "--fingerprint-b excludes --insecure and --ca"},
		{"fingerprint b and insecure", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--insecure", "--fingerprint-b", fp}, "--fingerprint-b excludes --insecure and --ca"},
		{"server b and idle", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--sessions", "3", "--idle"}, "--server-b is for the 1:1 and group loads"},
		{"server b and presence", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--sessions", "3", "--presence"}, "--server-b is for the 1:1 and group loads"},
		{"bad pid b", []string{"--server", "127.0.0.1:1", "--server-b", "127.0.0.1:2", "--server-pid", "1", "--server-pid-b", "x"}, "invalid argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"bench"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}
