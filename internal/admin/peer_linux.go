package admin

import (
	"net"

	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest path of a Unix socket: sun_path holds 108
// bytes, the last a NUL.
const maxSocketPath = 107

// peerCred returns the user and process at the other end of conn, as the
// kernel saw them when the peer connected (SO_PEERCRED).
func peerCred(conn *net.UnixConn) (peer, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{}, err
	}
	if credErr != nil {
		return peer{}, credErr
	}
	return peer{uid: int(cred.Uid), pid: int(cred.Pid), known: true}, nil
}
