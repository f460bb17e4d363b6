// Package bans reads and edits the operator's bans: a bans.csv file beside
// user.csv that lists the user names and the addresses the server turns
// away, each until a time or for good. The file outlives restarts; a ban
// that has expired stays in the file, inert, until an edit tidies it away.
//
// File format:
//
//   - One ban per line: "target,created,until,reason", for example
//     "203.0.113.0/24,2025-06-01T12:00:00Z,2025-06-08T12:00:00Z,spam run"
//     or "mallory,2025-06-01T12:00:00Z,,abuse".
//   - The target is a user name, an IP address or a CIDR prefix. A user
//     name follows the protocol (1 to 32 of A-Z a-z 0-9 _ . -) and is
//     matched exactly, as at login. An address is IPv4 or IPv6 without a
//     zone; a bare address bans that address alone (a /32 or a /128). A
//     prefix must have no bits set past its length: "203.0.113.7/24" is
//     an error, not 203.0.113.0/24. An IPv4-mapped IPv6 address or prefix
//     ("::ffff:203.0.113.7") is the IPv4 one, and an IPv4 client that
//     reaches an IPv6 socket is matched by its IPv4 address; an IPv6
//     prefix matches IPv6 clients only, even ::/0.
//   - Digits and dots are name characters, so a target made of digits and
//     dots only, with a dot, is an address: it must be a valid IPv4
//     address ("10.0.0.256" is an error, not a user). A user whose name
//     looks like that is written "user:10.0.0.256"; "user:" may be put
//     before any user name.
//   - Each target appears once; addresses are compared in their canonical
//     form, so "203.0.113.7", "203.0.113.7/32" and "::ffff:203.0.113.7"
//     are one target. Edits write the canonical form: the shortest IPv6
//     text, and no "/32" or "/128" on a single address.
//   - created and until are RFC 3339 times ("2025-06-01T12:00:00Z"),
//     written in UTC; other offsets are read and converted. created is
//     required. An empty until means the ban never expires; otherwise it
//     must be later than created, and the ban holds until then.
//   - The reason is the rest of the line and may hold commas. It is at
//     most 200 bytes of UTF-8 without control characters, and may be
//     empty (the comma before it may then be left out as well).
//   - There is no header line. A line whose second field is a column name
//     (created, since, date, time, start, from, when, banned) is an error,
//     wherever it is, with a hint to remove it.
//   - Blank lines and lines whose first non-blank character is "#" are
//     ignored, "\r\n" line endings are accepted, spaces and tabs around
//     each field are removed, and the final newline is optional. A UTF-8
//     byte order mark at the start of the file is ignored (and dropped
//     when the file is edited).
//   - The file is read through a 16 MiB limit; every error names its line
//     ("bans.csv: line 3: ...").
//
// A missing file is an empty table, not an error. Add creates the file,
// mode 0600.
//
// A Table is an immutable snapshot of the file: the server loads a new one
// on reload and swaps it in, so readers never need a lock. Whether a ban
// holds depends on the time, which every query takes as an argument, so
// a table never goes stale by itself and tests choose the clock. Add and
// Remove edit the file under a lock and replace it atomically, so
// concurrent edits from any number of processes lose nothing and a reader
// sees the old file or the new, never a part.
package bans

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// MaxFileSize is the largest bans file Parse accepts.
const MaxFileSize = 16 << 20

// FileName is the name of the bans file, kept beside the user file.
const FileName = "bans.csv"

// MaxReasonLen is the longest reason, in bytes.
const MaxReasonLen = 200

// userPrefix marks a target as a user name, for names that would
// otherwise be read as addresses.
const userPrefix = "user:"

// Ban is one ban.
type Ban struct {
	// Target is the banned user name or address in canonical form, as
	// the file holds it after an edit: "mallory", "user:10.0.0.1",
	// "203.0.113.7", "203.0.113.0/24", "2001:db8::/32".
	Target string
	// Prefix is the banned addresses, for an address ban: a bare address
	// is a /32 or /128. It is the zero Prefix for a user ban.
	Prefix netip.Prefix
	// User is set for a ban of a user name; the name is Target without
	// any "user:" before it.
	User bool
	// Created is when the ban was made, in UTC.
	Created time.Time
	// Until is when the ban ends, in UTC; the zero time means never.
	Until time.Time
	// Reason is the operator's note; it may be empty.
	Reason string
}

