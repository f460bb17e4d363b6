package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestFlagErrors: bad flags are refused with exit status 2 and a message
// that names them, before anything connects.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no certificate check", []string{"--pairs", "2"}, "pass --ca FILE"},
		{"pairs and subscribers", []string{"--insecure", "--pairs", "2", "--subscribers", "3"}, "--pairs and --subscribers exclude each other"},
		{"negative pairs", []string{"--insecure", "--pairs", "-1"}, "--pairs must be at least 1"},
		{"bad transport", []string{"--insecure", "--transport", "quic"}, "--transport must be tls or ws"},
		{"server b for a fan-out", []string{"--insecure", "--server-b", "127.0.0.1:2"}, "--server-b is for a pairs load"},
		{"pid b without server b", []string{"--insecure", "--pairs", "2", "--server-pid", "1", "--server-pid-b", "2"}, "--server-pid-b goes with --server-b"},
		{"pid b without pid", []string{"--insecure", "--pairs", "2", "--server-b", "127.0.0.1:2", "--server-pid-b", "2"}, "--server-pid-b goes with --server-pid"},
		{"small size", []string{"--insecure", "--size", "3"}, "--size must be between"},
		{"argument", []string{"--insecure", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}
