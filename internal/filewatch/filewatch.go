// Package filewatch calls back when a file has changed on disk and then
// stopped changing. It follows the ways files are really edited: replaced
// by a rename (editors, 'messager user'), rewritten in place, slowly, and
// reached through a symbolic link whose target lives elsewhere (a
// configuration volume, a link swapped to a new version).
package filewatch

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultQuiet is how long a file must go unchanged before it is read:
// long enough for a slow rewrite in place to finish, short enough that an
// operator's edit takes effect at once to a human.
const DefaultQuiet = time.Second

// Options tune a watch. The zero value is the defaults.
type Options struct {
	// Quiet is how long the file must go without a change before
	// OnChange runs; zero means DefaultQuiet.
	Quiet time.Duration
	// OnError receives errors of the watch itself (not of the file); nil
	// drops them.
	OnError func(error)
}

// Watch calls onChange, from one goroutine, each time the file at path
// has changed and then gone Quiet without a further change, until ctx
// ends. It watches the folder of path and, when path is a symbolic link,
// the folder of its target as well, following the link when it is moved
// to another target.
func Watch(ctx context.Context, path string, opts Options, onChange func()) error {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	fw := &watch{w: w, path: filepath.Clean(path), dirs: make(map[string]bool)}
	if err := fw.follow(); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", path, err)
	}
	go fw.run(ctx, opts, onChange)
	return nil
}

// watch is the state of one Watch, owned by its goroutine after start.
type watch struct {
	w      *fsnotify.Watcher
	path   string          // the path as given, cleaned
	target string          // where it leads, symbolic links resolved
	dirs   map[string]bool // folders watched
}

// follow resolves the path again and watches the folders of the path and
// of its target. A missing target is not an error: the link may be
// pointed at a file that is yet to come.
func (fw *watch) follow() error {
	fw.target = fw.path
	if t, err := filepath.EvalSymlinks(fw.path); err == nil {
		fw.target = filepath.Clean(t)
	}
	for _, dir := range []string{filepath.Dir(fw.path), filepath.Dir(fw.target)} {
		if fw.dirs[dir] {
			continue
		}
		if err := fw.w.Add(dir); err != nil {
			return err
		}
		fw.dirs[dir] = true
	}
	return nil
}

func (fw *watch) concerns(name string) bool {
	name = filepath.Clean(name)
	return name == fw.path || name == fw.target
}

func (fw *watch) run(ctx context.Context, opts Options, onChange func()) {
	defer fw.w.Close()
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !fw.concerns(ev.Name) {
				continue
			}
			// Every change restarts the quiet period: a file is read
			// only once it has stopped changing.
			quiet.Reset(opts.Quiet)
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			if opts.OnError != nil {
				opts.OnError(err)
			}
		case <-quiet.C:
			if err := fw.follow(); err != nil && opts.OnError != nil {
				opts.OnError(err)
			}
			onChange()
		}
	}
}
