//go:build !unix

package fileperm

func check(path string) []string { return nil }
