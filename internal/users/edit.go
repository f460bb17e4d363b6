package users

import (
	"fmt"
	"path/filepath"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// Add adds user name with password to the user file at path, creating the
// file if it does not exist. It fails if a user with that name, ignoring
// case, already exists.
func Add(path, name string, password []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	hash, err := hashChecked(password)
	if err != nil {
		return err
	}
	return edit(path, true, func(t *Table, lines []linefile.Line) ([]linefile.Line, error) {
		if e := t.findFold(name); e != nil {
			if e.name == name {
				return nil, fmt.Errorf("user %q already exists: %w", name, ErrNameTaken)
			}
			return nil, fmt.Errorf("user %q already exists as %q (names are unique ignoring case): %w", name, e.name, ErrNameTaken)
		}
		return linefile.Append(lines, name+","+hash), nil
	})
}

// Delete removes user name, matched exactly, from the user file at path.
func Delete(path, name string) error {
	return edit(path, false, func(t *Table, lines []linefile.Line) ([]linefile.Line, error) {
		e, err := find(t, name)
		if err != nil {
			return nil, err
		}
		return append(lines[:e.line-1:e.line-1], lines[e.line:]...), nil
	})
}

// SetPassword replaces the password of user name, matched exactly, in the
// user file at path.
func SetPassword(path, name string, password []byte) error {
	hash, err := hashChecked(password)
	if err != nil {
		return err
	}
	return edit(path, false, func(t *Table, lines []linefile.Line) ([]linefile.Line, error) {
		e, err := find(t, name)
		if err != nil {
			return nil, err
		}
		lines[e.line-1].Text = e.name + "," + hash
		return lines, nil
	})
}

func checkName(name string) error {
	if !protocol.ValidNameString(name) {
		return fmt.Errorf("invalid user name %s: want 1 to %d of A-Z a-z 0-9 _ . -", linefile.Snippet(name), protocol.MaxNameLen)
	}
	if Reserved(name) {
		return ErrReservedName
	}
	return nil
}

// hashChecked checks password against the protocol's rules, since a
// password that cannot be sent in AUTH could never be used, then hashes it.
func hashChecked(password []byte) (string, error) {
	if !protocol.ValidPassword(password) {
		return "", fmt.Errorf("invalid password: want 1 to %d bytes without spaces or control characters", protocol.MaxPasswordLen)
	}
	return HashWithParams(password, editParams)
}

// editParams are the parameters of hashes written by Add and SetPassword;
// tests lower them to run fast.
var editParams = DefaultParams

func find(t *Table, name string) (*entry, error) {
	if e := t.lookup(name); e != nil {
		return e, nil
	}
	if e := t.findFold(name); e != nil {
		return nil, fmt.Errorf("no user %q (did you mean %q?)", name, e.name)
	}
	return nil, fmt.Errorf("no user %q", name)
}

// edit runs change on the parsed file at path and writes the result back
// atomically, all under the file's lock, so that concurrent edits from any
// number of processes apply one after the other and none is lost. Lines
// that change leaves alone are written back exactly as they were, comments
// included. With create, a missing file is taken as empty.
func edit(path string, create bool, change func(*Table, []linefile.Line) ([]linefile.Line, error)) error {
	// Errors name the file a symbolic link points to, the one edited.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	f := file
	f.MissingEmpty = create
	_, err := f.Edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, bool, error) {
		lines, err := change(t, lines)
		return lines, true, err
	})
	return err
}
