// Package users reads, verifies and edits the user store: a user.csv file
// with one user per line, "name,hash".
//
// File format:
//
//   - One user per line: the name, a comma, then the credential. The line is
//     split at its first comma, so the credential may itself hold commas (an
//     argon2id string does).
//   - The name follows the protocol: 1 to 32 of A-Z a-z 0-9 _ . -. Names are
//     unique ignoring case, so "alice" and "Alice" cannot both exist.
//   - The credential is an argon2id PHC string ("$argon2id$v=19$m=..."), a
//     bcrypt hash ("$2a$", "$2b$" or "$2y$"), or, for hand-written files, a
//     plain password. Anything that starts with "$" is taken for a hash, so a
//     plain password cannot start with "$"; unknown schemes are errors.
//   - Hashes must be cheap enough to check at every login: argon2id with
//     at most 256 MiB, 10 passes, 16 lanes and 8 times the memory × passes
//     of DefaultParams; bcrypt with a cost of 4 to 14.
//   - There is no header line. A line that looks like one is an error,
//     wherever it is, rather than a user called "name": a first field of
//     name, user, username or login and a second of password, hash, pass
//     or passwd, in any case. (Files joined together have theirs inside.)
//   - Blank lines and lines whose first non-blank character is "#" are
//     ignored, "\r\n" line endings are accepted, spaces and tabs around
//     each field are removed, and the final newline is optional. A UTF-8
//     byte order mark at the start of the file is ignored (and dropped
//     when the file is edited).
//   - The file is read through a 16 MiB limit; every error names its line.
//
// A Table is an immutable snapshot of the file: the server loads a new one
// on reload and swaps it in, so readers never need a lock.
package users

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// MaxFileSize is the largest user file Parse accepts: about 150,000
// users with default argon2id hashes (a line is about 109 bytes). It
// bounds what a reload reads and holds; docs/scaling.md says what a
// larger user base would need.
const MaxFileSize = 16 << 20

// Table is an immutable snapshot of a user file. The zero value and a nil
// *Table are empty tables.
type Table struct {
	byName map[string]*entry // exact name -> entry
	names  []string          // sorted
	// dummy are the argon2id parameters most users of the table have,
	// spent on unknown users so that they take as long as known ones.
	dummy Params
}

// entry is one user line.
type entry struct {
	name string
	line int // 1-based line number in the file it came from
	cred credential
}

// Load reads and parses the user file at path. Errors name the file and,
// for a malformed file, the line.
func Load(path string) (*Table, error) { return file.Load(path) }

// EnsureFile creates an empty user file at path, mode 0600, unless a file
// already exists there. It reports whether it created one.
func EnsureFile(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := f.Close(); err != nil {
		return true, err
	}
	return true, nil
}

// Parse reads a user file from r, through a MaxFileSize limit, and checks
// every line. Errors carry the line number ("line 7: ...").
func Parse(r io.Reader) (*Table, error) { return file.ParseReader(r) }

// file is how the user file is read and edited. A missing file is an
// error, except to Add.
var file = linefile.File[*Table]{
	Format: linefile.Format{Name: "user file", MaxSize: MaxFileSize},
	Parse:  parse,
}

// Len returns the number of users.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.names)
}

// Names returns the user names, sorted. The caller owns the slice.
func (t *Table) Names() []string {
	if t == nil {
		return []string{}
	}
	return slices.Clone(t.names)
}

// Has reports whether name is a user. Names match exactly.
func (t *Table) Has(name string) bool {
	return t.lookup(name) != nil
}

// PlaintextUsers returns, sorted, the users whose credential is a plain
// password rather than a hash, so that the server can warn about them.
func (t *Table) PlaintextUsers() []string {
	out := []string{}
	if t == nil {
		return out
	}
	for _, n := range t.names {
		if t.byName[n].cred.kind == kindPlain {
			out = append(out, n)
		}
	}
	return out
}

func (t *Table) lookup(name string) *entry {
	if t == nil {
		return nil
	}
	return t.byName[name]
}

// HasFold reports whether a user's name equals name ignoring case: a
// new account may not take such a name.
func (t *Table) HasFold(name string) bool { return t.findFold(name) != nil }

// findFold returns the user whose name equals name ignoring case.
func (t *Table) findFold(name string) *entry {
	if t == nil {
		return nil
	}
	if e := t.byName[name]; e != nil {
		return e
	}
	for n, e := range t.byName {
		if strings.EqualFold(n, name) {
			return e
		}
	}
	return nil
}

