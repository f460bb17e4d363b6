//go:build !linux

package listen

import (
	"net"
	"time"
)

// waitSent gives the peer a moment to take what was written: where the
// send queue cannot be asked for, it waits a fixed part of d.
func waitSent(_ *net.TCPConn, d time.Duration) { time.Sleep(d / 10) }
