package linefile

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// The helpers below serve the tests of the packages whose files linefile
// reads. They take a TB rather than a testing.TB so that linefile does not
// import the testing package into the server.

// TB is the part of a *testing.T or *testing.F the test helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// WriteFile writes text to the file at path, mode 0600, or fails t.
func WriteFile(t TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ReadFile returns what the file at path holds, or fails t.
func ReadFile(t TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WantFile fails t unless the file at path holds want.
func WantFile(t TB, path, want string) {
	t.Helper()
	if got := ReadFile(t, path); got != want {
		t.Fatalf("file holds\n%q\nwant\n%q", got, want)
	}
}

// WantMode fails t unless the file at path has mode 0600, the mode every
// edit writes.
func WantMode(t TB, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("%s has mode %o, want 600", path, m)
	}
}

// ParseTwice parses data with parse in one read and again split in two
// reads, for a fuzz target: it fails t unless both give the same error,
// or none, and unless an error names its line ("line 3: ..."). It
// returns both results and the error.
func ParseTwice[V any](t TB, data []byte, parse func(io.Reader) (V, error)) (one, two V, err error) {
	t.Helper()
	one, err = parse(bytes.NewReader(data))
	half := len(data) / 2
	two, err2 := parse(io.MultiReader(bytes.NewReader(data[:half]), bytes.NewReader(data[half:])))
	if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("one read: %v; two reads: %v", err, err2)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "line ") {
		t.Fatalf("error without line number: %v", err)
	}
	return one, two, err
}