// Active reports whether the ban holds at now: it has no end or ends
// after now. Created does not matter, so that a ban made by a process
// whose clock runs ahead holds at once.
func (b Ban) Active(now time.Time) bool {
	return b.Until.IsZero() || now.Before(b.Until)
}

// name returns the user name of a user ban.
func (b Ban) name() string {
	return strings.TrimPrefix(b.Target, userPrefix)
}

// Table is an immutable snapshot of a bans file. The zero value and a nil
// *Table are empty tables.
type Table struct {
	users map[string]*entry       // exact user name -> entry
	addrs map[netip.Prefix]*entry // canonical prefix -> entry
	// bits4 and bits6 are the prefix lengths the IPv4 and IPv6 bans use,
	// longest first: Addr tries only those.
	bits4, bits6 []int
	sorted       []*entry // users by name, then addresses in address order
}

// entry is one ban line.
type entry struct {
	ban  Ban
	line int // 1-based line number in the file it came from
}

// Empty returns a table that bans nothing.
func Empty() *Table { return &Table{} }

// DefaultPath returns the path of the bans file that belongs with the
// user file at usersFile: bans.csv in the same folder.
func DefaultPath(usersFile string) string {
	return filepath.Join(filepath.Dir(usersFile), FileName)
}

// Load reads and parses the bans file at path. A file that does not exist
// is an empty table, not an error. Errors name the file and, for a
// malformed file, the line.
func Load(path string) (*Table, error) { return file.Load(path) }

// Parse reads a bans file from r, through a MaxFileSize limit, and checks
// every line. Errors carry the line number ("line 3: ...").
func Parse(r io.Reader) (*Table, error) { return file.ParseReader(r) }

// file is how the bans file is read and edited. A missing file is an
// empty table, not an error.
var file = linefile.File[*Table]{
	Format:       linefile.Format{Name: "bans file", MaxSize: MaxFileSize},
	Parse:        parse,
	MissingEmpty: true,
}

// Len returns the number of bans in the table, expired ones included.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.sorted)
}

// User returns the ban of the user called name, matched exactly, if it
// holds at now.
func (t *Table) User(name string, now time.Time) (Ban, bool) {
	if t == nil {
		return Ban{}, false
	}
	if e := t.users[name]; e != nil && e.ban.Active(now) {
		return e.ban, true
	}
	return Ban{}, false
}

// Addr returns the ban that covers address a at now. When several do, the
// most specific prefix wins: a ban of the address itself before one of
// its /24. A ban that has expired covers nothing, so a broader one that
// still holds is found instead. An IPv4-mapped IPv6 address is looked up
// as its IPv4 form, and a zone is ignored. Addr does not allocate.
func (t *Table) Addr(a netip.Addr, now time.Time) (Ban, bool) {
	if t == nil || len(t.addrs) == 0 || !a.IsValid() {
		return Ban{}, false
	}
	a = a.WithZone("").Unmap()
	bits := t.bits6
	if a.Is4() {
		bits = t.bits4
	}
	for _, n := range bits {
		p, err := a.Prefix(n)
		if err != nil {
			continue
		}
		if e := t.addrs[p]; e != nil && e.ban.Active(now) {
			return e.ban, true
		}
	}
	return Ban{}, false
}

// Active returns the bans that hold at now: user bans sorted by name,
// then address bans in address order (IPv4 first), a shorter prefix
// before a longer one of the same address.
func (t *Table) Active(now time.Time) []Ban {
	out := []Ban{}
	if t == nil {
		return out
	}
	for _, e := range t.sorted {
		if e.ban.Active(now) {
			out = append(out, e.ban)
		}
	}
	return out
}

// All returns every ban in the table, expired ones included, in the order
// of Active.
func (t *Table) All() []Ban {
	out := make([]Ban, 0, t.Len())
	if t == nil {
		return out
	}
	for _, e := range t.sorted {
		out = append(out, e.ban)
	}
	return out
}

