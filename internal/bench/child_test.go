package bench

import (
	"context"
	"strings"
	"testing"
)

func TestStartChild(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		addr    string
		wantErr string
	}{
		{
			name: "listening after other lines",
			script: `echo '{"msg":"generated self-signed certificate"}' >&2
echo 'not json' >&2
echo '{"level":"INFO","msg":"listening","addr":"127.0.0.1:4242","fingerprint":"sha256:ab"}' >&2
exec sleep 30`,
			addr: "127.0.0.1:4242",
		},
		{
			name:    "exits before listening",
			script:  `echo '{"msg":"listen: address already in use"}' >&2; exit 1`,
			wantErr: "address already in use",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := startChild(context.Background(), "/bin/sh", []string{"-c", tt.script}, t.TempDir())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one quoting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.addr != tt.addr || c.fingerprint != "sha256:ab" || c.pid == 0 {
				t.Errorf("addr %q, fingerprint %q, pid %d", c.addr, c.fingerprint, c.pid)
			}
			if err := c.stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
}
