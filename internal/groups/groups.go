// Package groups reads and edits the operator's list of groups: a
// groups.csv file beside user.csv that names each listed group and the
// users allowed to join it. A listed group exists while it has no members,
// and only its users may join it.
//
// File format:
//
//   - One group per line: the group's name, then its users, separated by
//     commas: "#team,alice,bob,carol".
//   - The name is "#" and 1 to 32 of A-Z a-z 0-9 _ . -, as in the
//     protocol. Names are compared ignoring ASCII case, so "#Team" and
//     "#team" cannot both be listed, and a group is shown as it is written
//     here.
//   - Each user is a user name as in user.csv: 1 to 32 of A-Z a-z 0-9 _ . -.
//     A user appears at most once in a group, and two users of one group
//     cannot differ only by case. The users need not be in user.csv: a
//     user may be created later.
//   - A single "*" instead of users means that every user may join:
//     "#lobby,*". It must be the group's only entry.
//   - A group with nothing after its name ("#quiet") is allowed: it is
//     listed, so it exists, but nobody may join it.
//   - There is no header line. A line that looks like one ("group,users",
//     first field group, groups, name, channel or room in any case) is an
//     error, wherever it is, with a hint to remove it.
//   - There are no comments either: every line starts with "#", so a line
//     like "# staff" is a bad group name, not a comment.
//   - Blank lines are ignored, "\r\n" line endings are accepted, spaces
//     and tabs around each field are removed, and the final newline is
//     optional. A UTF-8 byte order mark at the start of the file is ignored
//     (and dropped when the file is edited). Empty fields ("#team,,bob" or
//     a trailing comma) are errors.
//   - The file is read through a 16 MiB limit; every error names its line
//     ("groups.csv: line 3: ...").
//
// A missing file is an empty list, not an error: a server without
// groups.csv lists no groups. Add creates the file, mode 0600.
//
// A Table is an immutable snapshot of the file: the server loads a new one
// on reload and swaps it in, so readers never need a lock. Add and Remove
// edit the file under a lock and replace it atomically, so concurrent
// edits from any number of processes lose nothing and a reader sees the
// old file or the new, never a part.
package groups

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// MaxFileSize is the largest groups file Parse accepts.
const MaxFileSize = 16 << 20

// FileName is the name of the groups file, kept beside the user file.
const FileName = "groups.csv"

// Everyone is the entry that lets every user join a group.
const Everyone = "*"

// Group is one listed group.
type Group struct {
	// Name is the group's name with its '#', as written in the file.
	Name string
	// Users are the users allowed to join, sorted. It is empty when
	// Everyone is set, and may be empty otherwise: then nobody may join.
	Users []string
	// Everyone is set for a group listed with "*": every user may join.
	Everyone bool
}

// Table is an immutable snapshot of a groups file. The zero value and a
// nil *Table are empty tables.
type Table struct {
	byKey map[string]*entry // protocol.GroupKey(name) -> entry
	keys  []string          // sorted
}

// entry is one group line.
type entry struct {
	group Group
	line  int // 1-based line number in the file it came from
}

// Empty returns a table that lists no groups.
func Empty() *Table { return &Table{} }

// DefaultPath returns the path of the groups file that belongs with the
// user file at usersFile: groups.csv in the same folder.
func DefaultPath(usersFile string) string {
	return filepath.Join(filepath.Dir(usersFile), FileName)
}

// Load reads and parses the groups file at path. A file that does not
// exist is an empty table, not an error. Errors name the file and, for a
// malformed file, the line.
func Load(path string) (*Table, error) { return file.Load(path) }

// Parse reads a groups file from r, through a MaxFileSize limit, and
// checks every line. Errors carry the line number ("line 3: ...").
func Parse(r io.Reader) (*Table, error) { return file.ParseReader(r) }

// file is how the groups file is read and edited. A missing file is an
// empty table, not an error.
var file = linefile.File[*Table]{
	Format:       linefile.Format{Name: "groups file", MaxSize: MaxFileSize},
	Parse:        parse,
	MissingEmpty: true,
}

// Len returns the number of listed groups.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}

// Groups returns the listed groups sorted by name ignoring case. The
// caller owns the slice and the groups' Users.
func (t *Table) Groups() []Group {
	out := make([]Group, 0, t.Len())
	if t == nil {
		return out
	}
	for _, k := range t.keys {
		out = append(out, t.byKey[k].group.clone())
	}
	return out
}

// Lookup returns the listed group called name, compared ignoring ASCII
// case, and whether there is one. The caller owns the group's Users.
func (t *Table) Lookup(name string) (Group, bool) {
	e := t.find(name)
	if e == nil {
		return Group{}, false
	}
	return e.group.clone(), true
}

// Allowed reports whether user may join group: the group is listed (its
// name compared ignoring case) and either lets everyone join or lists the
// user. Users match exactly, as they do at login. A group that is not
// listed is never allowed here; whether such a group may be used at all
// is the server's decision. Allowed does not allocate.
func (t *Table) Allowed(group, user string) bool {
	e := t.find(group)
	if e == nil {
		return false
	}
	if e.group.Everyone {
		return true
	}
	_, ok := slices.BinarySearch(e.group.Users, user)
	return ok
}

