package listen

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// waitSent waits until c's send queue is empty (every byte written was
// acknowledged by the peer), its peer is gone, or d passes.
func waitSent(c *net.TCPConn, d time.Duration) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(d)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		queued, failed := 0, false
		if err := rc.Control(func(fd uintptr) {
			var err error
			queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
			failed = err != nil
		}); err != nil || failed || queued == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
	}
}
