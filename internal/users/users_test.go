package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/linefile"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	// Hashes written by Add and SetPassword need not be strong in tests;
	// TestHashDefault covers DefaultParams.
	editParams = CheapParams
	if name := os.Getenv("USERS_TEST_ADD_PROCESS"); name != "" {
		os.Exit(helperAdd(name))
	}
	os.Exit(m.Run())
}

// Fixed hashes of "secret", made once with CheapParams and bcrypt.MinCost.
const (
	argonSecret  = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5CJ1kH9y1bkb6GgkO6kZJ9mE6y5lP1oXHkBgX3vO9yU"
	bcryptSecret = "$2a$04$6EIEGR3N6Tu4Lt3Oa0kDneE7Mvs3wtE0k2Sm0IaNkSRZ8Hfg1Yuya"
)

func TestParse(t *testing.T) {
	good := []struct {
		name      string
		in        string
		names     []string
		plaintext []string
	}{
		{"empty", "", nil, nil},
		{"one plain", "alice,pw1\n", []string{"alice"}, []string{"alice"}},
		{"no final newline", "alice,pw1\nbob,pw2", []string{"alice", "bob"}, []string{"alice", "bob"}},
		{"crlf", "bob,pw2\r\nalice,pw1\r\n", []string{"alice", "bob"}, []string{"alice", "bob"}},
		{"blank and comment lines", "\n# users\n  \nalice,pw1\n\t# more\n\nbob,pw2\n\n", []string{"alice", "bob"}, []string{"alice", "bob"}},
		{"spaces around fields", " alice , pw1 \t\n", []string{"alice"}, []string{"alice"}},
		{"comma in password", "alice,p,w\n", []string{"alice"}, []string{"alice"}},
		{"argon2id", "alice," + argonSecret + "\n", []string{"alice"}, nil},
		{"bcrypt", "bob," + bcryptSecret + "\n", []string{"bob"}, nil},
		{"bcrypt 2b and 2y", "b," + strings.Replace(bcryptSecret, "$2a$", "$2b$", 1) + "\ny," + strings.Replace(bcryptSecret, "$2a$", "$2y$", 1),
			[]string{"b", "y"}, nil},
		{"name chars", "A-z_0.9,pw\n", []string{"A-z_0.9"}, []string{"A-z_0.9"}},
		{"long name", strings.Repeat("n", 32) + ",pw", []string{strings.Repeat("n", 32)}, []string{strings.Repeat("n", 32)}},
		{"mixed", "carol,pw\nalice," + argonSecret + "\nbob," + bcryptSecret, []string{"alice", "bob", "carol"}, []string{"carol"}},
		{"byte order mark", "\ufeffalice,pw1\nbob,pw2\n", []string{"alice", "bob"}, []string{"alice", "bob"}},
		{"byte order mark and crlf", "\ufeffalice,pw1\r\n", []string{"alice"}, []string{"alice"}},
		{"byte order mark and comment", "\ufeff# users\nalice,pw1\n", []string{"alice"}, []string{"alice"}},
		{"byte order mark only", "\ufeff", nil, nil},
		{"header word with a real password", "name,s3cret\n", []string{"name"}, []string{"name"}},
		{"header word with a hash", "user," + argonSecret + "\n", []string{"user"}, nil},
		{"header words swapped", "password,name\n", []string{"password"}, []string{"password"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tab.Names(); !slices.Equal(got, orEmpty(tc.names)) {
				t.Errorf("Names() = %q, want %q", got, tc.names)
			}
			if got := tab.PlaintextUsers(); !slices.Equal(got, orEmpty(tc.plaintext)) {
				t.Errorf("PlaintextUsers() = %q, want %q", got, tc.plaintext)
			}
			if tab.Len() != len(tc.names) {
				t.Errorf("Len() = %d, want %d", tab.Len(), len(tc.names))
			}
			for _, n := range tc.names {
				if !tab.Has(n) {
					t.Errorf("Has(%q) = false", n)
				}
				if strings.ToUpper(n) != n && tab.Has(strings.ToUpper(n)) {
					t.Errorf("Has(%q) = true: names must match exactly", strings.ToUpper(n))
				}
			}
		})
	}

	bad := []struct {
		name string
		in   string
		want string
	}{
		{"no comma", "alice pw1\n", "line 1: want \"name,hash\""},
		{"header", "name,password\nalice,pw\n", "line 1: \"name,password\" is a header, not a user (remove the header line: user.csv has no header)"},
		{"header in capitals", "Username , PASSWD\r\nalice,pw\r\n", "line 1: \"Username,PASSWD\" is a header"},
		{"header login,hash", "login,hash\n", "line 1: \"login,hash\" is a header"},
		{"header user,pass", "user,pass", "line 1: \"user,pass\" is a header"},
		{"header after a byte order mark", "\ufeffname,password\n", "line 1: \"name,password\" is a header"},
		{"header after a comment", "# exported\nname,hash\n", "line 2: \"name,hash\" is a header"},
		{"header of a joined file", "alice,pw\n\nuser,password\nbob,pw\n", "line 3: \"user,password\" is a header"},
		{"byte order mark twice", "\ufeff\ufeffalice,pw\n", "line 1: invalid user name"},
		{"byte order mark on line 2", "alice,pw\n\ufeffbob,pw\n", "line 2: invalid user name"},
		{"empty name", ",pw\n", "line 1: invalid user name \"\""},
		{"bad name char", "ok,pw\nal ice,pw\n", "line 2: invalid user name \"al ice\""},
		{"name too long", strings.Repeat("n", 33) + ",pw", "line 1: invalid user name"},
		{"utf-8 name", "ålice,pw", "line 1: invalid user name"},
		{"empty password", "a,pw\n\nalice,\n", "line 3: user \"alice\": empty password or hash"},
		{"space in password", "alice,p w", "line 1: user \"alice\": plain password is not valid"},
		{"control char in password", "alice,p\x01w", "line 1: user \"alice\": plain password is not valid"},
		{"CR inside a hash", "alice,$argon2id$v=19$m=10,t=1,p=1$00000000000$0000000\r \n", "line 1: user \"alice\": the hash holds a control character"},
		{"password too long", "alice," + strings.Repeat("p", 129), "line 1: user \"alice\": plain password is not valid"},
		{"duplicate", "alice,a\nbob,b\nalice,c\n", "line 3: duplicate user \"alice\" (first on line 1)"},
		{"duplicate ignoring case", "alice,a\r\n\r\nAlice,c\r\n", "line 3: user \"Alice\" differs only by case from \"alice\" on line 1"},
		{"unknown scheme", "alice,$6$salt$hash", "line 1: user \"alice\": unsupported hash scheme \"$6$\""},
		{"argon2i", "alice,$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "unsupported hash scheme \"$argon2i$\""},
		{"argon2id version", "alice," + strings.Replace(argonSecret, "v=19", "v=16", 1), "line 1: user \"alice\": malformed argon2id hash: unsupported version"},
		{"argon2id few parts", "alice,$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", "malformed argon2id hash"},
		{"argon2id huge memory", "alice," + strings.Replace(argonSecret, "m=64", "m=4194305", 1), "line 1: user \"alice\": argon2id hash too costly to check: argon2id memory 4194305 KiB is over the limit of 262144 KiB (256 MiB)"},
		{"argon2id 4 GiB", "a,pw\nalice," + strings.Replace(argonSecret, "m=64", "m=4194304", 1), "line 2: user \"alice\": argon2id hash too costly to check: argon2id memory 4194304 KiB is over"},
		{"argon2id memory just over", "alice," + strings.Replace(argonSecret, "m=64", "m=262145", 1), "argon2id memory 262145 KiB is over the limit"},
		{"argon2id memory x time", "alice," + strings.Replace(argonSecret, "m=64,t=1", "m=65536,t=5", 1), "argon2id memory x time = 65536 KiB x 5 = 327680 is over the limit of 311296"},
		{"argon2id 256 MiB twice", "alice," + strings.Replace(argonSecret, "m=64,t=1", "m=262144,t=2", 1), "argon2id memory x time = 262144 KiB x 2"},
		{"argon2id threads over the limit", "alice," + strings.Replace(argonSecret, "p=1", "p=17", 1), "argon2id parallelism 17 is over the limit of 16"},
		{"argon2id memory over 32 bits", "alice," + strings.Replace(argonSecret, "m=64", "m=99999999999", 1), "malformed argon2id hash: bad parameter \"m=99999999999\""},
		{"argon2id tiny memory", "alice," + strings.Replace(argonSecret, "m=64", "m=4", 1), "malformed argon2id hash: argon2id memory 4 KiB is under 8"},
		{"argon2id huge time", "alice," + strings.Replace(argonSecret, "t=1", "t=101", 1), "argon2id time 101 is over the limit of 10 passes"},
		{"argon2id time over the limit", "alice," + strings.Replace(argonSecret, "t=1", "t=11", 1), "too costly to check: argon2id time 11 is over the limit of 10"},
		{"argon2id zero time", "alice," + strings.Replace(argonSecret, "t=1", "t=0", 1), "malformed argon2id hash: argon2id time must be at least 1"},
		{"argon2id huge threads", "alice," + strings.Replace(argonSecret, "p=1", "p=256", 1), "parallelism 256 is over the limit of 16"},
		{"argon2id zero threads", "alice," + strings.Replace(argonSecret, "p=1", "p=0", 1), "parallelism must be at least 1"},
		{"argon2id param order", "alice," + strings.Replace(argonSecret, "m=64,t=1", "t=1,m=64", 1), "want parameters m=M,t=T,p=P"},
		{"argon2id leading zero", "alice," + strings.Replace(argonSecret, "m=64", "m=064", 1), "bad parameter \"m=064\""},
		{"argon2id sign", "alice," + strings.Replace(argonSecret, "m=64", "m=+64", 1), "bad parameter"},
		{"argon2id bad salt", "alice," + strings.Replace(argonSecret, "c2FsdHNhbHRzYWx0c2FsdA", "c2F*", 1), "salt is not unpadded base64"},
		{"argon2id padded salt", "alice," + strings.Replace(argonSecret, "c2FsdHNhbHRzYWx0c2FsdA", "c2FsdHNhbHRzYWx0c2FsdA==", 1), "salt is not unpadded base64"},
		{"argon2id short salt", "alice," + strings.Replace(argonSecret, "c2FsdHNhbHRzYWx0c2FsdA", "c2FsdA", 1), "salt of 4 bytes"},
		{"argon2id bad hash", "alice," + argonSecret + "!", "hash is not unpadded base64"},
		{"argon2id empty hash", "alice,$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$", "hash of 0 bytes"},
		{"bcrypt short", "alice,$2a$04$abc", "line 1: user \"alice\": malformed bcrypt hash"},
		{"bcrypt cost", "alice," + strings.Replace(bcryptSecret, "$04$", "$17$", 1), "line 1: user \"alice\": bcrypt hash too costly to check: cost 17 is over the limit of 14"},
		{"bcrypt cost just over", "alice," + strings.Replace(bcryptSecret, "$04$", "$15$", 1), "cost 15 is over the limit of 14"},
		{"bcrypt cost low", "alice," + strings.Replace(bcryptSecret, "$04$", "$03$", 1), "malformed bcrypt hash: cost \"03\" is not a number from 4 to 14"},
		{"bcrypt cost sign", "alice," + strings.Replace(bcryptSecret, "$04$", "$+5$", 1), "malformed bcrypt hash: cost \"+5\" is not a number"},
		{"bcrypt bad char", "alice," + bcryptSecret[:59] + "!", "bad character"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %d users, want error containing %q", tab.Len(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with a line number", err)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestParseNeverQuotesPasswords(t *testing.T) {
	_, err := Parse(strings.NewReader("alice,sec ret\n"))
	if err == nil || strings.Contains(err.Error(), "sec") {
		t.Fatalf("error %v must exist and not quote the password", err)
	}
}

func TestParseSizeLimit(t *testing.T) {
	line := "u,pw\n"
	big := strings.Repeat("#"+strings.Repeat("x", 1023)+"\n", MaxFileSize/1024) + line
	_, err := Parse(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("Parse of %d bytes: err = %v, want size error", len(big), err)
	}
	// Exactly at the limit is fine.
	ok := big[len(big)-MaxFileSize:]
	ok = "#" + ok[1:]
	if _, err := Parse(strings.NewReader(ok)); err != nil {
		t.Fatalf("Parse of exactly %d bytes: %v", len(ok), err)
	}
}

func TestNilAndZeroTable(t *testing.T) {
	for name, tab := range map[string]*Table{"nil": nil, "zero": {}} {
		if tab.Len() != 0 || tab.Has("a") || len(tab.Names()) != 0 || len(tab.PlaintextUsers()) != 0 {
			t.Fatalf("%s table is not empty", name)
		}
		// The zero Table has no dummy parameters of its own, and
		// argon2id panics on zero passes.
		ok, err := NewChecker(1).Verify(context.Background(), tab, "a", []byte("pw"))
		if ok || err != nil {
			t.Fatalf("Verify on %s table = %v, %v", name, ok, err)
		}
		if p := tab.unknownParams(); p != DefaultParams {
			t.Fatalf("unknown users of the %s table cost %+v, want %+v", name, p, DefaultParams)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of missing file: %v, want ErrNotExist", err)
	}
	p := filepath.Join(dir, "user.csv")
	linefile.WriteFile(t, p, "alice,pw\nbad line\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p+": line 2: ") {
		t.Errorf("Load of bad file: %v, want path and line 2", err)
	}
	linefile.WriteFile(t, p, "alice,pw\n")
	tab, err := Load(p)
	if err != nil || !tab.Has("alice") {
		t.Errorf("Load = %v, %v", tab, err)
	}
}

func TestEnsureFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	created, err := EnsureFile(p)
	if err != nil || !created {
		t.Fatalf("EnsureFile = %v, %v; want created", created, err)
	}
	linefile.WantMode(t, p)
	tab, err := Load(p)
	if err != nil || tab.Len() != 0 {
		t.Fatalf("Load of new file = %v, %v", tab, err)
	}
	linefile.WriteFile(t, p, "alice,pw\n")
	created, err = EnsureFile(p)
	if err != nil || created {
		t.Fatalf("second EnsureFile = %v, %v; want not created", created, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "alice,pw\n" {
		t.Fatalf("EnsureFile changed an existing file: %q", b)
	}
	if _, err := EnsureFile(filepath.Join(p+"-nodir", "x.csv")); err == nil {
		t.Fatal("EnsureFile in a missing directory succeeded")
	}
}

func TestHashDefault(t *testing.T) {
	h, err := Hash([]byte("correct-horse"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", DefaultParams.Memory, DefaultParams.Time, DefaultParams.Threads)
	if !strings.HasPrefix(h, want) {
		t.Fatalf("Hash = %q, want prefix %q", h, want)
	}
	if DefaultParams.Memory < 19456 || DefaultParams.Time < 2 {
		t.Fatalf("DefaultParams %+v below OWASP guidance", DefaultParams)
	}
	h2, _ := HashWithParams([]byte("correct-horse"), CheapParams)
	h3, _ := HashWithParams([]byte("correct-horse"), CheapParams)
	if h2 == h3 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tab := mustParse(t, "alice,"+h+"\n")
	c := NewChecker(0)
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct-horse", true}, {"correct-horsE", false}} {
		ok, err := c.Verify(context.Background(), tab, "alice", []byte(tc.pw))
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
}

func TestHashWithParamsRejects(t *testing.T) {
	for _, p := range []Params{
		{Memory: 64, Time: 0, Threads: 1},
		{Memory: 64, Time: 1, Threads: 0},
		{Memory: 7, Time: 1, Threads: 1},
		{Memory: 5 << 20, Time: 1, Threads: 1},
		{Memory: 4 << 20, Time: 1, Threads: 1},
		{Memory: 256<<10 + 1, Time: 1, Threads: 1},
		{Memory: 64, Time: 11, Threads: 1},
		{Memory: 64 << 10, Time: 5, Threads: 1},
		{Memory: 256, Time: 1, Threads: 17},
	} {
		if _, err := HashWithParams([]byte("pw"), p); err == nil {
			t.Errorf("HashWithParams(%+v) succeeded", p)
		}
	}
}

func TestVerify(t *testing.T) {
	cheap, err := HashWithParams([]byte("secret"), CheapParams)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tab := mustParse(t, "argon,"+cheap+"\nfixed,"+argonSecret+"\nbcrypt,"+string(bc)+"\nfixedb,"+bcryptSecret+"\nplain,secret\nplaincomma,sec,ret\n")
	tests := []struct {
		user, pw string
		want     bool
	}{
		{"argon", "secret", true},
		{"argon", "Secret", false},
		{"argon", "secret2", false},
		{"fixed", "secret", false}, // made-up key: nothing matches
		{"bcrypt", "secret", true},
		{"bcrypt", "secre", false},
		{"fixedb", "nope", false},
		{"plain", "secret", true},
		{"plain", "secre", false},
		{"plain", "secrett", false},
		{"plain", "", false},
		{"plaincomma", "sec,ret", true},
		{"Plain", "secret", false},
		{"nobody", "secret", false},
	}
	c := NewChecker(2)
	for _, tc := range tests {
		ok, err := c.Verify(context.Background(), tab, tc.user, []byte(tc.pw))
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v", tc.user, tc.pw, ok, err, tc.want)
		}
	}
}

func TestVerifyContext(t *testing.T) {
	tab := mustParse(t, "alice,"+argonSecret+"\nplain,pw\n")
	c := NewChecker(2)
	// Take every slot, as a storm of slow checks would.
	c.slots <- struct{}{}
	c.slots <- struct{}{}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	for _, name := range []string{"alice", "nobody"} {
		ok, err := c.Verify(ctx, tab, name, []byte("secret"))
		if ok || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify(%q) with no free slot = %v, %v; want DeadlineExceeded", name, ok, err)
		}
	}
	// A plain password is cheap and needs no slot.
	if ok, err := c.Verify(context.Background(), tab, "plain", []byte("pw")); !ok || err != nil {
		t.Errorf("plain Verify with no free slot = %v, %v", ok, err)
	}

	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	<-c.slots // a slot is free, but the context is already done
	if _, err := c.Verify(canceled, tab, "alice", []byte("secret")); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with canceled ctx: %v, want Canceled", err)
	}

	// A waiting check goes on as soon as a slot frees up.
	c.slots <- struct{}{}
	done := make(chan error, 1)
	go func() {
		_, err := c.Verify(context.Background(), tab, "alice", []byte("secret"))
		done <- err
	}()
	<-c.slots
	if err := <-done; err != nil {
		t.Fatalf("Verify after a slot freed: %v", err)
	}
	if n := len(c.slots); n != 1 {
		t.Fatalf("%d slots held after Verify, want the 1 taken by the test", n)
	}
}

func TestVerifyBoundsParallelism(t *testing.T) {
	tab := mustParse(t, "alice,"+argonSecret+"\n")
	c := NewChecker(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxHeld := 0
	for range 12 {
		wg.Go(func() {
			c.Verify(context.Background(), tab, "alice", []byte("x"))
			mu.Lock()
			maxHeld = max(maxHeld, len(c.slots))
			mu.Unlock()
		})
	}
	wg.Wait()
	if maxHeld > 3 || len(c.slots) != 0 || cap(c.slots) != 3 {
		t.Fatalf("slots: max held %d, held now %d, cap %d", maxHeld, len(c.slots), cap(c.slots))
	}
	if cap(NewChecker(0).slots) < 1 || cap(NewChecker(-5).slots) < 1 {
		t.Fatal("NewChecker with parallel <= 0 has no slots")
	}
}

func TestAddLoadVerify(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	// Add creates a missing file.
	if err := Add(p, "alice", []byte("pw-alice")); err != nil {
		t.Fatal(err)
	}
	linefile.WantMode(t, p)
	if err := Add(p, "bob", []byte("pw-bob")); err != nil {
		t.Fatal(err)
	}
	linefile.WantMode(t, p)
	tab, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Names(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("Names = %q", got)
	}
	if len(tab.PlaintextUsers()) != 0 {
		t.Fatalf("Add wrote plain passwords: %q", tab.PlaintextUsers())
	}
	data, _ := os.ReadFile(p)
	if bytes.Contains(data, []byte("pw-")) {
		t.Fatalf("file holds a password: %q", data)
	}
	c := NewChecker(1)
	verify := func(name, pw string, want bool) {
		t.Helper()
		tab, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := c.Verify(context.Background(), tab, name, []byte(pw))
		if err != nil || ok != want {
			t.Fatalf("Verify(%q, %q) = %v, %v; want %v", name, pw, ok, err, want)
		}
	}
	verify("alice", "pw-alice", true)
	verify("bob", "pw-bob", true)
	verify("bob", "pw-alice", false)

	if err := SetPassword(p, "alice", []byte("new-pw")); err != nil {
		t.Fatal(err)
	}
	linefile.WantMode(t, p)
	verify("alice", "pw-alice", false)
	verify("alice", "new-pw", true)
	verify("bob", "pw-bob", true)

	if err := Delete(p, "alice"); err != nil {
		t.Fatal(err)
	}
	linefile.WantMode(t, p)
	tab, _ = Load(p)
	if got := tab.Names(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("after Delete, Names = %q", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".user.csv.tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %q", leftovers)
	}
}

func TestEditErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	if err := Add(p, "alice", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"add duplicate", func() error { return Add(p, "alice", []byte("pw")) }, `user "alice" already exists`},
		{"add duplicate ignoring case", func() error { return Add(p, "ALICE", []byte("pw")) }, `user "ALICE" already exists as "alice"`},
		{"add bad name", func() error { return Add(p, "al,ice", []byte("pw")) }, `invalid user name "al,ice"`},
		{"add empty name", func() error { return Add(p, "", []byte("pw")) }, `invalid user name ""`},
		{"add long name", func() error { return Add(p, strings.Repeat("a", 33), []byte("pw")) }, `invalid user name`},
		{"add empty password", func() error { return Add(p, "bob", nil) }, "invalid password"},
		{"add password with space", func() error { return Add(p, "bob", []byte("p w")) }, "invalid password"},
		{"add long password", func() error { return Add(p, "bob", bytes.Repeat([]byte("p"), 129)) }, "invalid password"},
		{"passwd bad password", func() error { return SetPassword(p, "alice", []byte("a\nb")) }, "invalid password"},
		{"passwd unknown", func() error { return SetPassword(p, "bob", []byte("pw")) }, `no user "bob"`},
		{"passwd wrong case", func() error { return SetPassword(p, "Alice", []byte("pw")) }, `no user "Alice" (did you mean "alice"?)`},
		{"del unknown", func() error { return Delete(p, "bob") }, `no user "bob"`},
		{"del wrong case", func() error { return Delete(p, "Alice") }, `did you mean "alice"?`},
		{"del missing file", func() error { return Delete(p+".none", "alice") }, "no such file"},
		{"passwd missing file", func() error { return SetPassword(p+".none", "alice", []byte("pw")) }, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
				t.Fatalf("failed edit changed the file:\n%s", after)
			}
		})
	}
	if _, err := os.Stat(p + ".none"); err == nil {
		t.Fatal("edit of a missing file created it")
	}
}

func TestEditMalformedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	const bad = "alice,pw\nnot a user\n"
	linefile.WriteFile(t, p, bad)
	for _, do := range []func() error{
		func() error { return Add(p, "bob", []byte("pw")) },
		func() error { return Delete(p, "alice") },
		func() error { return SetPassword(p, "alice", []byte("pw2")) },
	} {
		if err := do(); err == nil || !strings.Contains(err.Error(), "line 2: ") {
			t.Errorf("edit of malformed file: %v, want line 2 error", err)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != bad {
		t.Fatalf("malformed file changed: %q", b)
	}
}

func TestEditKeepsOtherLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	linefile.WriteFile(t, p, "# staff\r\nalice,pw1\r\n\r\nbob , pw2\r\ncarol,pw3")
	if err := Add(p, "dave", []byte("pw4")); err != nil {
		t.Fatal(err)
	}
	if err := Delete(p, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(p, "alice", []byte("pw5")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	lines := strings.Split(string(b), "\r\n")
	if len(lines) != 6 || lines[0] != "# staff" || !strings.HasPrefix(lines[1], "alice,$argon2id$") ||
		lines[2] != "" || lines[3] != "bob , pw2" || !strings.HasPrefix(lines[4], "dave,$argon2id$") || lines[5] != "" {
		t.Fatalf("file after edits:\n%q", b)
	}
}

func TestEditThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.csv")
	link := filepath.Join(dir, "user.csv")
	linefile.WriteFile(t, real, "alice,pw\n")
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := Add(link, "bob", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v %v", fi, err)
	}
	tab, err := Load(real)
	if err != nil || !tab.Has("bob") {
		t.Fatalf("Load(real) = %v, %v", tab.Names(), err)
	}
}

func TestConcurrentAdd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- Add(p, "user"+strconv.Itoa(i), []byte("pw")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	tab, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != n {
		t.Fatalf("%d users after %d concurrent adds: %q", tab.Len(), n, tab.Names())
	}
	linefile.WantMode(t, p)
}

// TestConcurrentAddProcesses runs several processes that each add users to
// one file, as concurrent "messager user add" commands would.
func TestConcurrentAddProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	p := filepath.Join(t.TempDir(), "user.csv")
	const procs, each = 4, 8
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "USERS_TEST_ADD_PROCESS=p"+strconv.Itoa(i), "USERS_TEST_FILE="+p, "USERS_TEST_COUNT="+strconv.Itoa(each))
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
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != procs*each {
		t.Fatalf("%d users after %d adds from %d processes", tab.Len(), procs*each, procs)
	}
}

