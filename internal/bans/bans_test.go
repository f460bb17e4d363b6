package bans

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/linefile"
)

func TestMain(m *testing.M) {
	if prefix := os.Getenv("BANS_TEST_ADD_PROCESS"); prefix != "" {
		os.Exit(helperAdd(prefix))
	}
	os.Exit(m.Run())
}

// t0 is the tests' clock: every time is fixed, none is read.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const t0s = "2025-06-01T12:00:00Z"

func TestParse(t *testing.T) {
	week := t0.Add(7 * 24 * time.Hour)
	good := []struct {
		name string
		in   string
		want []Ban
	}{
		{"empty", "", []Ban{}},
		{"blank lines and comments", "\n \t\n\r\n# bans\n  # more\n", []Ban{}},
		{"user for good", "mallory," + t0s + ",,abuse\n", []Ban{
			{Target: "mallory", User: true, Created: t0, Reason: "abuse"},
		}},
		{"no reason field", "mallory," + t0s + ",", []Ban{
			{Target: "mallory", User: true, Created: t0},
		}},
		{"reason with commas", "mallory," + t0s + ",2025-06-08T12:00:00Z, spam, flood,  more \n", []Ban{
			{Target: "mallory", User: true, Created: t0, Until: week, Reason: "spam, flood,  more"},
		}},
		{"ipv4", "203.0.113.7," + t0s + ",,\n", []Ban{
			{Target: "203.0.113.7", Prefix: netip.MustParsePrefix("203.0.113.7/32"), Created: t0},
		}},
		{"ipv4 /32 written short", "203.0.113.7/32," + t0s + ",,\n", []Ban{
			{Target: "203.0.113.7", Prefix: netip.MustParsePrefix("203.0.113.7/32"), Created: t0},
		}},
		{"mapped", "::ffff:203.0.113.7," + t0s + ",,\n::FFFF:198.51.100.0/120," + t0s + ",,\n", []Ban{
			{Target: "198.51.100.0/24", Prefix: netip.MustParsePrefix("198.51.100.0/24"), Created: t0},
			{Target: "203.0.113.7", Prefix: netip.MustParsePrefix("203.0.113.7/32"), Created: t0},
		}},
		{"ipv6 canonical", "2001:DB8:0:0::1," + t0s + ",,\n2001:db8::/32," + t0s + ",,\n", []Ban{
			{Target: "2001:db8::/32", Prefix: netip.MustParsePrefix("2001:db8::/32"), Created: t0},
			{Target: "2001:db8::1", Prefix: netip.MustParsePrefix("2001:db8::1/128"), Created: t0},
		}},
		{"offset converted to utc", "mallory,2025-06-01T14:00:00+02:00,2025-06-08T12:00:00.5Z,\n", []Ban{
			{Target: "mallory", User: true, Created: t0, Until: week.Add(500 * time.Millisecond)},
		}},
		{"user named like an address", "user:10.0.0.256," + t0s + ",,\nuser:alice," + t0s + ",,\n", []Ban{
			{Target: "user:10.0.0.256", User: true, Created: t0},
			{Target: "alice", User: true, Created: t0},
		}},
		{"sorted, users first", "2001:db8::/32," + t0s + ",,\n10.0.0.0/8," + t0s + ",,\nzed," + t0s + ",,\n10.0.0.0/16," + t0s + ",,\nbob," + t0s + ",,\n", []Ban{
			{Target: "bob", User: true, Created: t0},
			{Target: "zed", User: true, Created: t0},
			{Target: "10.0.0.0/8", Prefix: netip.MustParsePrefix("10.0.0.0/8"), Created: t0},
			{Target: "10.0.0.0/16", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Created: t0},
			{Target: "2001:db8::/32", Prefix: netip.MustParsePrefix("2001:db8::/32"), Created: t0},
		}},
		{"spaces, crlf, bom", "\ufeff mallory ,\t" + t0s + " , , why \r\n", []Ban{
			{Target: "mallory", User: true, Created: t0, Reason: "why"},
		}},
		{"names differing by case are two targets", "alice," + t0s + ",,\nAlice," + t0s + ",,\n", []Ban{
			{Target: "Alice", User: true, Created: t0},
			{Target: "alice", User: true, Created: t0},
		}},
		{"user named like a header word", "user," + t0s + ",,\n", []Ban{
			{Target: "user", User: true, Created: t0},
		}},
		{"longest reason", "m," + t0s + ",," + strings.Repeat("é", 100) + "\n", []Ban{
			{Target: "m", User: true, Created: t0, Reason: strings.Repeat("é", 100)},
		}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.All(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("All() =\n%+v\nwant\n%+v", got, tt.want)
			}
			if tab.Len() != len(tt.want) {
				t.Fatalf("Len() = %d, want %d", tab.Len(), len(tt.want))
			}
		})
	}

	bad := []struct {
		name string
		in   string
		want string
	}{
		{"header", "target,created,until,reason\nmallory," + t0s + ",,\n", `line 1: "target,created,until,reason" is a header, not a ban (remove the header line: bans.csv has no header)`},
		{"header later", "mallory," + t0s + ",,\n IP , Since , Reason\n", `line 2: "IP , Since , Reason" is a header`},
		{"one field", "mallory\n", `line 1: "mallory" has 1 field(s); want target,created,until,reason`},
		{"two fields", "\nmallory," + t0s + "\n", `line 2: "mallory,2025-06-01T12:00:00Z" has 2 field(s)`},
		{"no created", "mallory,,,\n", `line 1: ban of "mallory": no created time`},
		{"bad created", "mallory,yesterday,,\n", `line 1: ban of "mallory": invalid created time "yesterday" (want RFC 3339`},
		{"date only", "mallory,2025-06-01,,\n", `line 1: ban of "mallory": invalid created time "2025-06-01"`},
		{"bad until", "mallory," + t0s + ",tomorrow,\n", `line 1: ban of "mallory": invalid until time "tomorrow"`},
		{"until before created", "mallory," + t0s + ",2025-05-01T00:00:00Z,\n", `line 1: ban of "mallory": until 2025-05-01T00:00:00Z is not after created 2025-06-01T12:00:00Z`},
		{"until equal created", "mallory," + t0s + "," + t0s + ",\n", `line 1: ban of "mallory": until 2025-06-01T12:00:00Z is not after created`},
		{"year out of range", "mallory,0000-01-01T00:30:00+01:00,,\n", `line 1: ban of "mallory": created time -0001-12-31T23:30:00Z is out of range`},
		{"empty target", "," + t0s + ",,\n", `line 1: empty target`},
		{"bad name", "bad name," + t0s + ",,\n", `line 1: invalid target "bad name"`},
		{"long name", strings.Repeat("u", 33) + "," + t0s + ",,\n", `line 1: invalid target "uuu`},
		{"bad ipv4", "10.0.0.256," + t0s + ",,\n", `line 1: invalid address "10.0.0.256"; a user whose name looks like an address is written "user:10.0.0.256"`},
		{"leading zero", "010.0.0.1," + t0s + ",,\n", `line 1: invalid address "010.0.0.1"`},
		{"short dotted", "1.2," + t0s + ",,\n", `line 1: invalid address "1.2"`},
		{"bad ipv6", "2001:db8:::1," + t0s + ",,\n", `line 1: invalid address "2001:db8:::1"`},
		{"zone", "fe80::1%eth0," + t0s + ",,\n", `line 1: address "fe80::1%eth0" has a zone`},
		{"bad prefix", "10.0.0.0/33," + t0s + ",,\n", `line 1: invalid CIDR prefix "10.0.0.0/33"`},
		{"host bits", "203.0.113.7/24," + t0s + ",,\n", `line 1: prefix "203.0.113.7/24" has bits set past its length (did you mean 203.0.113.0/24, or the single address 203.0.113.7?)`},
		{"mapped host bits", "::ffff:203.0.113.7/120," + t0s + ",,\n", `line 1: prefix "::ffff:203.0.113.7/120" has bits set past its length (did you mean 203.0.113.0/24`},
		{"bad user prefix", "user:bad name," + t0s + ",,\n", `line 1: invalid user name "bad name" after "user:"`},
		{"twice", "mallory," + t0s + ",,\n\nmallory," + t0s + ",,\n", `line 3: "mallory" is banned twice (first on line 1)`},
		{"twice as user:", "mallory," + t0s + ",,\nuser:mallory," + t0s + ",,\n", `line 2: "mallory" is banned twice (first on line 1)`},
		{"address twice", "203.0.113.7," + t0s + ",,\n::ffff:203.0.113.7/128," + t0s + ",,\n", `line 2: "203.0.113.7" is banned twice (first on line 1)`},
		{"reason too long", "m," + t0s + ",," + strings.Repeat("x", 201), `line 1: ban of "m": reason is 201 bytes, longer than 200`},
		{"reason control", "m," + t0s + ",,a\x00b", `line 1: ban of "m": reason "a\x00b" holds a control character`},
		{"reason tab", "m," + t0s + ",,a\tb", `line 1: ban of "m": reason "a\tb" holds a control character`},
		{"reason cr", "m," + t0s + ",,a\rb\n", `line 1: ban of "m": reason "a\rb" holds a control character`},
		{"reason c1", "m," + t0s + ",,a\u0085b", `line 1: ban of "m": reason "a\u0085b" holds a control character`},
		{"reason not utf-8", "m," + t0s + ",,a\xffb", `line 1: ban of "m": reason "a\xffb" is not valid UTF-8`},
		{"bom inside", "m," + t0s + ",,\n\ufeffn," + t0s + ",,", `line 2: invalid target "\ufeffn"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("accepted: %+v", tab.All())
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	line := "mallory," + t0s + ",," + strings.Repeat("x", 100) + "\n"
	big := strings.Repeat(line, MaxFileSize/len(line)+1)
	_, err := Parse(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("Parse of %d bytes: %v", len(big), err)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tt := range []struct {
		in, target string
		prefix     string // "" for a user ban
	}{
		{"alice", "alice", ""},
		{"user:alice", "alice", ""},
		{"42", "42", ""},
		{"a.b", "a.b", ""},
		{"user:1.2.3.4", "user:1.2.3.4", ""},
		{"1.2.3.4", "1.2.3.4", "1.2.3.4/32"},
		{"1.2.3.4/32", "1.2.3.4", "1.2.3.4/32"},
		{"0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0"},
		{"::ffff:1.2.3.4", "1.2.3.4", "1.2.3.4/32"},
		{"::ffff:1.2.3.0/120", "1.2.3.0/24", "1.2.3.0/24"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0", "0.0.0.0/0"},
		{"::/0", "::/0", "::/0"},
		{"::1", "::1", "::1/128"},
		{"2001:0DB8::/32", "2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1/128"},
	} {
		b, err := ParseTarget(tt.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.in, err)
			continue
		}
		if b.Target != tt.target || b.User != (tt.prefix == "") {
			t.Errorf("ParseTarget(%q) = %q user %v, want %q user %v", tt.in, b.Target, b.User, tt.target, tt.prefix == "")
		}
		if tt.prefix != "" && b.Prefix != netip.MustParsePrefix(tt.prefix) {
			t.Errorf("ParseTarget(%q).Prefix = %v, want %v", tt.in, b.Prefix, tt.prefix)
		}
		if tt.prefix == "" && b.Prefix.IsValid() {
			t.Errorf("ParseTarget(%q): user ban with prefix %v", tt.in, b.Prefix)
		}
		// The canonical form reads back as itself.
		if back, err := ParseTarget(b.Target); err != nil || !reflect.DeepEqual(back, b) {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", b.Target, back, err, b)
		}
	}
	for _, in := range []string{"", "user:", "a b", "1.2.3", "1.2.3.4/", "1.2.3.4/x", "::ffff:0:0/95", "fe80::1%1", "alice/24", "é"} {
		if b, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", in, b)
		}
	}
}

func TestUserAndAddr(t *testing.T) {
	day := 24 * time.Hour
	tab := mustParse(t, strings.Join([]string{
		"mallory," + t0s + ",,for good",
		"eve," + t0s + ",2025-06-02T12:00:00Z,a day",
		"user:10.0.0.1," + t0s + ",,named like an address",
		"10.0.0.0/8," + t0s + ",,net",
		"10.1.0.0/16," + t0s + ",2025-06-02T12:00:00Z,subnet for a day",
		"10.1.2.3," + t0s + ",2025-06-01T13:00:00Z,host for an hour",
		"2001:db8::/32," + t0s + ",,v6 net",
		"2001:db8::1," + t0s + ",,v6 host",
		"::/0," + t0s + ",2025-06-01T12:00:01Z,all v6 for a second",
	}, "\n"))
	later := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tt := range []struct {
		name string
		at   time.Time
		want string // reason of the ban found, "" for none
	}{
		{"mallory", later(0), "for good"},
		{"mallory", later(1000 * day), "for good"},
		{"Mallory", later(0), ""}, // exact, as at login
		{"eve", later(day - time.Nanosecond), "a day"},
		{"eve", later(day), ""}, // until is the first moment it no longer holds
		{"10.0.0.1", later(0), "named like an address"},
		{"alice", later(0), ""},
	} {
		b, ok := tab.User(tt.name, tt.at)
		if ok != (tt.want != "") || b.Reason != tt.want {
			t.Errorf("User(%q, %v) = %q %v, want %q", tt.name, tt.at, b.Reason, ok, tt.want)
		}
	}
	for _, tt := range []struct {
		addr string
		at   time.Time
		want string
	}{
		{"10.1.2.3", later(0), "host for an hour"},
		{"::ffff:10.1.2.3", later(0), "host for an hour"},
		{"10.1.2.3", later(time.Hour), "subnet for a day"},
		{"10.1.2.3", later(day), "net"},
		{"10.1.2.4", later(0), "subnet for a day"},
		{"10.200.0.1", later(0), "net"},
		{"11.0.0.1", later(0), ""},
		{"2001:db8::1", later(0), "v6 host"},
		{"2001:db8::1%eth0", later(0), "v6 host"},
		{"2001:db8::2", later(0), "v6 net"},
		{"2001:db9::1", later(0), "all v6 for a second"},
		{"2001:db9::1", later(time.Second), ""},
		{"::ffff:11.0.0.1", later(0), ""}, // an IPv4 client, not covered by ::/0
	} {
		b, ok := tab.Addr(netip.MustParseAddr(tt.addr), tt.at)
		if ok != (tt.want != "") || b.Reason != tt.want {
			t.Errorf("Addr(%s, %v) = %q %v, want %q", tt.addr, tt.at, b.Reason, ok, tt.want)
		}
	}
	if b, ok := tab.Addr(netip.Addr{}, t0); ok {
		t.Errorf("Addr(invalid) = %+v", b)
	}
	if n := testing.AllocsPerRun(100, func() { tab.Addr(netip.MustParseAddr("10.1.2.4"), t0) }); n != 0 {
		t.Errorf("Addr allocates %v times", n)
	}

	var targets []string
	for _, b := range tab.Active(later(2 * time.Hour)) {
		targets = append(targets, b.Target)
	}
	want := []string{"user:10.0.0.1", "eve", "mallory", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "2001:db8::1"}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("Active two hours in = %q, want %q", targets, want)
	}
	if got := tab.Active(later(2 * day)); len(got) != 5 {
		t.Errorf("Active two days in: %d bans, want 5", len(got))
	}
	if tab.Len() != 9 || len(tab.All()) != 9 {
		t.Errorf("Len() = %d, All() has %d, want 9", tab.Len(), len(tab.All()))
	}
}

func TestBanActive(t *testing.T) {
	b := Ban{Created: t0, Until: t0.Add(time.Hour)}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Hour), true}, // a clock behind the one that made it
		{t0, true},
		{t0.Add(time.Hour - 1), true},
		{t0.Add(time.Hour), false},
	} {
		if got := b.Active(tt.at); got != tt.want {
			t.Errorf("Active(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if !(Ban{Created: t0}).Active(t0.Add(100 * 365 * 24 * time.Hour)) {
		t.Error("a ban without end expired")
	}
}

func TestNilAndEmptyTable(t *testing.T) {
	for _, tab := range []*Table{nil, {}, Empty()} {
		if tab.Len() != 0 || len(tab.All()) != 0 || len(tab.Active(t0)) != 0 {
			t.Errorf("%v: not empty", tab)
		}
		if tab.Active(t0) == nil || tab.All() == nil {
			t.Errorf("%v: nil slice", tab)
		}
		if _, ok := tab.User("alice", t0); ok {
			t.Errorf("%v: bans alice", tab)
		}
		if _, ok := tab.Addr(netip.MustParseAddr("10.0.0.1"), t0); ok {
			t.Errorf("%v: bans 10.0.0.1", tab)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tab, err := Load(filepath.Join(dir, FileName))
	if err != nil || tab.Len() != 0 {
		t.Fatalf("missing file: %v, %d bans", err, tab.Len())
	}
	p := filepath.Join(dir, FileName)
	linefile.WriteFile(t, p, "mallory,"+t0s+",,\nbad name,"+t0s+",,\n")
	_, err = Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": line 2: ") {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("Load of a folder: no error")
	}
}

func TestDefaultPath(t *testing.T) {
	for in, want := range map[string]string{
		"user.csv":                  "bans.csv",
		"/etc/messager/user.csv":    "/etc/messager/bans.csv",
		"conf/users/people.csv":     "conf/users/bans.csv",
		filepath.Join("a", "b.csv"): filepath.Join("a", "bans.csv"),
	} {
		if got := DefaultPath(in); got != want {
			t.Errorf("DefaultPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	hour := time.Hour
	must(t, Add(p, Ban{Target: "mallory", Created: t0, Reason: " abuse, again "}))
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v, %v", fi.Mode(), err)
	}
	must(t, Add(p, Ban{Target: "::ffff:203.0.113.7", Created: t0.Add(500 * time.Millisecond), Until: t0.Add(hour + time.Millisecond)}))
	must(t, Add(p, Ban{Target: "2001:db8::/32", Created: t0, Until: t0.Add(hour)}))
	linefile.WantFile(t, p, ""+
		"mallory,2025-06-01T12:00:00Z,,abuse, again\n"+
		"203.0.113.7,2025-06-01T12:00:00Z,2025-06-01T13:00:01Z,\n"+
		"2001:db8::/32,2025-06-01T12:00:00Z,2025-06-01T13:00:00Z,\n")

	// The same target, written otherwise, is replaced in place.
	must(t, Add(p, Ban{Target: "203.0.113.7/32", Created: t0, Reason: "for good now"}))
	tab, err := Load(p)
	must(t, err)
	if b, ok := tab.Addr(netip.MustParseAddr("203.0.113.7"), t0.Add(1000*hour)); !ok || b.Reason != "for good now" {
		t.Fatalf("replaced ban: %+v %v", b, ok)
	}
	if tab.Len() != 3 {
		t.Fatalf("%d bans after a replacement, want 3", tab.Len())
	}

	for _, tt := range []struct {
		target string
		want   bool
	}{
		{"::ffff:203.0.113.7", true},
		{"203.0.113.7", false},
		{"alice", false},
		{"2001:db8::/32", true},
	} {
		got, err := Remove(p, tt.target)
		if err != nil || got != tt.want {
			t.Fatalf("Remove(%q) = %v, %v; want %v", tt.target, got, err, tt.want)
		}
	}
	linefile.WantFile(t, p, "mallory,2025-06-01T12:00:00Z,,abuse, again\n")
	if _, err := Remove(p, "bad name"); err == nil || !strings.Contains(err.Error(), `invalid target "bad name"`) {
		t.Fatalf("Remove(bad name): %v", err)
	}

	missing := filepath.Join(t.TempDir(), FileName)
	if got, err := Remove(missing, "alice"); got || err != nil {
		t.Fatalf("Remove from a missing file: %v, %v", got, err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("Remove created the file: %v", err)
	}
}

// TestAddTidies: Add drops bans that expired more than a day before the
// new one was made, and keeps the rest, comments and line ends as they
// were.
func TestAddTidies(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	linefile.WriteFile(t, p, "\ufeff# keep me\r\n"+
		"old,2025-05-01T00:00:00Z,2025-05-02T00:00:00Z,long gone\r\n"+
		" recent , 2025-05-01T00:00:00Z , 2025-05-31T13:00:00Z , ended 23 hours ago\r\n"+
		"edge,2025-05-01T00:00:00Z,2025-05-31T12:00:00Z,ended a day ago exactly\r\n"+
		"\r\n"+
		"forever,2025-05-01T00:00:00+02:00,,\r\n"+
		"later,2025-05-01T00:00:00Z,2025-07-01T00:00:00Z,\r\n")
	must(t, Add(p, Ban{Target: "new", Created: t0}))
	linefile.WantFile(t, p, "# keep me\r\n"+
		" recent , 2025-05-01T00:00:00Z , 2025-05-31T13:00:00Z , ended 23 hours ago\r\n"+
		"edge,2025-05-01T00:00:00Z,2025-05-31T12:00:00Z,ended a day ago exactly\r\n"+
		"\r\n"+
		"forever,2025-05-01T00:00:00+02:00,,\r\n"+
		"later,2025-05-01T00:00:00Z,2025-07-01T00:00:00Z,\r\n"+
		"new,2025-06-01T12:00:00Z,,\r\n")

	// A ban that expired long ago is replaced, not dropped, when it is
	// the one being added.
	linefile.WriteFile(t, p, "old,2025-05-01T00:00:00Z,2025-05-02T00:00:00Z,long gone\n")
	must(t, Add(p, Ban{Target: "old", Created: t0, Until: t0.Add(time.Hour), Reason: "again"}))
	linefile.WantFile(t, p, "old,2025-06-01T12:00:00Z,2025-06-01T13:00:00Z,again\n")
}

func TestAddErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	for _, tt := range []struct {
		ban  Ban
		want string
	}{
		{Ban{Target: "bad name", Created: t0}, `invalid target "bad name"`},
		{Ban{Target: "10.0.0.1/8", Created: t0}, `prefix "10.0.0.1/8" has bits set past its length`},
		{Ban{Target: "mallory"}, `ban of "mallory": no created time`},
		{Ban{Target: "mallory", Created: t0, Until: t0}, `ban of "mallory": until 2025-06-01T12:00:00Z is not after created`},
		{Ban{Target: "mallory", Created: t0, Until: t0.Add(-time.Hour)}, `is not after created`},
		{Ban{Target: "mallory", Created: t0, Until: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, `ban of "mallory": until time`},
		{Ban{Target: "mallory", Created: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, `ban of "mallory": created time 1969-01-01T00:00:00Z is out of range`},
		{Ban{Target: "mallory", Created: t0, Reason: strings.Repeat("x", 201)}, `reason is 201 bytes`},
		{Ban{Target: "mallory", Created: t0, Reason: "two\nlines"}, `holds a control character`},
		{Ban{Target: "mallory", Created: t0, Reason: "\xff"}, `is not valid UTF-8`},
	} {
		err := Add(p, tt.ban)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add(%+v): %v, want %q", tt.ban, err, tt.want)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("a failed Add created the file: %v", err)
	}
}

// TestEditMalformedFile: an edit of a file that does not parse fails,
// naming the file and line, and changes nothing.
func TestEditMalformedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	const bad = "mallory," + t0s + ",,\nbad name," + t0s + ",,\n"
	linefile.WriteFile(t, p, bad)
	if err := Add(p, Ban{Target: "eve", Created: t0}); err == nil || !strings.HasPrefix(err.Error(), p+": line 2: ") {
		t.Errorf("Add: %v", err)
	}
	if _, err := Remove(p, "mallory"); err == nil || !strings.HasPrefix(err.Error(), p+": line 2: ") {
		t.Errorf("Remove: %v", err)
	}
	linefile.WantFile(t, p, bad)
}

func TestAddThroughSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), FileName)
	linefile.WriteFile(t, target, "")
	link := filepath.Join(t.TempDir(), FileName)
	must(t, os.Symlink(target, link))
	must(t, Add(link, Ban{Target: "mallory", Created: t0}))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	linefile.WantFile(t, target, "mallory,"+t0s+",,\n")
}

// TestConcurrentEdits: bans added and removed by many goroutines at once
// are all applied.
func TestConcurrentEdits(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	must(t, Add(p, Ban{Target: "keep", Created: t0}))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			target := fmt.Sprintf("10.0.%d.0/24", i)
			if err := Add(p, Ban{Target: target, Created: t0}); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if ok, err := Remove(p, target); !ok || err != nil {
					t.Errorf("Remove(%s) = %v, %v", target, ok, err)
				}
			}
		})
	}
	wg.Wait()
	tab, err := Load(p)
	must(t, err)
	if tab.Len() != 11 {
		t.Fatalf("%d bans, want 11", tab.Len())
	}
}

// TestConcurrentAddProcesses: bans added by several processes at once
// are all kept.
func TestConcurrentAddProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	p := filepath.Join(t.TempDir(), FileName)
	const procs, each = 4, 10
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BANS_TEST_ADD_PROCESS="+strconv.Itoa(i), "BANS_TEST_FILE="+p, "BANS_TEST_COUNT="+strconv.Itoa(each))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("adding process: %v", err)
		}
	}
	tab, err := Load(p)
	must(t, err)
	if tab.Len() != procs*each {
		t.Fatalf("%d bans after %d adds from %d processes", tab.Len(), procs*each, procs)
	}
}

func helperAdd(prefix string) int {
	p := os.Getenv("BANS_TEST_FILE")
	n, _ := strconv.Atoi(os.Getenv("BANS_TEST_COUNT"))
	for i := range n {
		if err := Add(p, Ban{Target: "10." + prefix + "." + strconv.Itoa(i) + ".1", Created: t0}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func mustParse(t *testing.T, s string) *Table {
	t.Helper()
	tab, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
