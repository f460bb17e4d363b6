package users

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that every table it accepts
// survives a round trip: written in the canonical format and parsed again,
// it holds the same users with the same credentials.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"alice,pw\n",
		"alice,pw\r\nbob,pw2",
		"# c\n\n alice , pw \n",
		"alice," + argonSecret + "\n",
		"bob," + bcryptSecret + "\n",
		"alice,a\nAlice,b\n",
		"alice,$argon2id$v=19$m=4194305,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g",
		"alice,$2b$99$",
		"x,$6$y",
		"a,b,c\n\n\r\n",
		"\xff,pw",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error without line number: %v", err)
			}
			return
		}
		out := tab.appendCSV(nil)
		tab2, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if tab.Len() != tab2.Len() {
			t.Fatalf("%d users, %d after round trip", tab.Len(), tab2.Len())
		}
		for _, n := range tab.Names() {
			a, b := tab.lookup(n), tab2.lookup(n)
			if b == nil || a.cred.kind != b.cred.kind || a.cred.encoded != b.cred.encoded {
				t.Fatalf("user %q changed in round trip", n)
			}
		}
		if out2 := tab2.appendCSV(nil); !bytes.Equal(out, out2) {
			t.Fatalf("canonical form not stable:\n%q\n%q", out, out2)
		}
	})
}
