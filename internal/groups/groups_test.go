package groups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/messager/messager/internal/linefile"
)

func TestMain(m *testing.M) {
	if prefix := os.Getenv("GROUPS_TEST_ADD_PROCESS"); prefix != "" {
		os.Exit(helperAdd(prefix))
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	good := []struct {
		name string
		in   string
		want []Group
	}{
		{"empty", "", []Group{}},
		{"blank lines", "\n \t\n\r\n", []Group{}},
		{"one", "#team,carol,alice,bob\n", []Group{{"#team", []string{"alice", "bob", "carol"}, false}}},
		{"no final newline", "#team,alice", []Group{{"#team", []string{"alice"}, false}}},
		{"everyone", "#lobby,*\n", []Group{{"#lobby", []string{}, true}}},
		{"nobody", "#quiet\n", []Group{{"#quiet", []string{}, false}}},
		{"spaces", " #team , alice ,\tbob \n", []Group{{"#team", []string{"alice", "bob"}, false}}},
		{"crlf", "#b,x\r\n#a,y\r\n", []Group{{"#a", []string{"y"}, false}, {"#b", []string{"x"}, false}}},
		{"bom", "\ufeff#team,alice\n", []Group{{"#team", []string{"alice"}, false}}},
		{"sorted by key, shown as written", "#Zeta,a\n#alpha,b\n#Beta,c\n", []Group{
			{"#alpha", []string{"b"}, false}, {"#Beta", []string{"c"}, false}, {"#Zeta", []string{"a"}, false},
		}},
		{"group named like a header word", "#group,users\n", []Group{{"#group", []string{"users"}, false}}},
		{"longest names", "#" + strings.Repeat("g", 32) + "," + strings.Repeat("u", 32), []Group{
			{"#" + strings.Repeat("g", 32), []string{strings.Repeat("u", 32)}, false},
		}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.Groups(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Groups() = %+v, want %+v", got, tt.want)
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
		{"header", "group,users\n#team,alice\n", `line 1: "group,users" is a header, not a group (remove the header line: groups.csv has no header)`},
		{"header later", "#team,alice\n Name , Members\n", `line 2: "Name , Members" is a header`},
		{"no hash", "#a,x\n\nteam,alice\n", `line 3: invalid group name "team" (want "#" and 1 to 32 of A-Z a-z 0-9 _ . -); a group name starts with "#": "#team"`},
		{"comment", "# staff\n", `line 1: invalid group name "# staff" (want "#" and 1 to 32 of A-Z a-z 0-9 _ . -); groups.csv has no comments, every line is a group`},
		{"hash alone", "#\n", `line 1: invalid group name "#"`},
		{"long group", "#" + strings.Repeat("g", 33), `line 1: invalid group name "#ggg`},
		{"bad char", "#te am,alice", `line 1: invalid group name "#te am"`},
		{"empty name", ",alice", `line 1: empty group name`},
		{"bad user", "#a,x\n#b,x\n#team,alice,bad name\n", `line 3: group "#team": invalid user name "bad name" (want 1 to 32 of A-Z a-z 0-9 _ . -, or a single "*" for every user)`},
		{"long user", "#team," + strings.Repeat("u", 33), `line 1: group "#team": invalid user name`},
		{"empty user", "#team,alice,,bob", `line 1: group "#team": empty user name`},
		{"trailing comma", "#team,", `line 1: group "#team": empty user name`},
		{"duplicate user", "#team,alice,bob,alice", `line 1: group "#team": user "alice" is listed twice`},
		{"user case", "#team,alice,Alice", `line 1: group "#team": user "Alice" differs only by case from "alice"`},
		{"star with users", "#lobby,*,alice", `line 1: group "#lobby": "*" lets every user join and must be the only entry after the name`},
		{"user then star", "#lobby,alice,*", `line 1: group "#lobby": "*" lets every user join`},
		{"two stars", "#lobby,*,*", `line 1: group "#lobby": "*" lets every user join`},
		{"twice", "#team,a\n#team,b\n", `line 2: group "#team" is listed twice (first on line 1)`},
		{"case", "#team,a\n\n#Team,b\n", `line 3: group "#Team" differs only by case from "#team" on line 1 (group names are compared ignoring case)`},
		{"control", "#team,al\x00ice", `line 1: group "#team": invalid user name "al\x00ice"`},
		{"bom inside", "#a,x\n\ufeff#b,y", `line 2: invalid group name "\ufeff#b"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("accepted: %+v", tab.Groups())
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	line := "#team," + strings.Repeat("u", 32) + "\n"
	big := strings.Repeat(line, MaxFileSize/len(line)+1)
	_, err := Parse(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("Parse of %d bytes: %v", len(big), err)
	}
}

func TestLookupAndAllowed(t *testing.T) {
	tab := mustParse(t, "#Team,bob,alice\n#lobby,*\n#quiet\n")
	g, ok := tab.Lookup("#TEAM")
	if !ok || !reflect.DeepEqual(g, Group{"#Team", []string{"alice", "bob"}, false}) {
		t.Fatalf("Lookup(#TEAM) = %+v, %v", g, ok)
	}
	// The caller owns what Lookup returns.
	g.Users[0] = "mallory"
	if g, _ := tab.Lookup("#team"); g.Users[0] != "alice" {
		t.Fatalf("Lookup returned the table's own slice")
	}
	for _, name := range []string{"#nope", "team", "", "#", "#" + strings.Repeat("x", 40)} {
		if g, ok := tab.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v", name, g)
		}
	}
	for _, tt := range []struct {
		group, user string
		want        bool
	}{
		{"#team", "alice", true},
		{"#TEAM", "bob", true},
		{"#team", "carol", false},
		{"#team", "Alice", false}, // users match exactly, as at login
		{"#lobby", "anyone", true},
		{"#Lobby", "carol", true},
		{"#quiet", "alice", false},
		{"#nope", "alice", false},
		{"team", "alice", false},
	} {
		if got := tab.Allowed(tt.group, tt.user); got != tt.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tt.group, tt.user, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { tab.Allowed("#TEAM", "bob") }); n != 0 {
		t.Errorf("Allowed allocates %v times", n)
	}
}

func TestNilAndEmptyTable(t *testing.T) {
	for name, tab := range map[string]*Table{"nil": nil, "zero": {}, "Empty": Empty()} {
		if tab.Len() != 0 || tab.Allowed("#team", "alice") {
			t.Errorf("%s table is not empty", name)
		}
		if _, ok := tab.Lookup("#team"); ok {
			t.Errorf("%s table finds a group", name)
		}
		if g := tab.Groups(); g == nil || len(g) != 0 {
			t.Errorf("%s table: Groups() = %#v, want an empty slice", name, g)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tab, err := Load(filepath.Join(dir, "groups.csv"))
	if err != nil || tab.Len() != 0 {
		t.Fatalf("Load of a missing file = %v, %v; want an empty table", tab, err)
	}
	p := filepath.Join(dir, "groups.csv")
	linefile.WriteFile(t, p, "#team,alice\n#team,bob\n")
	_, err = Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": line 2: ") {
		t.Fatalf("Load of a bad file: %v, want the path and the line", err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("Load of a folder succeeded")
	}
}

func TestDefaultPath(t *testing.T) {
	for in, want := range map[string]string{
		"user.csv":                 "groups.csv",
		"etc/messager/user.csv":    filepath.Join("etc", "messager", "groups.csv"),
		"/srv/messager/other.csv":  filepath.Join("/srv", "messager", "groups.csv"),
		"./conf/../conf/users.csv": filepath.Join("conf", "groups.csv"),
	} {
		if got := DefaultPath(in); got != want {
			t.Errorf("DefaultPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), "groups.csv")
	steps := []struct {
		name string
		edit func() error
		want string
	}{
		{"create", func() error { return Add(p, "#Team", "carol", "alice") }, "#Team,alice,carol\n"},
		{"add to it ignoring case", func() error { return Add(p, "#team", "bob") }, "#Team,alice,bob,carol\n"},
		{"everyone", func() error { return Add(p, "#lobby", "*") }, "#Team,alice,bob,carol\n#lobby,*\n"},
		{"nobody", func() error { return Add(p, "#quiet") }, "#Team,alice,bob,carol\n#lobby,*\n#quiet\n"},
		{"first users of an empty group", func() error { return Add(p, "#quiet", "dave") }, "#Team,alice,bob,carol\n#lobby,*\n#quiet,dave\n"},
		{"remove users", func() error { return Remove(p, "#TEAM", "alice", "carol") }, "#Team,bob\n#lobby,*\n#quiet,dave\n"},
		{"remove the last user", func() error { return Remove(p, "#quiet", "dave") }, "#Team,bob\n#lobby,*\n#quiet\n"},
		{"star on an empty group", func() error { return Add(p, "#quiet", "*") }, "#Team,bob\n#lobby,*\n#quiet,*\n"},
		{"remove star", func() error { return Remove(p, "#quiet", "*") }, "#Team,bob\n#lobby,*\n#quiet\n"},
		{"remove a group", func() error { return Remove(p, "#LOBBY") }, "#Team,bob\n#quiet\n"},
		{"remove all", func() error {
			if err := Remove(p, "#team"); err != nil {
				return err
			}
			return Remove(p, "#quiet")
		}, ""},
	}
	for _, s := range steps {
		if err := s.edit(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := linefile.ReadFile(t, p); got != s.want {
			t.Fatalf("%s: file is\n%q\nwant\n%q", s.name, got, s.want)
		}
		linefile.WantMode(t, p)
		if _, err := Load(p); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
}

func TestEditErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "groups.csv")
	const start = "#team,alice,bob\n#lobby,*\n#quiet\n"
	linefile.WriteFile(t, p, start)
	for _, tt := range []struct {
		name string
		edit func() error
		want string
	}{
		{"bad group", func() error { return Add(p, "team", "alice") }, `invalid group name "team"`},
		{"bad user", func() error { return Add(p, "#team", "bad name") }, `invalid user name "bad name"`},
		{"empty user", func() error { return Add(p, "#team", "") }, `empty user name`},
		{"duplicate argument", func() error { return Add(p, "#new", "carol", "Carol") }, `group "#new": user "Carol" differs only by case from "carol"`},
		{"star and users", func() error { return Add(p, "#new", "*", "carol") }, `"*" stands for every user and cannot be given with other users`},
		{"exists", func() error { return Add(p, "#team") }, `group "#team" already exists`},
		{"exists by case", func() error { return Add(p, "#TEAM") }, `group "#TEAM" already exists as "#team" (group names are compared ignoring case)`},
		{"already in", func() error { return Add(p, "#team", "carol", "bob") }, `user "bob" is already in group #team`},
		{"already in by case", func() error { return Add(p, "#team", "Alice") }, `user "Alice" is already in group #team as "alice" (user names are unique ignoring case)`},
		{"users to everyone", func() error { return Add(p, "#lobby", "carol") }, `group #lobby already lets every user join ("*")`},
		{"star to everyone", func() error { return Add(p, "#lobby", "*") }, `group #lobby already lets every user join`},
		{"star to users", func() error { return Add(p, "#team", "*") }, `group #team lists users; remove them before letting every user join`},
		{"no group", func() error { return Remove(p, "#nope") }, `no group "#nope"`},
		{"no user", func() error { return Remove(p, "#team", "alice", "carol") }, `no user "carol" in group #team`},
		{"no user by case", func() error { return Remove(p, "#team", "Bob") }, `no user "Bob" in group #team (did you mean "bob"?)`},
		{"user of everyone", func() error { return Remove(p, "#lobby", "alice") }, `group #lobby lets every user join ("*") and lists no users to remove`},
		{"star of users", func() error { return Remove(p, "#team", "*") }, `group #team does not let every user join (it has no "*" to remove)`},
		{"user of nobody", func() error { return Remove(p, "#quiet", "alice") }, `no user "alice" in group #quiet`},
		{"remove bad name", func() error { return Remove(p, "#bad name") }, `invalid group name`},
	} {
		err := tt.edit()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: %v\nwant prefix %q", tt.name, err, tt.want)
		}
		if got := linefile.ReadFile(t, p); got != start {
			t.Fatalf("%s: failed edit changed the file to %q", tt.name, got)
		}
	}

	// A missing file lists no groups: Remove fails and creates nothing.
	missing := filepath.Join(t.TempDir(), "groups.csv")
	if err := Remove(missing, "#team"); err == nil || err.Error() != `no group "#team"` {
		t.Fatalf("Remove from a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("Remove created the file: %v", err)
	}
}

func TestEditMalformedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "groups.csv")
	const bad = "#team,alice\n\n#ops,bad name\n"
	linefile.WriteFile(t, p, bad)
	for name, edit := range map[string]func() error{
		"add":    func() error { return Add(p, "#new", "alice") },
		"remove": func() error { return Remove(p, "#team") },
	} {
		err := edit()
		if err == nil || !strings.HasPrefix(err.Error(), p+": line 3: ") {
			t.Errorf("%s on a malformed file: %v, want the path and line 3", name, err)
		}
	}
	if got := linefile.ReadFile(t, p); got != bad {
		t.Fatalf("malformed file changed to %q", got)
	}

	const header = "group,users\n#team,alice\n"
	linefile.WriteFile(t, p, header)
	err := Add(p, "#team", "bob")
	if err == nil || !strings.Contains(err.Error(), p+": line 1: ") || !strings.Contains(err.Error(), "remove the header line") {
		t.Fatalf("Add to a file with a header: %v, want line 1 and a hint", err)
	}
}

func TestEditKeepsOtherLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "groups.csv")
	// Hand-written lines, CRLF endings, a BOM and blank lines: only the
	// line an edit touches changes (to the canonical form), and the BOM
	// goes.
	linefile.WriteFile(t, p, "\ufeff#b , zed,amy\r\n\r\n  #Ops ,carl, al  \r\n#c,x")
	if err := Add(p, "#ops", "bo"); err != nil {
		t.Fatal(err)
	}
	if err := Add(p, "#new", "nina"); err != nil {
		t.Fatal(err)
	}
	// The last line gets the "\n" it lacked; a new line ends like the
	// first.
	const want = "#b , zed,amy\r\n\r\n#Ops,al,bo,carl\r\n#c,x\n#new,nina\r\n"
	if got := linefile.ReadFile(t, p); got != want {
		t.Fatalf("file is\n%q\nwant\n%q", got, want)
	}
	if err := Remove(p, "#B"); err != nil {
		t.Fatal(err)
	}
	if got, want := linefile.ReadFile(t, p), "\r\n#Ops,al,bo,carl\r\n#c,x\n#new,nina\r\n"; got != want {
		t.Fatalf("file is\n%q\nwant\n%q", got, want)
	}
}

func TestEditThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.csv")
	link := filepath.Join(dir, "groups.csv")
	linefile.WriteFile(t, real, "#team,alice\n")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	if err := Add(link, "#team", "bob"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v %v", fi, err)
	}
	if got := linefile.ReadFile(t, real); got != "#team,alice,bob\n" {
		t.Fatalf("target is %q", got)
	}
	// The lock is beside the file edited, whichever name was used.
	if _, err := os.Stat(filepath.Join(dir, ".real.csv.lock")); err != nil {
		t.Fatalf("no lock beside the target: %v", err)
	}
}

// TestConcurrentEdits runs adds and removes at once, to new and to shared
// groups: every one of them must be in the file afterwards.
func TestConcurrentEdits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "groups.csv")
	const n = 24
	for i := range n {
		if err := Add(p, "#old"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		s := strconv.Itoa(i)
		// The first add to #shared creates it; the others add to it.
		wg.Go(func() { errs <- Add(p, "#shared", "user"+s) })
		wg.Go(func() { errs <- Add(p, "#own"+s, "user"+s) })
		wg.Go(func() { errs <- Remove(p, "#old"+s) })
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
	if tab.Len() != n+1 {
		t.Fatalf("%d groups after the edits, want %d: %+v", tab.Len(), n+1, tab.Groups())
	}
	if g, _ := tab.Lookup("#shared"); len(g.Users) != n {
		t.Fatalf("#shared has %d users, want %d: %q", len(g.Users), n, g.Users)
	}
	linefile.WantMode(t, p)
}

// TestConcurrentAddProcesses runs several processes that each add users to
// one group of one file, as concurrent "messager group add" commands would.
func TestConcurrentAddProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	p := filepath.Join(t.TempDir(), "groups.csv")
	const procs, each = 4, 8
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GROUPS_TEST_ADD_PROCESS=p"+strconv.Itoa(i), "GROUPS_TEST_FILE="+p, "GROUPS_TEST_COUNT="+strconv.Itoa(each))
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
	if g, _ := tab.Lookup("#team"); len(g.Users) != procs*each {
		t.Fatalf("#team has %d users after %d adds from %d processes", len(g.Users), procs*each, procs)
	}
}

func helperAdd(prefix string) int {
	p := os.Getenv("GROUPS_TEST_FILE")
	n, _ := strconv.Atoi(os.Getenv("GROUPS_TEST_COUNT"))
	for i := range n {
		if err := Add(p, "#team", prefix+"u"+strconv.Itoa(i)); err != nil {
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
