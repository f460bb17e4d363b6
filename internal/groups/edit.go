package groups

import (
	"fmt"
	"slices"
	"strings"

	"github.com/messager/messager/internal/linefile"
)

// Add lists users in group in the groups file at path, creating the file
// (mode 0600) if it does not exist. A group that is not listed yet is
// created; without users it is listed with nobody allowed to join. A group
// that is listed, its name compared ignoring case, gets the users added and
// keeps the name it was written with. A single "*" lets every user join.
//
// It fails, changing nothing, if a name is invalid, a user is already in
// the group, "*" is given with other users or to a group that lists users,
// users are given to a group that lets everyone join, or no users are
// given for a group that is listed already.
func Add(path, group string, users ...string) error {
	if err := checkArgs(group, users); err != nil {
		return err
	}
	everyone := slices.Contains(users, Everyone)
	return edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, error) {
		e := t.find(group)
		if e == nil {
			g := Group{Name: group, Users: slices.Sorted(slices.Values(users)), Everyone: everyone}
			if everyone {
				g.Users = nil
			}
			return linefile.Append(lines, g.format()), nil
		}
		g := e.group.clone()
		switch {
		case len(users) == 0:
			if g.Name != group {
				return nil, fmt.Errorf("group %q already exists as %q (group names are compared ignoring case)", group, g.Name)
			}
			return nil, fmt.Errorf("group %q already exists", group)
		case g.Everyone:
			return nil, fmt.Errorf("group %s already lets every user join (%q)", g.Name, Everyone)
		case everyone && len(g.Users) > 0:
			return nil, fmt.Errorf("group %s lists users; remove them before letting every user join", g.Name)
		case everyone:
			g.Everyone = true
		default:
			for _, u := range users {
				if prev := findUserFold(g.Users, u); prev == u {
					return nil, fmt.Errorf("user %q is already in group %s", u, g.Name)
				} else if prev != "" {
					return nil, fmt.Errorf("user %q is already in group %s as %q (user names are unique ignoring case)", u, g.Name, prev)
				}
			}
			g.Users = append(g.Users, users...)
			slices.Sort(g.Users)
		}
		lines[e.line-1].Text = g.format()
		return lines, nil
	})
}

// Remove takes users out of group in the groups file at path, or, with no
// users, removes the whole group. The group is found ignoring case; users
// match exactly. A group whose last user is removed stays listed, and then
// nobody may join it; so does a group that let everyone join when "*" is
// removed.
//
// It fails, changing nothing, if the group is not listed (a missing file
// lists none) or a user is not in the group.
func Remove(path, group string, users ...string) error {
	if err := checkArgs(group, users); err != nil {
		return err
	}
	everyone := slices.Contains(users, Everyone)
	return edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, error) {
		e := t.find(group)
		if e == nil {
			return nil, fmt.Errorf("no group %q", group)
		}
		if len(users) == 0 {
			return slices.Delete(lines, e.line-1, e.line), nil
		}
		g := e.group.clone()
		switch {
		case everyone && !g.Everyone:
			return nil, fmt.Errorf("group %s does not let every user join (it has no %q to remove)", g.Name, Everyone)
		case everyone:
			g.Everyone = false
		case g.Everyone:
			return nil, fmt.Errorf("group %s lets every user join (%q) and lists no users to remove", g.Name, Everyone)
		default:
			for _, u := range users {
				if _, ok := slices.BinarySearch(g.Users, u); ok {
					continue
				}
				if prev := findUserFold(g.Users, u); prev != "" {
					return nil, fmt.Errorf("no user %q in group %s (did you mean %q?)", u, g.Name, prev)
				}
				return nil, fmt.Errorf("no user %q in group %s", u, g.Name)
			}
			g.Users = slices.DeleteFunc(g.Users, func(u string) bool { return slices.Contains(users, u) })
		}
		lines[e.line-1].Text = g.format()
		return lines, nil
	})
}

// checkArgs checks the names given to Add or Remove as the file's parser
// would, so that an edit never writes a file that cannot be read back.
func checkArgs(group string, users []string) error {
	if err := checkGroupName(group); err != nil {
		return err
	}
	if slices.Contains(users, Everyone) {
		if len(users) != 1 {
			return fmt.Errorf("%q stands for every user and cannot be given with other users", Everyone)
		}
		return nil
	}
	for _, u := range users {
		if err := checkUserName(u); err != nil {
			return err
		}
	}
	return checkDuplicates(group, users)
}

// findUserFold returns the user of users equal to u ignoring case, or "".
func findUserFold(users []string, u string) string {
	for _, v := range users {
		if strings.EqualFold(u, v) {
			return v
		}
	}
	return ""
}

// edit runs change on the parsed file at path and writes the result back
// atomically, all under the file's lock, so that concurrent edits from any
// number of processes apply one after the other and none is lost. Lines
// that change leaves alone are written back exactly as they were; a line
// it edits is written in the canonical form. A missing file is taken as
// empty, as Load takes it.
func edit(path string, change func(*Table, []linefile.Line) ([]linefile.Line, error)) error {
	_, err := file.Edit(path, func(t *Table, lines []linefile.Line) ([]linefile.Line, bool, error) {
		lines, err := change(t, lines)
		return lines, true, err
	})
	return err
}