func helperAdd(prefix string) int {
	p := os.Getenv("USERS_TEST_FILE")
	n, _ := strconv.Atoi(os.Getenv("USERS_TEST_COUNT"))
	for i := range n {
		if err := Add(p, prefix+"u"+strconv.Itoa(i), []byte("pw")); err != nil {
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

func TestUnknownUserParams(t *testing.T) {
	cheap, _ := HashWithParams([]byte("pw"), CheapParams)
	other, _ := HashWithParams([]byte("pw"), Params{Memory: 128, Time: 1, Threads: 1})
	tests := []struct {
		name string
		in   string
		want Params
	}{
		{"empty", "", DefaultParams},
		{"plain and bcrypt only", "a,pw\nb," + bcryptSecret, DefaultParams},
		{"most common", "a," + cheap + "\nb," + cheap + "\nc," + other, CheapParams},
		{"tie goes to the costlier", "a," + cheap + "\nc," + other, Params{Memory: 128, Time: 1, Threads: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, tc.in).dummy; got != tc.want {
				t.Fatalf("unknown users cost %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestParamLimitsAccept checks that the cost limits admit the argon2id
// configurations in common use, from the file and from HashWithParams, and
// the extremes the rule allows.
func TestParamLimitsAccept(t *testing.T) {
	if maxArgonWork != 8*cost(DefaultParams) {
		t.Fatalf("maxArgonWork %d is not 8 times DefaultParams (%+v)", maxArgonWork, DefaultParams)
	}
	tests := []struct {
		name string
		p    Params
	}{
		{"default", DefaultParams},
		{"cheap", CheapParams},
		{"OWASP 46 MiB x 1", Params{Memory: 47104, Time: 1, Threads: 1}},
		{"OWASP 12 MiB x 3", Params{Memory: 12288, Time: 3, Threads: 1}},
		{"OWASP 9 MiB x 4", Params{Memory: 9216, Time: 4, Threads: 1}},
		{"OWASP 7 MiB x 5", Params{Memory: 7168, Time: 5, Threads: 1}},
		{"RFC 9106 second", Params{Memory: 64 << 10, Time: 3, Threads: 4}},
		{"PHP", Params{Memory: 64 << 10, Time: 4, Threads: 1}},
		{"Django", Params{Memory: 100 << 10, Time: 2, Threads: 8}},
		{"most memory", Params{Memory: 256 << 10, Time: 1, Threads: 1}},
		{"most passes", Params{Memory: maxArgonWork / 10, Time: 10, Threads: 1}},
		{"most lanes", Params{Memory: 128, Time: 1, Threads: 16}},
		{"most work", Params{Memory: maxArgonWork / 4, Time: 4, Threads: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkParams(tc.p); err != nil {
				t.Fatalf("checkParams: %v", err)
			}
			// The key is made up: only the parameters are checked.
			h := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g", tc.p.Memory, tc.p.Time, tc.p.Threads)
			if _, err := Parse(strings.NewReader("alice," + h + "\n")); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	bc := strings.Replace(bcryptSecret, "$04$", "$14$", 1)
	if _, err := Parse(strings.NewReader("bob," + bc + "\n")); err != nil {
		t.Fatalf("Parse of bcrypt cost 14: %v", err)
	}
}

// TestLoadRefusesCostlyHashes checks that Load names the line of a hash
// too costly to check, as in a file that makes every login take half a
// minute and 4 GiB.
func TestLoadRefusesCostlyHashes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	for _, tc := range []struct{ hash, want string }{
		{"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g", "memory 4194304 KiB is over the limit"},
		{"$argon2id$v=19$m=19456,t=40,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2g", "time 40 is over the limit"},
		{strings.Replace(bcryptSecret, "$04$", "$31$", 1), "cost 31 is over the limit"},
	} {
		linefile.WriteFile(t, p, "# users\nalice,pw\nbob,"+tc.hash+"\n")
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), p+": line 3: user \"bob\": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load: %v, want line 3 and %q", err, tc.want)
		}
	}
}

func TestEditByteOrderMarkAndHeader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.csv")
	linefile.WriteFile(t, p, "\ufeffalice,pw1\n# staff\n")
	if err := Add(p, "bob", []byte("pw2")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	lines := strings.Split(string(b), "\n")
	if len(lines) != 4 || lines[0] != "alice,pw1" || lines[1] != "# staff" || !strings.HasPrefix(lines[2], "bob,$argon2id$") {
		t.Fatalf("file after Add:\n%q", b)
	}

	const header = "name,password\nalice,pw1\n"
	linefile.WriteFile(t, p, header)
	err := Add(p, "bob", []byte("pw2"))
	if err == nil || !strings.Contains(err.Error(), p+": line 1: ") || !strings.Contains(err.Error(), "remove the header line") {
		t.Fatalf("Add to a file with a header: %v, want line 1 and a hint", err)
	}
	if b, _ := os.ReadFile(p); string(b) != header {
		t.Fatalf("failed Add changed the file: %q", b)
	}
}

// TestReservedName: no user may be called "server", in any case: not by
// the loader, not by Add.
func TestReservedName(t *testing.T) {
	for _, name := range []string{"server", "Server", "SERVER"} {
		if _, err := Parse(strings.NewReader("alice,pw\n" + name + ",pw\n")); err == nil || !strings.Contains(err.Error(), "line 2") || !errors.Is(err, ErrReservedName) {
			t.Errorf("loading %q: %v, want a reserved-name error on line 2", name, err)
		}
		path := filepath.Join(t.TempDir(), "user.csv")
		if err := Add(path, name, []byte("password1")); !errors.Is(err, ErrReservedName) {
			t.Errorf("Add(%q): %v, want ErrReservedName", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "user.csv")
	if err := Add(path, "alice", []byte("password1")); err != nil {
		t.Fatal(err)
	}
	if err := Add(path, "ALICE", []byte("password1")); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Add of a name taken ignoring case: %v, want ErrNameTaken", err)
	}
}
