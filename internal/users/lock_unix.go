//go:build unix

package users

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive advisory lock on the lock file at path,
// creating it if needed, and waits for it if another process holds it.
//
// The lock is on a hidden sibling file (".user.csv.lock" for user.csv),
// not on the user file itself, because each edit replaces the user file by
// renaming a new one over it: a lock on the old file would not stop a
// process that opened the new one. The sibling is
// never renamed or removed (removing it would let two processes lock two
// different files), so every editor locks the same inode. flock locks are
// released by the kernel when the process dies, so a crash leaves no stale
// lock behind, unlike a lock file whose existence is the lock.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
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
