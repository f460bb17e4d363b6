//go:build !unix

package admin

import (
	"errors"
	"io/fs"
	"net"
)

var errNotUnix = errors.New("the admin socket needs a Unix system")

func checkDir(dir string, uid int) error { return errNotUnix }

func fileOwner(fi fs.FileInfo) (int, bool) { return 0, false }

func createSocket(path string) (*net.UnixListener, error) { return nil, errNotUnix }