// parse checks the lines of a user file and returns their table.
func parse(lines []linefile.Line) (*Table, error) {
	t := &Table{byName: make(map[string]*entry)}
	folded := make(map[string]*entry)
	err := linefile.Each(lines, func(n int, text string) error {
		e, err := parseLine(text)
		if err != nil || e == nil {
			return err
		}
		if isHeader(e) {
			return fmt.Errorf("%q is a header, not a user (remove the header line: user.csv has no header)", e.name+","+e.cred.encoded)
		}
		e.line = n
		key := strings.ToLower(e.name)
		if prev := folded[key]; prev != nil {
			if prev.name == e.name {
				return fmt.Errorf("duplicate user %q (first on line %d)", e.name, prev.line)
			}
			return fmt.Errorf("user %q differs only by case from %q on line %d", e.name, prev.name, prev.line)
		}
		folded[key] = e
		t.byName[e.name] = e
		t.names = append(t.names, e.name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(t.names)
	t.dummy = commonParams(t.byName)
	return t, nil
}

// parseLine parses one line; a nil entry and nil error mean the line holds
// no user (blank or comment).
// ErrReservedName is the error for a user called "server" (in any case):
// the operator's notices come from that name.
var ErrReservedName = errors.New(`the name "server" is reserved for the operator's notices`)

// ErrNameTaken is the error of Add for a name that exists, ignoring case.
var ErrNameTaken = errors.New("name already taken")

// Reserved reports whether name may not be a user's: "server", in any
// case, the sender of the operator's notices.
func Reserved(name string) bool { return strings.EqualFold(name, protocol.NoticeSender) }

func parseLine(s string) (*entry, error) {
	s = linefile.Trim(s)
	if s == "" || s[0] == '#' {
		return nil, nil
	}
	name, cred, ok := strings.Cut(s, ",")
	if !ok {
		return nil, fmt.Errorf("want \"name,hash\", found no comma in %s", linefile.Snippet(s))
	}
	name = linefile.Trim(name)
	cred = linefile.Trim(cred)
	if !protocol.ValidNameString(name) {
		return nil, fmt.Errorf("invalid user name %s (want 1 to %d of A-Z a-z 0-9 _ . -)", linefile.Snippet(name), protocol.MaxNameLen)
	}
	if Reserved(name) {
		return nil, fmt.Errorf("user %q: %w", name, ErrReservedName)
	}
	// Base64 decoding would silently skip a stray "\r" inside a hash.
	// (A plain password's own check refuses control characters without
	// quoting the password.)
	if strings.HasPrefix(cred, "$") && strings.ContainsFunc(cred, isControl) {
		return nil, fmt.Errorf("user %q: the hash holds a control character", name)
	}
	c, err := parseCredential(cred)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	return &entry{name: name, cred: c}, nil
}

// Words of a header line, as spreadsheets and other tools write them.
var (
	headerNames = []string{"name", "user", "username", "login"}
	headerCreds = []string{"password", "hash", "pass", "passwd"}
)

// isHeader reports whether e is a header line taken for a user. Only a
// plain password can be one of headerCreds, and quoting it is safe.
func isHeader(e *entry) bool {
	fold := func(s string) func(string) bool {
		return func(w string) bool { return strings.EqualFold(s, w) }
	}
	return e.cred.kind == kindPlain &&
		slices.ContainsFunc(headerNames, fold(e.name)) &&
		slices.ContainsFunc(headerCreds, fold(e.cred.encoded))
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// commonParams returns the argon2id parameters used by most entries, or
// DefaultParams if none has an argon2id hash.
func commonParams(byName map[string]*entry) Params {
	count := make(map[Params]int)
	best, bestN := DefaultParams, 0
	for _, e := range byName {
		if e.cred.kind != kindArgon2id {
			continue
		}
		p := e.cred.params
		count[p]++
		// Ties go to the costlier parameters, so the choice does not
		// depend on map order.
		if n := count[p]; n > bestN || (n == bestN && cost(p) > cost(best)) {
			best, bestN = p, n
		}
	}
	return best
}

func cost(p Params) uint64 { return uint64(p.Memory) * uint64(p.Time) }

// appendCSV appends the table in the file format, one canonical line per
// user in name order.
func (t *Table) appendCSV(b []byte) []byte {
	for _, n := range t.Names() {
		b = append(b, n...)
		b = append(b, ',')
		b = append(b, t.byName[n].cred.encoded...)
		b = append(b, '\n')
	}
	return b
}

// Digest is a short hash of the table's users and credentials, the same
// for two tables with the same lines in any order: nodes of a cluster
// compare digests to find tables that differ without sending them.
func (t *Table) Digest() string {
	sum := sha256.Sum256(t.appendCSV(nil))
	return hex.EncodeToString(sum[:8])
}
