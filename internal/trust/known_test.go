package trust

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

var fpA = "sha256:" + strings.Repeat("ab", 32)
var fpB = "sha256:" + strings.Repeat("01", 32)

func TestParseKnownServers(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		errLine  string
	}{
		{"empty", "", map[string]string{}, ""},
		{"comments and blanks", "# hi\n\n  \nexample.org:18443 " + fpA + "\n", map[string]string{"example.org:18443": fpA}, ""},
		{"no prefix", "Example.ORG:1 " + strings.ToUpper(fpB[7:]) + "\r\n", nil, "line 1"},
		{"host lowercased", "Example.ORG:1 " + fpB + "\r\n", map[string]string{"example.org:1": fpB}, ""},
		{"ipv6", "[::1]:18443 " + fpA + "\n", map[string]string{"[::1]:18443": fpA}, ""},
		{"two", "a:1 " + fpA + "\nb:2 " + fpB, map[string]string{"a:1": fpA, "b:2": fpB}, ""},
		{"three fields", "a:1 " + fpA + " extra\n", nil, "line 1"},
		{"no port", "# c\na " + fpA + "\n", nil, "line 2"},
		{"bad fingerprint", "a:1 sha256:00\n", nil, "line 1"},
		{"duplicate", "a:1 " + fpA + "\nA:1 " + fpB + "\n", nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKnownServers(strings.NewReader(tt.in))
			if tt.errLine != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errLine) {
					t.Fatalf("err = %v, want one naming %s", err, tt.errLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Len() != len(tt.want) {
				t.Errorf("%d entries, want %d", k.Len(), len(tt.want))
			}
			for addr, fp := range tt.want {
				if got, ok := k.Lookup(addr); !ok || got != fp {
					t.Errorf("Lookup(%s) = %q, %v", addr, got, ok)
				}
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", KnownServersName)
	k, err := LoadKnownServers(path)
	if err != nil || k.Len() != 0 {
		t.Fatalf("missing file: %v, %d entries", err, k.Len())
	}
	k.Set("b:2", fpB)
	k.Set("a:1", fpA)
	k.Set("b:2", fpA)
	if err := SaveKnownServers(path, k); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKnownServers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Format(), k.Format()) {
		t.Errorf("round trip:\n%s\nwant\n%s", got.Format(), k.Format())
	}
}

// FuzzParseKnownServers checks that parsing never panics and that what
// parses formats to a file that parses to the same thing.
func FuzzParseKnownServers(f *testing.F) {
	f.Add("a:1 " + fpA + "\n")
	f.Add("# c\n\n[::1]:18443 " + fpB + "\r\nexample.org:18443 " + fpA)
	f.Add("a:1 sha256:" + strings.Repeat("AB:", 32))
	f.Add("a 1 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKnownServers(strings.NewReader(in))
		if err != nil {
			return
		}
		out := k.Format()
		k2, err := ParseKnownServers(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("formatted file does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(k2.Format(), out) {
			t.Fatalf("round trip changed the file:\n%s\n%s", out, k2.Format())
		}
	})
}
