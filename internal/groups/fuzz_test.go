package groups

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/messager/messager/internal/linefile"
)

// FuzzParse checks that Parse never panics, that every error names its
// line, that reading the input in two pieces changes nothing, and that
// every table it accepts survives a round trip: written in the canonical
// format and parsed again, it holds the same groups, and its canonical
// form is stable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"#team,alice,bob\n",
		"#team,alice\r\n#lobby,*\r\n#quiet",
		"\ufeff #Team , bob ,\talice \n\n",
		"#a,x\n#A,y\n",
		"#a,x,x\n",
		"#a,x,X\n",
		"#lobby,*,alice\n",
		"#team,,alice\n",
		"#team,\n",
		"group,users\n#team,alice\n",
		"# staff\n",
		"team,alice\n",
		"#" + strings.Repeat("g", 33) + ",alice\n",
		"#g," + strings.Repeat("u", 33) + "\n",
		"#\xff,alice\n",
		"\ufeff\ufeff#a",
		"\r\n\r\r\n#a,b\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, tab2, err := linefile.ParseTwice(t, data, Parse)
		if err != nil {
			return
		}
		groups := tab.Groups()
		if !reflect.DeepEqual(groups, tab2.Groups()) {
			t.Fatalf("two reads give other groups")
		}
		for _, g := range groups {
			if !tab.Allowed(g.Name, "x") && g.Everyone {
				t.Fatalf("%s lets everyone join but not x", g.Name)
			}
			for _, u := range g.Users {
				if !tab.Allowed(strings.ToUpper(g.Name), u) {
					t.Fatalf("%q is listed in %s but not allowed", u, g.Name)
				}
			}
		}
		out := tab.appendCSV(nil)
		back, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !reflect.DeepEqual(groups, back.Groups()) {
			t.Fatalf("groups changed in round trip:\n%+v\n%+v", groups, back.Groups())
		}
		if out2 := back.appendCSV(nil); !bytes.Equal(out, out2) {
			t.Fatalf("canonical form not stable:\n%q\n%q", out, out2)
		}
	})
}
