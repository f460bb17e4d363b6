package filewatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/messager/messager/internal/filewatch"
)

const quiet = 150 * time.Millisecond

// start watches path and returns a channel that gets a value per call.
func start(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	calls := make(chan struct{}, 16)
	if err := filewatch.Watch(ctx, path, filewatch.Options{Quiet: quiet}, func() { calls <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	return calls
}

func expectCall(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatalf("no call after %s", what)
	}
}

func expectNoCall(t *testing.T, calls <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-calls:
		t.Fatalf("called during %s", what)
	case <-time.After(d):
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRenameAndRewrite: a file replaced by a rename and one rewritten in
// place each give one call.
func TestRenameAndRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "user.csv")
	write(t, path, "a\n")
	calls := start(t, path)
	write(t, path+".tmp", "b\n")
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, "a rename")
	write(t, path, "c\n")
	expectCall(t, calls, "a rewrite")
	write(t, filepath.Join(dir, "other.csv"), "x\n")
	expectNoCall(t, calls, 3*quiet, "a change to another file")
}

// TestSlowRewrite: a file written in parts, each within the quiet period
// of the last, is read once, after the last part, never half-written.
func TestSlowRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.csv")
	write(t, path, "")
	calls := start(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := f.WriteString("line\n"); err != nil {
			t.Fatal(err)
		}
		expectNoCall(t, calls, quiet/2, "a slow rewrite")
	}
	f.Close()
	expectCall(t, calls, "the end of a slow rewrite")
	expectNoCall(t, calls, 2*quiet, "quiet")
}

// TestSymlink: a path that is a symbolic link to a file in another folder
// is seen to change when its target changes, and when the link is moved
// to a new target.
func TestSymlink(t *testing.T) {
	data, conf := t.TempDir(), t.TempDir()
	target := filepath.Join(data, "user.csv")
	write(t, target, "a\n")
	link := filepath.Join(conf, "user.csv")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	calls := start(t, link)
	write(t, target+".tmp", "b\n")
	if err := os.Rename(target+".tmp", target); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, "the target was replaced")

	// The link moves to a file in a third folder; changes there count.
	elsewhere := filepath.Join(t.TempDir(), "v2.csv")
	write(t, elsewhere, "c\n")
	if err := os.Symlink(elsewhere, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, "the link was moved")
	write(t, elsewhere, "d\n")
	expectCall(t, calls, "the new target was rewritten")
}
