// Package invites keeps the operator's invites for sign-up: an
// invites.csv file beside user.csv that lists each invite's public ID, a
// hash of its secret token, how many sign-ups it has left and when it
// expires. The operator makes invites (messager admin invite) and hands
// out their tokens; a sign-up that brings a token uses it up, one use at a
// time.
//
// File format:
//
//   - One invite per line: "id,hash,uses,expires,created", for example
//     "3f2a9c01,<64 hex digits>,5,2025-06-08T12:00:00Z,2025-06-01T12:00:00Z".
//   - The ID is 8 lowercase hex digits, chosen at random. It names the
//     invite to the operator (to list or remove it) and is no secret.
//   - The hash is the SHA-256 of the token, 64 lowercase hex digits. The
//     token itself is never stored: whoever reads the file cannot sign
//     up with it.
//   - uses is the number of sign-ups left, 1 to 1000. An invite whose
//     last use is taken is removed from the file.
//   - expires and created are RFC 3339 times ("2025-06-01T12:00:00Z"),
//     written in UTC; other offsets are read and converted. expires must
//     be later than created. An invite is valid until expires, then it is
//     inert, and the next edit removes it.
//   - IDs are unique, and so are hashes.
//   - There is no header line. A line that looks like one (first field id,
//     invite, invites, code or token, in any case) is an error, wherever
//     it is, with a hint to remove it.
//   - Blank lines and lines whose first non-blank character is "#" are
//     ignored, "\r\n" line endings are accepted, spaces and tabs around
//     each field are removed, and the final newline is optional. A UTF-8
//     byte order mark at the start of the file is ignored (and dropped
//     when the file is edited).
//   - The file is read through a 16 MiB limit; every error names its line
//     ("invites.csv: line 3: ...").
//
// A missing file holds no invites. The first Create makes it, mode 0600.
//
// A token is 18 bytes from crypto/rand (144 bits), written in URL-safe
// base64 without padding: 24 characters of A-Z a-z 0-9 - _, which the
// protocol carries as one field of PUT.
//
// Every change (Create, Use, Remove) is made under the file's lock on the
// file as it is on disk, read again under that lock, and written back
// atomically. The server and any number of admin commands in other
// processes can therefore share the file: no use is counted twice, none
// is lost, and no invite one of them created is dropped by another.
package invites

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/messager/messager/internal/linefile"
)

// FileName is the name of the invites file, kept beside the user file.
const FileName = "invites.csv"

// MaxFileSize is the largest invites file the store reads.
const MaxFileSize = 16 << 20

// Bounds of Create. An invite is a standing way in; these keep a typo
// from making one that lets a crowd in or lasts for ever.
const (
	// MaxUses is the most sign-ups one invite allows.
	MaxUses = 1000
	// MaxTTL is the longest an invite lasts.
	MaxTTL = 365 * 24 * time.Hour
)

// TokenBytes is the number of random bytes in a token; TokenLen is the
// length of its text.
const (
	TokenBytes = 18
	TokenLen   = 24
)

// idLen is the length of an ID, in hex digits.
const idLen = 8

// Invite is one invite, without its token.
type Invite struct {
	// ID names the invite to the operator: 8 lowercase hex digits.
	ID string
	// Uses is the number of sign-ups the invite has left.
	Uses int
	// Expires is when the invite stops working, in UTC.
	Expires time.Time
	// Created is when the invite was made, in UTC.
	Created time.Time
}

// Valid reports whether the invite can still be used at now.
func (inv Invite) Valid(now time.Time) bool {
	return inv.Uses > 0 && now.Before(inv.Expires)
}

// DefaultPath returns the path of the invites file that belongs with the
// user file at usersFile: invites.csv in the same folder.
func DefaultPath(usersFile string) string {
	return filepath.Join(filepath.Dir(usersFile), FileName)
}

// hashToken returns the hash of token as the file writes it.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// table is one reading of the file.
type table struct {
	byID   map[string]*entry
	byHash map[string]*entry
	sorted []*entry // by Created, then ID
}

// entry is one invite line.
type entry struct {
	inv  Invite
	hash string // hex SHA-256 of the token
	line int    // 1-based line number in the file it came from
}

// file is how the invites file is read and edited. A missing file holds
// no invites, and every edit is parsed again before it is written: a line
// the parser refuses is a bug, caught before it reaches the disk.
var file = linefile.File[*table]{
	Format:       linefile.Format{Name: "invites file", MaxSize: MaxFileSize},
	Parse:        parse,
	MissingEmpty: true,
	Check:        true,
}

// parseReader reads and parses an invites file from r.
func parseReader(r io.Reader) (*table, error) { return file.ParseReader(r) }

