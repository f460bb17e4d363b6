//go:build !linux

package admin

import "net"

// maxSocketPath is the longest path of a Unix socket on the BSDs and
// macOS, whose sun_path holds 104 bytes, the last a NUL.
const maxSocketPath = 103

// peerCred does not know the peer here: the connection is served, and
// logged with an unknown uid.
func peerCred(conn *net.UnixConn) (peer, error) { return peer{}, nil }
