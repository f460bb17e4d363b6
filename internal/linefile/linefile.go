// Package linefile reads and edits the server's line-based files
// (user.csv, groups.csv, bans.csv, invites.csv) the one way they all
// share: read through a size limit, split into lines that keep their
// "\r\n" or "\n", a leading UTF-8 byte order mark dropped, errors named by
// line number; and edited under the file's lock, with every line the edit
// leaves alone written back exactly as it was, and the new file put in
// place atomically. What a line means is the caller's business.
package linefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/messager/messager/internal/atomicfile"
)

// Line is one line of a file as written, without its terminator.
type Line struct {
	// Text is the line without "\n" and without a "\r" before it.
	Text string
	// CRLF is set when the line ended in "\r\n".
	CRLF bool
	// Drop is set by an edit that removes the line; Join leaves it out.
	Drop bool
}

// Format is what the reading of one kind of file needs to know.
type Format struct {
	// Name names the file in the error for one too large: "user file"
	// gives "user file is larger than 16 MiB".
	Name string
	// MaxSize is the largest file Read accepts, in bytes.
	MaxSize int
}

// Read reads r whole, through the MaxSize limit.
func (f Format) Read(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(f.MaxSize)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > f.MaxSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", f.Name, f.MaxSize>>20)
	}
	return data, nil
}

// ReadFile reads the file at path through the MaxSize limit. The error of
// opening it is returned as it is, so that the caller can tell a missing
// file (fs.ErrNotExist) and the message names the path already; a later
// error is prefixed with the path.
func (f Format) ReadFile(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := f.Read(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

const utf8BOM = "\ufeff"

// Split cuts data into lines. A UTF-8 byte order mark at the start is
// dropped: editors on Windows write one, and it is not part of the first
// line. A final line without "\n" counts; an empty remainder after the
// last "\n" does not.
func Split(data []byte) []Line {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	var lines []Line
	for len(data) > 0 {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		crlf := false
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l, crlf = l[:n-1], true
		}
		lines = append(lines, Line{Text: string(l), CRLF: crlf})
	}
	return lines
}

// Each calls fn with the 1-based number and the text of each line, in
// order, and stops at the first error, which it returns prefixed with the
// line number ("line 3: ...").
func Each(lines []Line, fn func(n int, text string) error) error {
	for i, l := range lines {
		if err := fn(i+1, l.Text); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return nil
}

// Trim removes the spaces and tabs around s, the blanks the files allow
// around a line and each of its fields.
func Trim(s string) string { return strings.Trim(s, " \t") }

// Fields splits s at commas into at most n fields (all of them if n < 0),
// as strings.SplitN does, and trims each.
func Fields(s string, n int) []string {
	fields := strings.SplitN(s, ",", n)
	for i := range fields {
		fields[i] = Trim(fields[i])
	}
	return fields
}

// Snippet quotes the start of untrusted text for an error message: at
// most 40 bytes of it, with "..." after the quote when there is more.
func Snippet(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// Append adds a line with text at the end of lines. It ends the way the
// first line does, so a file written with "\r\n" keeps to it.
func Append(lines []Line, text string) []Line {
	crlf := len(lines) > 0 && lines[0].CRLF
	return append(lines, Line{Text: text, CRLF: crlf})
}

// Join writes lines back as a file, each with the terminator it had and
// without the ones marked Drop.
func Join(lines []Line) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		if l.Drop {
			continue
		}
		b.WriteString(l.Text)
		if l.CRLF {
			b.WriteByte('\r')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// File is one kind of line file, whose lines parse to a T.
type File[T any] struct {
	Format
	// Parse checks the lines of the file and returns what Load returns
	// and an edit's change works on. Its errors are prefixed with the
	// file's path.
	Parse func([]Line) (T, error)
	// MissingEmpty takes a file that does not exist as empty; otherwise
	// that is an error.
	MissingEmpty bool
	// Check has Edit parse the lines it would write before it writes
	// them, and refuse to write lines that Parse refuses.
	Check bool
}

// ParseReader reads a file from r through the MaxSize limit and parses
// it. Errors carry the line number ("line 3: ...").
func (f File[T]) ParseReader(r io.Reader) (T, error) {
	data, err := f.Read(r)
	if err != nil {
		var zero T
		return zero, err
	}
	return f.Parse(Split(data))
}

// Load reads the file at path through the MaxSize limit and parses it.
// Errors name the file and, for a malformed file, the line.
func (f File[T]) Load(path string) (T, error) {
	t, _, err := f.load(path)
	return t, err
}

// load reads and parses the file at path, and returns its lines too.
func (f File[T]) load(path string) (T, []Line, error) {
	var zero T
	data, err := f.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && f.MissingEmpty {
		data, err = nil, nil
	}
	if err != nil {
		return zero, nil, err
	}
	lines := Split(data)
	t, err := f.Parse(lines)
	if err != nil {
		return zero, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, lines, nil
}

// Edit takes atomicfile.Lock on the file at path, reads and parses it,
// and runs change on it: change edits the lines in place or returns new
// ones, and reports whether there is anything to write. The lines are
// then written back atomically with mode 0600 (through a symbolic link,
// to the file it leads to). Holding the lock across all of it makes
// concurrent edits from any number of processes apply one after the
// other, none lost; a reader sees the old file or the new, never a part,
// and a crash leaves one or the other on disk. Lines that change leaves
// alone are written back exactly as they were, comments included. When
// change fails, or has nothing to write, nothing is written.
//
// With Check, Edit returns what Parse makes of the lines it wrote;
// otherwise it returns the zero T.
func (f File[T]) Edit(path string, change func(T, []Line) ([]Line, bool, error)) (written T, err error) {
	var zero T
	unlock, err := atomicfile.Lock(path)
	if err != nil {
		return zero, fmt.Errorf("lock %s: %w", path, err)
	}
	defer unlock()

	t, lines, err := f.load(path)
	if err != nil {
		return zero, err
	}
	lines, write, err := change(t, lines)
	if err != nil || !write {
		return zero, err
	}
	data := Join(lines)
	if f.Check {
		if written, err = f.Parse(Split(data)); err != nil {
			// change made a line the parser refuses: a bug, caught
			// before it reaches the disk.
			return zero, fmt.Errorf("%s: edit would write a bad file: %w", path, err)
		}
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return zero, err
	}
	return written, nil
}
