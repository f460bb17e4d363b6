package chat_test

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// waitEchoOff waits until the terminal no longer echoes, so that a
// password typed by the test is never shown, however fast it types.
func waitEchoOff(f *os.File) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		if err != nil {
			return false
		}
		if t.Lflag&unix.ECHO == 0 {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// echoOn reports whether the terminal echoes what is typed.
func echoOn(f *os.File) bool {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil && t.Lflag&unix.ECHO != 0
}
