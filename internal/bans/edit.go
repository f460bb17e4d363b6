package bans

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/messager/messager/internal/linefile"
)

// KeepExpired is how long Add keeps a ban in the file after it expired:
// long enough for the operator to see what just ended, short enough that
// the file does not grow with every temporary ban ever made.
const KeepExpired = 24 * time.Hour

// Add writes ban b to the bans file at path, creating the file (mode 0600)
// if it does not exist. The target is b.Target, parsed as ParseTarget
// parses it; b.Prefix and b.User are taken from it, not from b. A ban of
// the same target, however it is written, is replaced in place; otherwise
// the ban is added at the end. Created is the time of the edit and must be
// set; Until is zero for a ban without end. Times are written to the
// second, Created rounded down and Until up, so that a ban never ends
// before it was asked to.
//
// Add also tidies the file: it drops bans that expired more than
// KeepExpired before b.Created. Every other line is written back exactly
// as it was, comments included.
//
// It fails, changing nothing, if the ban could not be read back: an
// invalid target, a missing Created, an Until not after Created, or a
// reason that is too long or holds control characters.
func Add(path string, b Ban) error {
	b, err := check(b)
	if err != nil {
		return err
	}
	return edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, bool, error) {
		cutoff := b.Created.Add(-KeepExpired)
		for _, e := range t.sorted {
			if !e.ban.Until.IsZero() && e.ban.Until.Before(cutoff) {
				lines[e.line-1].Drop = true
			}
		}
		if e := t.find(b); e != nil {
			lines[e.line-1] = linefile.Line{Text: b.format(), CRLF: lines[e.line-1].CRLF}
		} else {
			lines = linefile.Append(lines, b.format())
		}
		return lines, true, nil
	})
}

// check returns b as Add writes it, or why it cannot.
func check(b Ban) (Ban, error) {
	t, err := ParseTarget(b.Target)
	if err != nil {
		return Ban{}, err
	}
	b.Target, b.Prefix, b.User = t.Target, t.Prefix, t.User
	if b.Created.IsZero() {
		return Ban{}, fmt.Errorf("ban of %q: no created time", b.Target)
	}
	b.Created = b.Created.UTC().Truncate(time.Second)
	if err := checkYear("created", b.Created); err != nil {
		return Ban{}, fmt.Errorf("ban of %q: %w", b.Target, err)
	}
	if !b.Until.IsZero() {
		if u := b.Until.UTC().Truncate(time.Second); u.Before(b.Until) {
			b.Until = u.Add(time.Second)
		} else {
			b.Until = u
		}
		if err := checkYear("until", b.Until); err != nil {
			return Ban{}, fmt.Errorf("ban of %q: %w", b.Target, err)
		}
		if !b.Until.After(b.Created) {
			return Ban{}, fmt.Errorf("ban of %q: until %s is not after created %s", b.Target, formatTime(b.Until), formatTime(b.Created))
		}
	}
	b.Reason = strings.Trim(b.Reason, " \t")
	if err := checkReason(b.Reason); err != nil {
		return Ban{}, fmt.Errorf("ban of %q: %w", b.Target, err)
	}
	return b, nil
}

// Remove lifts the ban of target from the bans file at path, and reports
// whether there was one, expired or not. The target is compared in
// canonical form, so "203.0.113.7/32" removes a ban written
// "203.0.113.7". A missing file holds no bans and is not created.
func Remove(path, target string) (bool, error) {
	want, err := ParseTarget(target)
	if err != nil {
		return false, err
	}
	removed := false
	err = edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, bool, error) {
		e := t.find(want)
		if e == nil {
			return nil, false, nil
		}
		removed = true
		return slices.Delete(lines, e.line-1, e.line), true, nil
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// edit runs change on the parsed file at path and, if it reports a
// change, writes the result back atomically, all under the file's lock,
// so that concurrent edits from any number of processes apply one after
// the other and none is lost. A missing file is taken as empty, as Load
// takes it; an edit that changes nothing does not create it.
func edit(path string, change func(*Table, []linefile.Line) ([]linefile.Line, bool, error)) error {
	_, err := file.Edit(path, change)
	return err
}