// parse checks the lines of an invites file and returns their table.
func parse(lines []linefile.Line) (*table, error) {
	t := &table{byID: make(map[string]*entry), byHash: make(map[string]*entry)}
	err := linefile.Each(lines, func(n int, text string) error {
		e, err := parseLine(text)
		if err != nil || e == nil {
			return err
		}
		e.line = n
		if prev := t.byID[e.inv.ID]; prev != nil {
			return fmt.Errorf("invite %s is listed twice (first on line %d)", e.inv.ID, prev.line)
		}
		if prev := t.byHash[e.hash]; prev != nil {
			return fmt.Errorf("invite %s has the same token hash as invite %s on line %d", e.inv.ID, prev.inv.ID, prev.line)
		}
		t.byID[e.inv.ID] = e
		t.byHash[e.hash] = e
		t.sorted = append(t.sorted, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(t.sorted, func(x, y *entry) int {
		if c := x.inv.Created.Compare(y.inv.Created); c != 0 {
			return c
		}
		return strings.Compare(x.inv.ID, y.inv.ID)
	})
	return t, nil
}

// Words of a header line's first field, as spreadsheets and other tools
// write them. None is a valid ID, so none can be mistaken for an invite.
var headerNames = []string{"id", "invite", "invites", "code", "token"}

// parseLine parses one line; a nil entry and nil error mean a blank line
// or a comment.
func parseLine(s string) (*entry, error) {
	trimmed := linefile.Trim(s)
	if trimmed == "" || trimmed[0] == '#' {
		return nil, nil
	}
	fields := linefile.Fields(s, -1)
	if slices.ContainsFunc(headerNames, func(w string) bool { return strings.EqualFold(fields[0], w) }) {
		return nil, fmt.Errorf("%s is a header, not an invite (remove the header line: %s has no header)", linefile.Snippet(trimmed), FileName)
	}
	if len(fields) != 5 {
		return nil, fmt.Errorf("%s has %d field(s); want id,hash,uses,expires,created", linefile.Snippet(trimmed), len(fields))
	}
	id, hash, uses, expires, created := fields[0], fields[1], fields[2], fields[3], fields[4]
	if !lowerHex(id, idLen) {
		return nil, fmt.Errorf("invalid ID %s (want %d lowercase hex digits)", linefile.Snippet(id), idLen)
	}
	e := &entry{inv: Invite{ID: id}, hash: hash}
	if !lowerHex(hash, 2*sha256.Size) {
		return nil, fmt.Errorf("invite %s: invalid hash %s (want the SHA-256 of the token in %d lowercase hex digits)", id, linefile.Snippet(hash), 2*sha256.Size)
	}
	var err error
	if e.inv.Uses, err = parseUses(uses); err != nil {
		return nil, fmt.Errorf("invite %s: %w", id, err)
	}
	if e.inv.Expires, err = parseTime("expires", expires); err != nil {
		return nil, fmt.Errorf("invite %s: %w", id, err)
	}
	if e.inv.Created, err = parseTime("created", created); err != nil {
		return nil, fmt.Errorf("invite %s: %w", id, err)
	}
	if !e.inv.Expires.After(e.inv.Created) {
		return nil, fmt.Errorf("invite %s: expires %s is not after created %s", id, formatTime(e.inv.Expires), formatTime(e.inv.Created))
	}
	return e, nil
}

// lowerHex reports whether s is n lowercase hex digits.
func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseUses parses a count of uses: decimal digits, 1 to MaxUses.
func parseUses(s string) (int, error) {
	bad := fmt.Errorf("invalid uses %s (want a whole number from 1 to %d)", linefile.Snippet(s), MaxUses)
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxUses {
		return 0, bad
	}
	return n, nil
}

// parseTime parses an RFC 3339 time and returns it in UTC.
func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s time %s (want RFC 3339, such as 2025-06-01T12:00:00Z)", what, linefile.Snippet(s))
	}
	t = t.UTC()
	// Keep to years that RFC 3339 can write in UTC.
	if y := t.Year(); y < 1970 || y > 9999 {
		return time.Time{}, fmt.Errorf("%s time %s is out of range (want a year from 1970 to 9999)", what, t.Format(time.RFC3339))
	}
	return t, nil
}

// formatTime writes t in UTC, with as many fractional digits as it has.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// format returns e's line in the canonical form.
func (e *entry) format() string {
	return e.inv.ID + "," + e.hash + "," + strconv.Itoa(e.inv.Uses) + "," + formatTime(e.inv.Expires) + "," + formatTime(e.inv.Created)
}

// appendCSV appends the table in the file format, one canonical line per
// invite in creation order.
func (t *table) appendCSV(b []byte) []byte {
	for _, e := range t.sorted {
		b = append(b, e.format()...)
		b = append(b, '\n')
	}
	return b
}

// errUnknownID is Remove's error for an ID not in the file.
func errUnknownID(id string) error {
	return fmt.Errorf("no invite %s: %w", linefile.Snippet(id), ErrUnknown)
}

// ErrUnknown is the error of a token or ID that names no invite that can
// be used: unknown, used up or expired. Use does not say which, so that
// a caller answers all three alike and a guesser learns nothing.
var ErrUnknown = errors.New("unknown, used up or expired invite")