// find returns the entry of the group called name ignoring case, or nil.
func (t *Table) find(name string) *entry {
	if t == nil || len(t.byKey) == 0 || !protocol.ValidGroupString(name) {
		return nil
	}
	var buf [1 + protocol.MaxGroupLen]byte
	key := protocol.AppendGroupKey(buf[:0], []byte(name))
	return t.byKey[string(key)]
}

func (g Group) clone() Group {
	g.Users = slices.Clone(g.Users)
	if g.Users == nil {
		g.Users = []string{}
	}
	return g
}

// parse checks the lines of a groups file and returns their table.
func parse(lines []linefile.Line) (*Table, error) {
	t := &Table{byKey: make(map[string]*entry)}
	err := linefile.Each(lines, func(n int, text string) error {
		g, err := parseLine(text)
		if err != nil || g == nil {
			return err
		}
		key := protocol.GroupKey(g.Name)
		if prev := t.byKey[key]; prev != nil {
			if prev.group.Name == g.Name {
				return fmt.Errorf("group %q is listed twice (first on line %d)", g.Name, prev.line)
			}
			return fmt.Errorf("group %q differs only by case from %q on line %d (group names are compared ignoring case)", g.Name, prev.group.Name, prev.line)
		}
		t.byKey[key] = &entry{group: *g, line: n}
		t.keys = append(t.keys, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(t.keys)
	return t, nil
}

// parseLine parses one line; a nil group and nil error mean a blank line.
func parseLine(s string) (*Group, error) {
	if linefile.Trim(s) == "" {
		return nil, nil
	}
	fields := linefile.Fields(s, -1)
	name, entries := fields[0], fields[1:]
	if isHeader(name) {
		return nil, fmt.Errorf("%s is a header, not a group (remove the header line: %s has no header)", linefile.Snippet(linefile.Trim(s)), FileName)
	}
	if err := checkGroupName(name); err != nil {
		return nil, err
	}
	g := &Group{Name: name, Users: []string{}}
	for _, u := range entries {
		if u == Everyone {
			if len(entries) != 1 {
				return nil, fmt.Errorf("group %q: %q lets every user join and must be the only entry after the name", name, Everyone)
			}
			g.Everyone = true
			continue
		}
		if err := checkUserName(u); err != nil {
			return nil, fmt.Errorf("group %q: %w", name, err)
		}
		g.Users = append(g.Users, u)
	}
	if err := checkDuplicates(g.Name, g.Users); err != nil {
		return nil, err
	}
	slices.Sort(g.Users)
	return g, nil
}

// checkGroupName explains what is wrong with a group name, with a hint for
// the usual mistakes.
func checkGroupName(name string) error {
	if protocol.ValidGroupString(name) {
		return nil
	}
	msg := fmt.Sprintf("invalid group name %s (want \"#\" and 1 to %d of A-Z a-z 0-9 _ . -)", linefile.Snippet(name), protocol.MaxGroupLen)
	switch {
	case name == "":
		msg = "empty group name (each line starts with \"#name\")"
	case name[0] != '#' && protocol.ValidGroupString("#"+name):
		msg += fmt.Sprintf("; a group name starts with \"#\": %q", "#"+name)
	case strings.HasPrefix(name, "# "):
		msg += fmt.Sprintf("; %s has no comments, every line is a group", FileName)
	}
	return errors.New(msg)
}

func checkUserName(u string) error {
	if u == "" {
		return errors.New("empty user name (two commas in a row, or one at the end of the line)")
	}
	if !protocol.ValidNameString(u) {
		return fmt.Errorf("invalid user name %s (want 1 to %d of A-Z a-z 0-9 _ . -, or a single %q for every user)", linefile.Snippet(u), protocol.MaxNameLen, Everyone)
	}
	return nil
}

// checkDuplicates refuses a user listed twice in group, or two users that
// differ only by case (user names are unique ignoring case, so one of them
// is a mistake).
func checkDuplicates(group string, users []string) error {
	seen := make(map[string]string, len(users))
	for _, u := range users {
		key := strings.ToLower(u)
		if prev, ok := seen[key]; ok {
			if prev == u {
				return fmt.Errorf("group %q: user %q is listed twice", group, u)
			}
			return fmt.Errorf("group %q: user %q differs only by case from %q (user names are unique ignoring case)", group, u, prev)
		}
		seen[key] = u
	}
	return nil
}

// Words of a header line's first field, as spreadsheets and other tools
// write them.
var headerNames = []string{"group", "groups", "name", "channel", "room"}

func isHeader(field string) bool {
	return slices.ContainsFunc(headerNames, func(w string) bool { return strings.EqualFold(field, w) })
}

// format returns g's line in the canonical form: the name as written, then
// "*" or the users in order.
func (g Group) format() string {
	var b strings.Builder
	b.WriteString(g.Name)
	if g.Everyone {
		b.WriteString("," + Everyone)
	}
	for _, u := range g.Users {
		b.WriteByte(',')
		b.WriteString(u)
	}
	return b.String()
}

// appendCSV appends the table in the file format, one canonical line per
// group in key order.
func (t *Table) appendCSV(b []byte) []byte {
	for _, g := range t.Groups() {
		b = append(b, g.format()...)
		b = append(b, '\n')
	}
	return b
}
