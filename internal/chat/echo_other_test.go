//go:build !linux

package chat_test

import "os"

// waitEchoOff is a no-op where the terminal state is not checked.
func waitEchoOff(*os.File) bool { return true }
