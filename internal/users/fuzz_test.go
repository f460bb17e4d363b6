package users

import (
	"bytes"
	"strings"
	"testing"

	"github.com/messager/messager/internal/linefile"
	"golang.org/x/crypto/bcrypt"
)

// FuzzParse checks that Parse never panics, that every error names its
// line and is the same when the input is read in two pieces, that every
// hash it accepts is within the cost limits, and that every table it
// accepts survives a round trip: written in the canonical format and
// parsed again, it holds the same users with the same credentials.
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
		"alice,$argon2id$v=19$m=262144,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g",
		"alice,$argon2id$v=19$m=31129,t=10,p=16$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g",
		"bob," + strings.Replace(bcryptSecret, "$04$", "$15$", 1),
		"x,$6$y",
		"a,b,c\n\n\r\n",
		"\xff,pw",
		"\ufeffalice,pw\n",
		"name,password\nalice,pw\n",
		"alice,pw\nLogin , Hash\n",
		"\ufeff\ufeffuser,pass",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, _, err := linefile.ParseTwice(t, data, Parse)
		if err != nil {
			return
		}
		for _, n := range tab.Names() {
			c := tab.lookup(n).cred
			if c.kind == kindArgon2id && checkParams(c.params) != nil {
				t.Fatalf("user %q: accepted %+v: %v", n, c.params, checkParams(c.params))
			}
			if c.kind == kindBcrypt {
				if cost, err := bcrypt.Cost([]byte(c.encoded)); err != nil || cost > maxBcryptCost {
					t.Fatalf("user %q: accepted bcrypt cost %d, %v", n, cost, err)
				}
			}
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
