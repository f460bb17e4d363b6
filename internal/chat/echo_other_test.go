//go:build !linux

package chat_test

import "os"

// waitEchoOff is a no-op where the terminal state is not checked.
func waitEchoOff(*os.File) bool { return true }

// echoOn is true where the terminal state is not checked.
func echoOn(*os.File) bool { return true }
