//go:build !unix

package server

// openFileLimit is unknown off Unix; the caps fall back to fixed defaults.
func openFileLimit() int { return 0 }
