package invites

import (
	"bytes"
	"strings"
	"testing"

	"github.com/messager/messager/internal/linefile"
)

// FuzzParse checks that the file parser never panics, that every error
// names its line, that reading the input in two pieces changes nothing,
// that every invite it accepts is within the bounds Create keeps to, and
// that every file it accepts survives a round trip: written in the
// canonical format and parsed again, it holds the same invites with the
// same hashes, and its canonical form is stable.
func FuzzParse(f *testing.F) {
	h := strings.Repeat("0f", 32)
	for _, s := range []string{
		"",
		"0123abcd," + h + ",5,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\r\nffffffff," + strings.Repeat("e", 64) + ",1000,2026-06-01T12:00:00.123Z,2025-06-01T12:00:00Z",
		"\ufeff # note\n\n 0123abcd , " + h + " , 007 , 2025-06-08T14:00:00+02:00 , 2025-06-01T12:00:00Z \n",
		"id,hash,uses,expires,created\n",
		"0123ABCD," + h + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",0,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",1,2025-06-01T12:00:00Z,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",1,9999-12-31T23:00:00-02:00,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n0123abcd," + h + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n",
		"0123abcd," + h + ",1,2025-06-08T12:00:00Z\n",
		"\ufeff\ufeff0123abcd",
		"\r\n\r\r\n0123abcd," + h + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, tab2, err := linefile.ParseTwice(t, data, parseReader)
		if err != nil {
			return
		}
		if !bytes.Equal(tab.appendCSV(nil), tab2.appendCSV(nil)) {
			t.Fatalf("two reads give other invites")
		}
		for _, e := range tab.sorted {
			inv := e.inv
			if !lowerHex(inv.ID, idLen) || !lowerHex(e.hash, 64) || inv.Uses < 1 || inv.Uses > MaxUses || !inv.Expires.After(inv.Created) {
				t.Fatalf("accepted %+v, hash %q", inv, e.hash)
			}
			if tab.byID[inv.ID] != e || tab.byHash[e.hash] != e {
				t.Fatalf("invite %s is not indexed", inv.ID)
			}
		}
		out := tab.appendCSV(nil)
		back, err := parse(linefile.Split(out))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if len(back.sorted) != len(tab.sorted) {
			t.Fatalf("%d invites, %d after round trip", len(tab.sorted), len(back.sorted))
		}
		for i, e := range tab.sorted {
			b := back.sorted[i]
			if b.inv.ID != e.inv.ID || b.hash != e.hash || b.inv.Uses != e.inv.Uses ||
				!b.inv.Expires.Equal(e.inv.Expires) || !b.inv.Created.Equal(e.inv.Created) {
				t.Fatalf("invite changed in round trip:\n%+v %s\n%+v %s", e.inv, e.hash, b.inv, b.hash)
			}
		}
		if out2 := back.appendCSV(nil); !bytes.Equal(out, out2) {
			t.Fatalf("canonical form not stable:\n%q\n%q", out, out2)
		}
	})
}
