//go:build unix

package fileperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func check(path string) []string {
	var problems []string
	cannot := func(p string, err error) []string {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return append(problems, fmt.Sprintf("cannot check the permissions of %s: %v", p, err))
	}
	li, err := os.Lstat(path)
	if err != nil {
		return cannot(path, err)
	}
	target, name := path, path
	if li.Mode()&fs.ModeSymlink != 0 {
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return cannot(path, err)
		}
		name = fmt.Sprintf("%s (a symbolic link to %s)", path, target)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return cannot(target, err)
	}
	if perm := fi.Mode().Perm(); perm&0o066 != 0 {
		fix := perm & 0o700
		if fix == 0 {
			fix = 0o600
		}
		problems = append(problems, fmt.Sprintf("%s can be %s (mode %04o): run chmod %o %s",
			name, who(perm, 0o4, 0o2), perm, fix, shellQuote(target)))
	}
	dirs := []string{filepath.Dir(path)}
	if d := filepath.Dir(target); d != dirs[0] {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		di, err := os.Stat(d)
		if err != nil {
			problems = cannot(d, err)
			continue
		}
		perm := di.Mode().Perm()
		if perm&0o022 == 0 || di.Mode()&fs.ModeSticky != 0 {
			continue
		}
		var fix string
		switch perm & 0o022 {
		case 0o020:
			fix = "g-w"
		case 0o002:
			fix = "o-w"
		default:
			fix = "go-w"
		}
		problems = append(problems, fmt.Sprintf("directory %s can be %s (mode %04o), who could replace %s: run chmod %s %s",
			d, who(perm, 0, 0o2), perm, path, fix, shellQuote(d)))
	}
	return problems
}

// who says who can do what of read and write (the bits r and w, for
// others; 0 leaves one out) with a file of mode perm: "read by group and
// others", "written by group and read and written by others".
func who(perm fs.FileMode, r, w fs.FileMode) string {
	does := func(bits fs.FileMode) string {
		switch {
		case r != 0 && bits&r != 0 && bits&w != 0:
			return "read and written"
		case r != 0 && bits&r != 0:
			return "read"
		case bits&w != 0:
			return "written"
		}
		return ""
	}
	group, others := does(perm>>3), does(perm)
	switch {
	case group == others:
		return group + " by group and others"
	case others == "":
		return group + " by group"
	case group == "":
		return others + " by others"
	}
	return group + " by group and " + others + " by others"
}

// shellQuote quotes p for a shell command line, if it needs it.
func shellQuote(p string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-+./:@%,=", r)
	}
	if p != "" && strings.IndexFunc(p, func(r rune) bool { return !safe(r) }) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
