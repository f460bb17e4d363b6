package invites

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

func TestMain(m *testing.M) {
	if os.Getenv("INVITES_TEST_USE_PROCESS") != "" {
		os.Exit(helperUse())
	}
	os.Exit(m.Run())
}

// t0 is the tests' clock at its start: every time is fixed, none is read.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a clock that moves only when a test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	hashA = strings.Repeat("a", 64)
	hashB = strings.Repeat("b", 64)
)

func TestParse(t *testing.T) {
	week := t0.Add(7 * 24 * time.Hour)
	good := []struct {
		name string
		in   string
		want []Invite
	}{
		{"empty", "", nil},
		{"blank lines and comments", "\n \t\n\r\n# invites\n  # more\n", nil},
		{"one", "0123abcd," + hashA + ",5,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n", []Invite{
			{ID: "0123abcd", Uses: 5, Expires: week, Created: t0},
		}},
		{"sorted by creation, then ID", "" +
			"ffffffff," + hashA + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:01Z\n" +
			"00000002," + hashB + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n" +
			"00000001," + strings.Repeat("c", 64) + ",1000,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z", []Invite{
			{ID: "00000001", Uses: 1000, Expires: week, Created: t0},
			{ID: "00000002", Uses: 1, Expires: week, Created: t0},
			{ID: "ffffffff", Uses: 1, Expires: week, Created: t0.Add(time.Second)},
		}},
		{"spaces, crlf, bom, offsets", "\ufeff 0123abcd ,\t" + hashA + " , 007 , 2025-06-08T14:00:00+02:00 , 2025-06-01T12:00:00.5Z \r\n", []Invite{
			{ID: "0123abcd", Uses: 7, Expires: week, Created: t0.Add(500 * time.Millisecond)},
		}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := parseReader(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []Invite
			for _, e := range tab.sorted {
				got = append(got, e.inv)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("invites =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}

	const times = ",2025-06-08T12:00:00Z,2025-06-01T12:00:00Z"
	bad := []struct {
		name string
		in   string
		want string
	}{
		{"header", "id,hash,uses,expires,created\n", `line 1: "id,hash,uses,expires,created" is a header, not an invite (remove the header line: invites.csv has no header)`},
		{"header later", "0123abcd," + hashA + ",1" + times + "\n Token , Hash\n", `line 2: "Token , Hash" is a header`},
		{"too few fields", "0123abcd," + hashA + ",1,2025-06-08T12:00:00Z\n", `line 1: "0123abcd,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... has 4 field(s); want id,hash,uses,expires,created`},
		{"too many fields", "\n0123abcd," + hashA + ",1" + times + ",x\n", `line 2: "0123abcd,`},
		{"short id", "0123abc," + hashA + ",1" + times, `line 1: invalid ID "0123abc" (want 8 lowercase hex digits)`},
		{"upper id", "0123ABCD," + hashA + ",1" + times, `line 1: invalid ID "0123ABCD"`},
		{"not hex", "0123abcg," + hashA + ",1" + times, `line 1: invalid ID "0123abcg"`},
		{"short hash", "0123abcd," + hashA[1:] + ",1" + times, `line 1: invite 0123abcd: invalid hash "aaaa`},
		{"upper hash", "0123abcd," + strings.ToUpper(hashA) + ",1" + times, `line 1: invite 0123abcd: invalid hash`},
		{"token in place of hash", "0123abcd,AAAAAAAAAAAAAAAAAAAAAAAA,1" + times, `line 1: invite 0123abcd: invalid hash "AAAAAAAAAAAAAAAAAAAAAAAA" (want the SHA-256 of the token in 64 lowercase hex digits)`},
		{"no uses", "0123abcd," + hashA + ",0" + times, `line 1: invite 0123abcd: invalid uses "0" (want a whole number from 1 to 1000)`},
		{"too many uses", "0123abcd," + hashA + ",1001" + times, `line 1: invite 0123abcd: invalid uses "1001"`},
		{"signed uses", "0123abcd," + hashA + ",+1" + times, `line 1: invite 0123abcd: invalid uses "+1"`},
		{"empty uses", "0123abcd," + hashA + "," + times, `line 1: invite 0123abcd: invalid uses ""`},
		{"huge uses", "0123abcd," + hashA + ",99999999999999999999" + times, `line 1: invite 0123abcd: invalid uses "99999999999999999999"`},
		{"bad expires", "0123abcd," + hashA + ",1,soon,2025-06-01T12:00:00Z", `line 1: invite 0123abcd: invalid expires time "soon" (want RFC 3339`},
		{"bad created", "0123abcd," + hashA + ",1,2025-06-08T12:00:00Z,", `line 1: invite 0123abcd: invalid created time ""`},
		{"expires before created", "0123abcd," + hashA + ",1,2025-06-01T12:00:00Z,2025-06-01T12:00:00Z", `line 1: invite 0123abcd: expires 2025-06-01T12:00:00Z is not after created 2025-06-01T12:00:00Z`},
		{"year out of range", "0123abcd," + hashA + ",1,9999-12-31T23:00:00-02:00,2025-06-01T12:00:00Z", `line 1: invite 0123abcd: expires time 10000-01-01T01:00:00Z is out of range`},
		{"id twice", "0123abcd," + hashA + ",1" + times + "\n0123abcd," + hashB + ",1" + times, `line 2: invite 0123abcd is listed twice (first on line 1)`},
		{"hash twice", "0123abcd," + hashA + ",1" + times + "\n\n0123abce," + hashA + ",1" + times, `line 3: invite 0123abce has the same token hash as invite 0123abcd on line 1`},
		{"bom inside", "0123abcd," + hashA + ",1" + times + "\n\ufeff0123abce," + hashB + ",1" + times, `line 2: invalid ID "\ufeff0123abce"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseReader(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	line := "0123abcd," + hashA + ",1,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z\n"
	big := strings.Repeat(line, MaxFileSize/len(line)+1)
	_, err := parseReader(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("parse of %d bytes: %v", len(big), err)
	}
}

func TestDefaultPath(t *testing.T) {
	for in, want := range map[string]string{
		"user.csv":               "invites.csv",
		"/etc/messager/user.csv": "/etc/messager/invites.csv",
		"conf/people.csv":        "conf/invites.csv",
	} {
		if got := DefaultPath(in); got != want {
			t.Errorf("DefaultPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCreateAndUse: a token has the promised shape, only its hash is
// stored, and each use counts down until the invite is gone.
func TestCreateAndUse(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	clk := newClock()
	clk.advance(1500 * time.Millisecond)
	s := open(t, p, clk)
	token, inv, err := s.Create(3, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != TokenLen || !protocol.ValidInvite([]byte(token)) {
		t.Fatalf("token %q: %d characters, valid on the wire: %v", token, len(token), protocol.ValidInvite([]byte(token)))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != TokenBytes {
		t.Fatalf("token %q decodes to %d bytes, %v", token, len(raw), err)
	}
	if !lowerHex(inv.ID, 8) || inv.Uses != 3 {
		t.Fatalf("invite %+v", inv)
	}
	if !inv.Created.Equal(t0.Add(time.Second)) || !inv.Expires.Equal(t0.Add(time.Hour+2*time.Second)) {
		t.Fatalf("created %v, expires %v: want whole seconds around the clock's %v", inv.Created, inv.Expires, clk.now())
	}

	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	wantLine := fmt.Sprintf("%s,%x,3,2025-06-01T13:00:02Z,2025-06-01T12:00:01Z\n", inv.ID, sum)
	if string(data) != wantLine {
		t.Fatalf("file holds %q, want %q", data, wantLine)
	}
	if bytes.Contains(data, []byte(token)) {
		t.Fatal("the file holds the token")
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if got := s.List(); !reflect.DeepEqual(got, []Invite{inv}) {
		t.Fatalf("List() = %+v, want %+v", got, []Invite{inv})
	}

	for left := 2; left >= 0; left-- {
		got, err := s.Use(token)
		if err != nil || got.ID != inv.ID || got.Uses != left {
			t.Fatalf("Use = %+v, %v; want %d left", got, err, left)
		}
	}
	if _, err := s.Use(token); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Use of a used-up invite: %v", err)
	}
	if data, _ := os.ReadFile(p); len(data) != 0 {
		t.Fatalf("a used-up invite is left in the file: %q", data)
	}
	if got := s.List(); len(got) != 0 {
		t.Fatalf("List() = %+v after the last use", got)
	}
}

func TestUseUnknown(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	s := open(t, p, newClock())
	token, _, err := s.Create(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	for _, guess := range []string{
		"",
		"x",
		token[:TokenLen-1],
		token + "A",
		strings.ToUpper(token),
		token + "=",
		strings.Repeat("A", TokenLen),
		"has space",
		strings.Repeat("A", protocol.MaxInviteLen+1),
		"../" + token,
	} {
		if inv, err := s.Use(guess); err != ErrUnknown {
			t.Errorf("Use(%q) = %+v, %v; want ErrUnknown itself", guess, inv, err)
		}
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Fatalf("failed uses changed the file:\n%q\n%q", before, after)
	}
	if _, err := s.Use(token); err != nil {
		t.Fatalf("the real token after guesses: %v", err)
	}
}

// TestExpiry: an invite works until the instant it expires, then it is
// unknown, hidden from List, and dropped by the next edit.
func TestExpiry(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	clk := newClock()
	s := open(t, p, clk)
	short, shortInv, err := s.Create(5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, longInv, err := s.Create(5, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute - time.Nanosecond)
	if inv, err := s.Use(short); err != nil || inv.Uses != 4 {
		t.Fatalf("Use just before expiry: %+v, %v", inv, err)
	}
	clk.advance(time.Nanosecond)
	if _, err := s.Use(short); err != ErrUnknown {
		t.Fatalf("Use at expiry: %v", err)
	}
	if got := s.List(); len(got) != 1 || got[0].ID != longInv.ID {
		t.Fatalf("List() after the short one expired = %+v", got)
	}
	// The expired line stays until something is written, then goes.
	if data, _ := os.ReadFile(p); !bytes.Contains(data, []byte(shortInv.ID)) {
		t.Fatalf("a failed use rewrote the file: %q", data)
	}
	if _, _, err := s.Create(1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(shortInv.ID)) {
		t.Fatalf("an expired invite is left after an edit: %q", data)
	}
}

func TestCreateBounds(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	s := open(t, p, newClock())
	for _, tt := range []struct {
		uses int
		ttl  time.Duration
		want string
	}{
		{0, time.Hour, "invalid number of uses 0: want 1 to 1000"},
		{-1, time.Hour, "invalid number of uses -1"},
		{MaxUses + 1, time.Hour, "invalid number of uses 1001"},
		{1, 0, "invalid lifetime 0s: want more than 0 and at most 8760h0m0s (365 days)"},
		{1, -time.Hour, "invalid lifetime -1h0m0s"},
		{1, MaxTTL + time.Second, "invalid lifetime"},
	} {
		if _, _, err := s.Create(tt.uses, tt.ttl); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Create(%d, %v): %v, want %q", tt.uses, tt.ttl, err, tt.want)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("refused creates made the file: %v", err)
	}
	for _, tt := range []struct {
		uses int
		ttl  time.Duration
	}{{1, time.Nanosecond}, {MaxUses, MaxTTL}} {
		if _, inv, err := s.Create(tt.uses, tt.ttl); err != nil || !inv.Expires.After(t0) {
			t.Errorf("Create(%d, %v) = %+v, %v", tt.uses, tt.ttl, inv, err)
		}
	}
}

// TestTokensDiffer: tokens and IDs do not repeat.
func TestTokensDiffer(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName), newClock())
	tokens, ids := map[string]bool{}, map[string]bool{}
	for range 50 {
		token, inv, err := s.Create(1, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if tokens[token] || ids[inv.ID] {
			t.Fatalf("repeated token %q or ID %s", token, inv.ID)
		}
		tokens[token], ids[inv.ID] = true, true
	}
	if got := s.List(); len(got) != 50 {
		t.Fatalf("List() has %d invites, want 50", len(got))
	}
}

func TestRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	s := open(t, p, newClock())
	token, inv, err := s.Create(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.Create(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(inv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Use(token); err != ErrUnknown {
		t.Fatalf("Use of a removed invite: %v", err)
	}
	for _, id := range []string{inv.ID, "", "nothex!", strings.ToUpper(other.ID)} {
		if err := s.Remove(id); !errors.Is(err, ErrUnknown) {
			t.Errorf("Remove(%q): %v, want ErrUnknown", id, err)
		}
	}
	if got := s.List(); len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("List() = %+v", got)
	}
}

// TestOtherProcess: a store sees what another store on the same file did,
// as the server sees the work of an admin command: Use and Create at once,
// List after Reload.
func TestOtherProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	clk := newClock()
	server, admin := open(t, p, clk), open(t, p, clk)
	token, inv, err := admin.Create(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := server.List(); len(got) != 0 {
		t.Fatalf("List() before Reload = %+v", got)
	}
	if got, err := server.Use(token); err != nil || got.Uses != 1 {
		t.Fatalf("Use of another store's invite: %+v, %v", got, err)
	}
	// The admin's store made the invite; the server's use must not be
	// lost when the admin store writes next.
	clk.advance(time.Second)
	if _, _, err := admin.Create(1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	got := server.List()
	if len(got) != 2 || got[0].ID != inv.ID || got[0].Uses != 1 {
		t.Fatalf("List() after Reload = %+v", got)
	}
	if _, err := admin.Use(token); err != nil {
		t.Fatalf("last use from the admin store: %v", err)
	}
	if _, err := server.Use(token); err != ErrUnknown {
		t.Fatalf("Use after the last use elsewhere: %v", err)
	}
}

// TestUseRace: of many goroutines racing for a single-use invite, exactly
// one gets it; for an invite of n uses, exactly n do. Two stores share the
// file, as the server and an admin command do.
func TestUseRace(t *testing.T) {
	for _, uses := range []int{1, 7} {
		t.Run(strconv.Itoa(uses), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), FileName)
			clk := newClock()
			stores := []*Store{open(t, p, clk), open(t, p, clk)}
			token, _, err := stores[0].Create(uses, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var wins, unknown atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 50 {
				wg.Go(func() {
					<-start
					_, err := stores[i%2].Use(token)
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrUnknown):
						unknown.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins.Load() != int32(uses) || unknown.Load() != 50-int32(uses) {
				t.Fatalf("%d won and %d were refused; want %d and %d", wins.Load(), unknown.Load(), uses, 50-uses)
			}
		})
	}
}

// TestUseRaceProcesses: processes racing for the uses of one invite get
// exactly as many as it has between them.
func TestUseRaceProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	p := filepath.Join(t.TempDir(), FileName)
	// The processes read the real clock, so the invite is made by it.
	s, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	const uses, procs, tries = 25, 4, 10
	token, _, err := s.Create(uses, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "INVITES_TEST_USE_PROCESS=1", "INVITES_TEST_FILE="+p, "INVITES_TEST_TOKEN="+token, "INVITES_TEST_TRIES="+strconv.Itoa(tries))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	total := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("using process: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
		if err != nil {
			t.Fatalf("using process said %q", outs[i])
		}
		total += n
	}
	if total != uses {
		t.Fatalf("%d processes trying %d times each won %d uses of %d", procs, tries, total, uses)
	}
}

// helperUse tries a token a number of times and prints how many uses it
// won.
func helperUse() int {
	s, err := Open(os.Getenv("INVITES_TEST_FILE"), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tries, _ := strconv.Atoi(os.Getenv("INVITES_TEST_TRIES"))
	won := 0
	for range tries {
		_, err := s.Use(os.Getenv("INVITES_TEST_TOKEN"))
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrUnknown):
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println(won)
	return 0
}

// TestEditKeepsOtherLines: an edit writes back comments, blank lines,
// spacing and line ends as they were, drops the byte order mark, and
// rewrites only the invite it changed.
func TestEditKeepsOtherLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	token := "hand-made-token"
	sum := sha256.Sum256([]byte(token))
	hand := fmt.Sprintf(" 00000001 , %x , 3 , 2025-06-02T12:00:00Z , 2025-06-01T00:00:00Z \r\n", sum)
	keep := " 00000002 , " + hashB + " , 9 , 2025-06-02T14:00:00+02:00 , 2025-06-01T00:00:00Z \r\n"
	linefile.WriteFile(t, p, "\ufeff# made by hand\r\n\r\n"+hand+keep)
	s := open(t, p, newClock())
	if inv, err := s.Use(token); err != nil || inv.Uses != 2 {
		t.Fatalf("Use of a hand-made invite: %+v, %v", inv, err)
	}
	linefile.WantFile(t, p, "# made by hand\r\n\r\n"+
		fmt.Sprintf("00000001,%x,2,2025-06-02T12:00:00Z,2025-06-01T00:00:00Z\r\n", sum)+
		keep)
}

// TestBadFile: a store does not open a file it cannot parse, and a change
// to a file that went bad fails without touching it, with an error that
// is not ErrUnknown.
func TestBadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	const bad = "# fine\nnot an invite\n"
	linefile.WriteFile(t, p, bad)
	if _, err := Open(p, nil); err == nil || !strings.HasPrefix(err.Error(), p+": line 2: ") {
		t.Fatalf("Open: %v", err)
	}

	linefile.WriteFile(t, p, "")
	s := open(t, p, newClock())
	token, _, err := s.Create(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	linefile.WriteFile(t, p, bad)
	for name, err := range map[string]error{
		"Use":    func() error { _, err := s.Use(token); return err }(),
		"Remove": s.Remove("00000000"),
		"Create": func() error { _, _, err := s.Create(1, time.Hour); return err }(),
		"Reload": s.Reload(),
	} {
		if err == nil || errors.Is(err, ErrUnknown) || !strings.HasPrefix(err.Error(), p+": line 2: ") {
			t.Errorf("%s on a bad file: %v", name, err)
		}
	}
	linefile.WantFile(t, p, bad)
	if got := s.List(); len(got) != 1 {
		t.Fatalf("a failed Reload lost the store's invites: %+v", got)
	}
}

// TestWriteError: when the file cannot be locked or written, Use fails
// with an error that is not ErrUnknown, and the use is not spent.
func TestWriteError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	s := open(t, p, newClock())
	token, _, err := s.Create(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Use(token); err == nil || errors.Is(err, ErrUnknown) {
		t.Fatalf("Use with the folder gone: %v", err)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Use(token); err != nil {
		t.Fatalf("Use after the folder is back: %v", err)
	}
}

func open(t *testing.T, p string, clk *clock) *Store {
	t.Helper()
	s, err := Open(p, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