// find returns the entry with the target of b, or nil.
func (t *Table) find(b Ban) *entry {
	if b.User {
		return t.users[b.name()]
	}
	return t.addrs[b.Prefix]
}

// ParseTarget parses a ban's target: a user name (with or without "user:"
// before it), an IP address, or a CIDR prefix, as the package doc
// describes. The Ban it returns has Target in canonical form and Prefix or
// User set; the caller fills in the times and the reason.
func ParseTarget(s string) (Ban, error) {
	if name, ok := strings.CutPrefix(s, userPrefix); ok {
		if !protocol.ValidNameString(name) {
			return Ban{}, fmt.Errorf("invalid user name %s after %q (want 1 to %d of A-Z a-z 0-9 _ . -)", linefile.Snippet(name), userPrefix, protocol.MaxNameLen)
		}
		return userBan(name), nil
	}
	if strings.ContainsAny(s, ":/%") || dotted(s) {
		p, err := parseAddress(s)
		if err != nil {
			return Ban{}, err
		}
		return addressBan(p), nil
	}
	if protocol.ValidNameString(s) {
		return userBan(s), nil
	}
	if s == "" {
		return Ban{}, errors.New("empty target (want a user name, an IP address or a CIDR prefix)")
	}
	return Ban{}, fmt.Errorf("invalid target %s (want a user name of 1 to %d of A-Z a-z 0-9 _ . -, an IP address, or a CIDR prefix such as 203.0.113.0/24)", linefile.Snippet(s), protocol.MaxNameLen)
}

