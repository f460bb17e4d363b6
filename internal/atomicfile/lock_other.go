//go:build !unix

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Lock takes an exclusive lock for editing the file at path, waiting while
// another process holds it, and returns the function that releases it.
// Editors that read a file, change it and Write it back under Lock apply
// their edits one after the other, so none is lost.
//
// Without flock, the lock is the existence of a hidden sibling
// (".groups.csv.lock" for groups.csv), created exclusively and removed on
// unlock. A process that crashes while holding it leaves the file behind,
// so a lock file older than a minute is taken to be stale.
func Lock(path string) (unlock func(), err error) {
	// Lock beside the file a link leads to: that is the file Write
	// replaces, whatever link an editor went through.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	dir, base := filepath.Split(path)
	lock := filepath.Join(dir, "."+base+".lock")
	for {
		f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Stat(lock); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(lock)
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
}
