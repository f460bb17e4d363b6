package certs

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParseFingerprint checks that ParseFingerprint never panics and that
// whatever it accepts formats back to a fingerprint it parses to the same
// digest.
func FuzzParseFingerprint(f *testing.F) {
	for _, s := range []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55",
		"sha256:",
		":::",
		"sha256:zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if len(b) != 32 {
			t.Fatalf("digest of %d bytes", len(b))
		}
		canon := FingerprintPrefix + hex.EncodeToString(b)
		b2, err := ParseFingerprint(canon)
		if err != nil || !bytes.Equal(b, b2) || strings.ToLower(canon) != canon {
			t.Fatalf("round trip of %q: %q, %v", s, canon, err)
		}
	})
}
