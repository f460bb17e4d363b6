package bans

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/linefile"
)

// FuzzParse checks that Parse never panics, that every error names its
// line, that reading the input in two pieces changes nothing, that every
// ban it accepts is found by User or Addr while it holds, and that every
// table it accepts survives a round trip: written in the canonical format
// and parsed again, it holds the same bans, and its canonical form is
// stable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"mallory,2025-06-01T12:00:00Z,,abuse\n",
		"203.0.113.0/24,2025-06-01T12:00:00Z,2025-06-08T12:00:00Z,spam, and more\r\n2001:db8::/32,2025-06-01T12:00:00Z,,",
		"\ufeff # note\n\n ::ffff:203.0.113.7 , 2025-06-01T14:00:00+02:00 , , x \n",
		"user:10.0.0.1,2025-06-01T12:00:00.25Z,,\n10.0.0.1,2025-06-01T12:00:00Z,,\n",
		"10.0.0.256,2025-06-01T12:00:00Z,,\n",
		"203.0.113.7/24,2025-06-01T12:00:00Z,,\n",
		"fe80::1%eth0,2025-06-01T12:00:00Z,,\n",
		"a,2025-06-01T12:00:00Z,,\na,2025-06-01T12:00:00Z,,\n",
		"1.2.3.4,2025-06-01T12:00:00Z,,\n::ffff:1.2.3.4/128,2025-06-01T12:00:00Z,,\n",
		"target,created,until,reason\n",
		"a,2025-06-01T12:00:00Z,2025-06-01T12:00:00Z,\n",
		"a,0000-01-01T00:00:00+01:00,,\n",
		"a,2025-06-01T12:00:00Z,,\x00\n",
		"a,2025-06-01T12:00:00Z,," + strings.Repeat("r", 201),
		"a,2025-06-01T12:00:00Z\n",
		"\ufeff\ufeffa,2025-06-01T12:00:00Z,,",
		"\r\n\r\r\na,2025-06-01T12:00:00Z,,\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, tab2, err := linefile.ParseTwice(t, data, Parse)
		if err != nil {
			return
		}
		bans := tab.All()
		if !reflect.DeepEqual(bans, tab2.All()) {
			t.Fatalf("two reads give other bans")
		}
		for _, b := range bans {
			if len(b.Reason) > MaxReasonLen {
				t.Fatalf("%q: accepted a reason of %d bytes", b.Target, len(b.Reason))
			}
			at := b.Created
			if b.User {
				if got, ok := tab.User(b.name(), at); !ok || got.Target != b.Target {
					t.Fatalf("user ban %q not found at %v: %+v %v", b.Target, at, got, ok)
				}
			} else if got, ok := tab.Addr(b.Prefix.Addr(), at); !ok || got.Prefix.Bits() < b.Prefix.Bits() {
				// A more specific ban may cover the address too, never a
				// broader one.
				t.Fatalf("address ban %q not found at %v: %+v %v", b.Target, at, got, ok)
			}
			if !b.Until.IsZero() && b.Active(b.Until) {
				t.Fatalf("%q holds at its end", b.Target)
			}
			if back, err := ParseTarget(b.Target); err != nil || back.Prefix != b.Prefix || back.User != b.User {
				t.Fatalf("target %q reads back as %+v, %v", b.Target, back, err)
			}
		}
		out := tab.appendCSV(nil)
		back, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if got := back.All(); !sameBans(bans, got) {
			t.Fatalf("bans changed in round trip:\n%+v\n%+v", bans, got)
		}
		if out2 := back.appendCSV(nil); !bytes.Equal(out, out2) {
			t.Fatalf("canonical form not stable:\n%q\n%q", out, out2)
		}
	})
}

// sameBans compares bans with their times by instant.
func sameBans(a, b []Ban) bool {
	return reflect.DeepEqual(stripTimes(a), stripTimes(b)) && slicesEqualTimes(a, b)
}

func stripTimes(bans []Ban) []Ban {
	out := make([]Ban, len(bans))
	for i, b := range bans {
		b.Created, b.Until = time.Time{}, time.Time{}
		out[i] = b
	}
	return out
}

func slicesEqualTimes(a, b []Ban) bool {
	for i := range a {
		if !a[i].Created.Equal(b[i].Created) || !a[i].Until.Equal(b[i].Until) {
			return false
		}
	}
	return true
}
