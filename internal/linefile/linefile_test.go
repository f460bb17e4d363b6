package linefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitJoin(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Line
		out  string // Join of the lines
	}{
		{"", nil, ""},
		{"a", []Line{{Text: "a"}}, "a\n"},
		{"a\n", []Line{{Text: "a"}}, "a\n"},
		{"a\r\nb\n\r\n", []Line{{Text: "a", CRLF: true}, {Text: "b"}, {Text: "", CRLF: true}}, "a\r\nb\n\r\n"},
		{"\ufeffa\r", []Line{{Text: "a", CRLF: true}}, "a\r\n"},
		{"\ufeff\ufeffa", []Line{{Text: "\ufeffa"}}, "\ufeffa\n"},
		{"\n\n", []Line{{}, {}}, "\n\n"},
	} {
		got := Split([]byte(tt.in))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if out := string(Join(got)); out != tt.out {
			t.Errorf("Join(Split(%q)) = %q, want %q", tt.in, out, tt.out)
		}
	}
}

func TestJoinDrop(t *testing.T) {
	lines := Split([]byte("a\nb\r\nc\n"))
	lines[1].Drop = true
	if got := string(Join(lines)); got != "a\nc\n" {
		t.Fatalf("Join = %q", got)
	}
}

func TestAppend(t *testing.T) {
	if got := string(Join(Append(nil, "x"))); got != "x\n" {
		t.Errorf("into nothing: %q", got)
	}
	if got := string(Join(Append(Split([]byte("a\r\nb\n")), "x"))); got != "a\r\nb\nx\r\n" {
		t.Errorf("after a CRLF first line: %q", got)
	}
}

func TestEach(t *testing.T) {
	var seen []string
	err := Each(Split([]byte("a\nb\nc\n")), func(n int, text string) error {
		seen = append(seen, text)
		if n == 2 {
			return fs.ErrInvalid
		}
		return nil
	})
	if err == nil || err.Error() != "line 2: invalid argument" || !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(seen, []string{"a", "b"}) {
		t.Fatalf("saw %q", seen)
	}
}

func TestFields(t *testing.T) {
	if got := Fields(" a ,\tb, c,d ", 3); !reflect.DeepEqual(got, []string{"a", "b", "c,d"}) {
		t.Errorf("Fields = %q", got)
	}
	if got := Fields("a,,b", -1); !reflect.DeepEqual(got, []string{"a", "", "b"}) {
		t.Errorf("Fields = %q", got)
	}
}

func TestRead(t *testing.T) {
	f := Format{Name: "test file", MaxSize: 1 << 20}
	if _, err := f.Read(strings.NewReader(strings.Repeat("x", 1<<20))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := f.Read(strings.NewReader(strings.Repeat("x", 1<<20+1)))
	if err == nil || err.Error() != "test file is larger than 1 MiB" {
		t.Fatalf("past the limit: %v", err)
	}
	p := filepath.Join(t.TempDir(), "f")
	if _, err := f.ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(p, []byte(strings.Repeat("x", 1<<20+1)), 0o600)
	if _, err := f.ReadFile(p); err == nil || err.Error() != p+": test file is larger than 1 MiB" {
		t.Fatalf("big file: %v", err)
	}
}

// count parses lines that must all be "x" into their number.
func count(lines []Line) (int, error) {
	n := 0
	err := Each(lines, func(_ int, text string) error {
		if text != "x" {
			return errors.New("not x")
		}
		n++
		return nil
	})
	return n, err
}

func TestEdit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	e := File[int]{Format: Format{Name: "f", MaxSize: 100}, Parse: count}
	add := func(n int, lines []Line) ([]Line, bool, error) { return Append(lines, "x"), true, nil }
	if _, err := e.Edit(p, add); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	e.MissingEmpty = true
	for range 2 {
		if _, err := e.Edit(p, add); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "x\nx\n" {
		t.Fatalf("file holds %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if _, err := e.Edit(p, func(int, []Line) ([]Line, bool, error) { return nil, false, nil }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "x\nx\n" {
		t.Fatalf("an edit with nothing to write wrote %q", b)
	}
	bad := func(_ int, lines []Line) ([]Line, bool, error) { return Append(lines, "y"), true, nil }
	e.Check = true
	if _, err := e.Edit(p, bad); err == nil || err.Error() != p+": edit would write a bad file: line 3: not x" {
		t.Fatalf("checked bad edit: %v", err)
	}
	if n, err := e.Edit(p, add); n != 3 || err != nil {
		t.Fatalf("checked edit: %d, %v", n, err)
	}
	e.Check = false
	if _, err := e.Edit(p, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Edit(p, add); err == nil || err.Error() != p+": line 4: not x" {
		t.Fatalf("edit of a bad file: %v", err)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f := File[int]{Format: Format{Name: "f", MaxSize: 100}, Parse: count}
	if _, err := f.Load(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	f.MissingEmpty = true
	if n, err := f.Load(p); n != 0 || err != nil {
		t.Fatalf("missing file taken as empty: %d, %v", n, err)
	}
	if n, err := f.ParseReader(strings.NewReader("x\nx\nx")); n != 3 || err != nil {
		t.Fatalf("ParseReader = %d, %v", n, err)
	}
	if _, err := f.ParseReader(strings.NewReader(strings.Repeat("x\n", 51))); err == nil || err.Error() != "f is larger than 0 MiB" {
		t.Fatalf("ParseReader past the limit: %v", err)
	}
	os.WriteFile(p, []byte("\ufeffx\r\nx\n"), 0o600)
	if n, err := f.Load(p); n != 2 || err != nil {
		t.Fatalf("Load = %d, %v", n, err)
	}
	os.WriteFile(p, []byte("x\ny\n"), 0o600)
	if _, err := f.Load(p); err == nil || err.Error() != p+": line 2: not x" {
		t.Fatalf("bad file: %v", err)
	}
}

func TestSnippet(t *testing.T) {
	if got := Snippet("a\"b"); got != `"a\"b"` {
		t.Errorf("short: %s", got)
	}
	if got := Snippet(strings.Repeat("x", 40)); got != `"`+strings.Repeat("x", 40)+`"` {
		t.Errorf("40 bytes: %s", got)
	}
	if got := Snippet(strings.Repeat("x", 41)); got != `"`+strings.Repeat("x", 40)+`"...` {
		t.Errorf("41 bytes: %s", got)
	}
}