// dotted reports whether s is made of digits and dots and has a dot: the
// shape of an IPv4 address, which is also a valid user name.
func dotted(s string) bool {
	if !strings.Contains(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func userBan(name string) Ban {
	target := name
	if dotted(name) {
		target = userPrefix + name
	}
	return Ban{Target: target, User: true}
}

func addressBan(p netip.Prefix) Ban {
	target := p.String()
	if p.IsSingleIP() {
		target = p.Addr().String()
	}
	return Ban{Target: target, Prefix: p}
}

// parseAddress parses an address or a prefix into its canonical prefix:
// IPv4-mapped forms unmapped, a bare address its own /32 or /128.
func parseAddress(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			hint := ""
			if dotted(s) {
				hint = fmt.Sprintf("; a user whose name looks like an address is written %q", userPrefix+s)
			}
			return netip.Prefix{}, fmt.Errorf("invalid address %s%s", linefile.Snippet(s), hint)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("address %s has a zone; ban the address without it", linefile.Snippet(s))
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR prefix %s (want an address, \"/\" and a length, such as 203.0.113.0/24 or 2001:db8::/32)", linefile.Snippet(s))
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("prefix %s has bits set past its length (did you mean %s, or the single address %s?)", linefile.Snippet(s), m, p.Addr())
	}
	return p, nil
}

// checkReason checks a reason already trimmed of spaces and tabs.
func checkReason(s string) error {
	if len(s) > MaxReasonLen {
		return fmt.Errorf("reason is %d bytes, longer than %d", len(s), MaxReasonLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("reason %s is not valid UTF-8", linefile.Snippet(s))
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("reason %s holds a control character", linefile.Snippet(s))
	}
	return nil
}

// parseTime parses an RFC 3339 time and returns it in UTC.
func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s time %s (want RFC 3339, such as 2025-06-01T12:00:00Z)", what, linefile.Snippet(s))
	}
	t = t.UTC()
	if err := checkYear(what, t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// checkYear keeps times to years that RFC 3339 can write in UTC.
func checkYear(what string, t time.Time) error {
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return fmt.Errorf("%s time %s is out of range (want a year from 1970 to 9999)", what, t.UTC().Format(time.RFC3339))
	}
	return nil
}

// formatTime writes t in UTC, with as many fractional digits as it has.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// format returns b's line in the canonical form.
func (b Ban) format() string {
	until := ""
	if !b.Until.IsZero() {
		until = formatTime(b.Until)
	}
	return b.Target + "," + formatTime(b.Created) + "," + until + "," + b.Reason
}

// parse checks the lines of a bans file and returns their table.
func parse(lines []linefile.Line) (*Table, error) {
	t := &Table{users: make(map[string]*entry), addrs: make(map[netip.Prefix]*entry)}
	err := linefile.Each(lines, func(n int, text string) error {
		b, err := parseLine(text)
		if err != nil || b == nil {
			return err
		}
		if prev := t.find(*b); prev != nil {
			// Both are named in canonical form, which shows why
			// "203.0.113.7/32" and "::ffff:203.0.113.7" are one target.
			return fmt.Errorf("%q is banned twice (first on line %d)", b.Target, prev.line)
		}
		e := &entry{ban: *b, line: n}
		if b.User {
			t.users[b.name()] = e
		} else {
			t.addrs[b.Prefix] = e
		}
		t.sorted = append(t.sorted, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.index()
	return t, nil
}

// index sorts the entries and lists the prefix lengths in use.
func (t *Table) index() {
	slices.SortFunc(t.sorted, func(x, y *entry) int { return compareBans(x.ban, y.ban) })
	for p := range t.addrs {
		if p.Addr().Is4() {
			t.bits4 = append(t.bits4, p.Bits())
		} else {
			t.bits6 = append(t.bits6, p.Bits())
		}
	}
	for _, bits := range []*[]int{&t.bits4, &t.bits6} {
		slices.Sort(*bits)
		slices.Reverse(*bits)
		*bits = slices.Compact(*bits)
	}
}

// compareBans orders user bans by name before address bans by address,
// then by prefix length.
func compareBans(x, y Ban) int {
	if x.User != y.User {
		if x.User {
			return -1
		}
		return 1
	}
	if x.User {
		return strings.Compare(x.name(), y.name())
	}
	if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits())
}

// Column names that a header line has in its second field, as
// spreadsheets and other tools write them.
var headerColumns = []string{"created", "since", "date", "time", "start", "from", "when", "banned"}

// parseLine parses one line; a nil ban and nil error mean a blank line or
// a comment.
func parseLine(s string) (*Ban, error) {
	trimmed := linefile.Trim(s)
	if trimmed == "" || trimmed[0] == '#' {
		return nil, nil
	}
	fields := linefile.Fields(s, 4)
	if len(fields) >= 2 && slices.ContainsFunc(headerColumns, func(w string) bool { return strings.EqualFold(fields[1], w) }) {
		return nil, fmt.Errorf("%s is a header, not a ban (remove the header line: %s has no header)", linefile.Snippet(trimmed), FileName)
	}
	if len(fields) < 3 {
		return nil, fmt.Errorf("%s has %d field(s); want target,created,until,reason (until and reason may be empty)", linefile.Snippet(trimmed), len(fields))
	}
	b, err := ParseTarget(fields[0])
	if err != nil {
		return nil, err
	}
	if fields[1] == "" {
		return nil, fmt.Errorf("ban of %q: no created time (want RFC 3339, such as 2025-06-01T12:00:00Z)", b.Target)
	}
	if b.Created, err = parseTime("created", fields[1]); err != nil {
		return nil, fmt.Errorf("ban of %q: %w", b.Target, err)
	}
	if fields[2] != "" {
		if b.Until, err = parseTime("until", fields[2]); err != nil {
			return nil, fmt.Errorf("ban of %q: %w", b.Target, err)
		}
		if !b.Until.After(b.Created) {
			return nil, fmt.Errorf("ban of %q: until %s is not after created %s", b.Target, formatTime(b.Until), formatTime(b.Created))
		}
	}
	if len(fields) == 4 {
		b.Reason = fields[3]
	}
	if err := checkReason(b.Reason); err != nil {
		return nil, fmt.Errorf("ban of %q: %w", b.Target, err)
	}
	return &b, nil
}

// appendCSV appends the table in the file format, one canonical line per
// ban in the order of All.
func (t *Table) appendCSV(b []byte) []byte {
	for _, ban := range t.All() {
		b = append(b, ban.format()...)
		b = append(b, '\n')
	}
	return b
}
