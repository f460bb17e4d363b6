//go:build unix

package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// checkDir checks that only uid can write dir: uid owns it, and neither
// group nor others may write it. Anyone else who could write it could
// replace the socket with their own and hear the operator's requests.
func checkDir(dir string, uid int) error {
	fi, err := os.Stat(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if owner, ok := fileOwner(fi); ok && owner != uid {
		return fmt.Errorf("directory %s belongs to uid %d, not to uid %d who runs the server; put the socket in a directory of the server's user", dir, owner, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		who, fix := "group and others", "go-w"
		switch perm & 0o022 {
		case 0o020:
			who, fix = "group", "g-w"
		case 0o002:
			who, fix = "others", "o-w"
		}
		return fmt.Errorf("directory %s can be written by %s (mode %04o), who could replace the socket: run chmod %s %s", dir, who, perm, fix, shellQuote(dir))
	}
	return nil
}

// fileOwner returns the uid that owns the file fi describes.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// createSocket makes a Unix socket at path and listens on it. The umask
// is set so that the socket is made with mode 0600 at most: it is never
// open to others, not even until the chmod after it.
func createSocket(path string) (*net.UnixListener, error) {
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	return ln, err
}
