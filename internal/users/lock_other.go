//go:build !unix

package users

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// lockFile takes the lock by creating the lock file exclusively, waiting
// while another process holds it. It is the portable fallback to the
// flock of lock_unix.go; a process that crashes while holding it leaves
// the file behind, so a lock older than a minute is taken to be stale.
func lockFile(path string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(path)
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
}
