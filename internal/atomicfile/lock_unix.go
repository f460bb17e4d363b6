//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock for editing the file at path, waiting while
// another process holds it, and returns the function that releases it.
// Editors that read a file, change it and Write it back under Lock apply
// their edits one after the other, so none is lost.
//
// The lock is an advisory flock on a hidden sibling (".groups.csv.lock"
// for groups.csv, beside the file a symbolic link leads to), not on the
// file itself, because Write replaces the file by renaming a new one over
// it: a lock on the old file would not stop a process that opened the new
// one. The sibling is never renamed or removed (removing it would let two
// processes lock two different files). The kernel releases a flock when
// its process dies, so a crash leaves no stale lock behind.
func Lock(path string) (unlock func(), err error) {
	// Lock beside the file a link leads to: that is the file Write
	// replaces, whatever link an editor went through.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	dir, base := filepath.Split(path)
	lock := filepath.Join(dir, "."+base+".lock")
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
