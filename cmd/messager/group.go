package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/users"
)

// groupFiles are the files the group commands work on.
type groupFiles struct {
	users  string // --users
	groups string // --groups; empty for groups.csv beside the user file
}

// groupsPath returns the groups file: --groups, or groups.csv beside the
// user file.
func (f *groupFiles) groupsPath() string {
	if f.groups != "" {
		return f.groups
	}
	return groups.DefaultPath(f.users)
}

func newGroupCmd() *cobra.Command {
	files := &groupFiles{}
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List groups and the users allowed to join them",
		Long: `Manage the groups the operator lists, kept in a groups file (groups.csv beside
the user file by default): one group per line, "#name,user1,user2,...", or
"#name,*" to let every user join.

A listed group exists while nobody is in it, and only its users may join
it; a group listed without users can be joined by nobody. Group names are
"#" and 1 to 32 of A-Z a-z 0-9 _ . -, compared ignoring case. Quote them:
a shell takes an unquoted # for the start of a comment. A running server
picks up changes when it reloads the file (SIGHUP).`,
		Args: groupNoArgs,
		// Runnable, so that Args is checked: a mistyped subcommand is then
		// an error instead of help text.
		RunE: func(cmd *cobra.Command, args []string) error { return nil },
	}
	cmd.PersistentFlags().StringVar(&files.users, "users", defaultUsersFile, "user `file`, to check the users given to add")
	cmd.PersistentFlags().StringVar(&files.groups, "groups", "", "groups `file` (default groups.csv beside the user file)")
	cmd.AddCommand(
		newGroupAddCmd(files),
		newGroupDelCmd(files),
		newGroupListCmd(files),
	)
	return cmd
}

func newGroupAddCmd(files *groupFiles) *cobra.Command {
	return &cobra.Command{
		Use:   "add '#NAME' [USER...]",
		Short: "List a group, or let more users join one",
		Long: `Add users to a listed group, listing the group if it is new and creating the
groups file (mode 0600) if needed. A single "*" instead of users lets every
user join; a new group without users is listed with nobody allowed to join.

Users missing from the user file are added anyway, with a warning: a user
may be created later.`,
		Example: `  messager group add '#team' alice bob
  messager group add '#lobby' '*'`,
		Args: groupNameAndUsers,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, members := args[0], args[1:]
			path := files.groupsPath()
			before, err := groups.Load(path)
			if err != nil {
				return err
			}
			if err := groups.Add(path, name, members...); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if g, ok := before.Lookup(name); ok {
				name = g.Name // as written when the group was made
				if len(members) == 1 && members[0] == groups.Everyone {
					fmt.Fprintf(stderr, "messager: every user may join %s now (%s)\n", name, path)
				} else {
					fmt.Fprintf(stderr, "messager: added %s to %s in %s\n", strings.Join(members, ", "), name, path)
				}
			} else {
				switch {
				case len(members) == 0:
					fmt.Fprintf(stderr, "messager: added group %s to %s; nobody may join it until users are added (\"messager group add '%s' USER...\")\n", name, path, name)
				case members[0] == groups.Everyone:
					fmt.Fprintf(stderr, "messager: added group %s to %s; every user may join it\n", name, path)
				default:
					fmt.Fprintf(stderr, "messager: added group %s to %s with %s\n", name, path, strings.Join(members, ", "))
				}
			}
			warnUnknownUsers(stderr, files.users, members)
			return nil
		},
	}
}

func newGroupDelCmd(files *groupFiles) *cobra.Command {
	return &cobra.Command{
		Use:     "del '#NAME' [USER...]",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove users from a group, or the whole group",
		Long: `Remove users from a listed group, or, without users, the group itself. A
group whose last user is removed stays listed, and nobody may join it. A
running server applies the change when it reloads the file (SIGHUP).`,
		Example: `  messager group del '#team' bob
  messager group del '#team'`,
		Args: groupNameAndUsers,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, members := args[0], args[1:]
			path := files.groupsPath()
			// Say which file lacks the group; Remove checks again under
			// the file's lock.
			if t, err := groups.Load(path); err != nil {
				return err
			} else if _, ok := t.Lookup(name); !ok {
				return fmt.Errorf("no group %q in %s (see \"messager group list\")", name, path)
			}
			if err := groups.Remove(path, name, members...); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if len(members) == 0 {
				fmt.Fprintf(stderr, "messager: removed group %s from %s\n", name, path)
				return nil
			}
			t, err := groups.Load(path)
			if err != nil {
				return err
			}
			g, ok := t.Lookup(name)
			if ok {
				name = g.Name
			}
			fmt.Fprintf(stderr, "messager: removed %s from %s in %s\n", strings.Join(members, ", "), name, path)
			if ok && !g.Everyone && len(g.Users) == 0 {
				fmt.Fprintf(stderr, "messager: nobody may join %s now; remove the group with \"messager group del '%s'\"\n", name, name)
			}
			return nil
		},
	}
}

// groupJSON is a group in the output of "group list --json".
type groupJSON struct {
	Name     string   `json:"name"`
	Users    []string `json:"users"`
	Everyone bool     `json:"everyone"`
}

func newGroupListCmd(files *groupFiles) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List groups with the users allowed to join them, one group per line",
		Long: `List the groups of the groups file, sorted by name, one per line: the name,
two spaces, then the users allowed to join, or "*" if every user may. A
group nobody may join is shown alone. With --json, print one JSON array of
{"name", "users", "everyone"} objects instead.`,
		Args: groupNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := files.groupsPath()
			t, err := groups.Load(path)
			if err != nil {
				return err
			}
			list := t.Groups()
			out := cmd.OutOrStdout()
			if asJSON {
				js := make([]groupJSON, 0, len(list))
				for _, g := range list {
					js = append(js, groupJSON(g))
				}
				return json.NewEncoder(out).Encode(js)
			}
			var b strings.Builder
			var nobody []string
			for _, g := range list {
				b.WriteString(g.Name)
				switch {
				case g.Everyone:
					b.WriteString("  " + groups.Everyone)
				case len(g.Users) > 0:
					b.WriteString("  " + strings.Join(g.Users, " "))
				default:
					nobody = append(nobody, g.Name)
				}
				b.WriteByte('\n')
			}
			if _, err := io.WriteString(out, b.String()); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if t.Len() == 0 {
				fmt.Fprintf(stderr, "messager: no groups in %s; add one with \"messager group add '#name' USER...\"\n", path)
			}
			if len(nobody) > 0 {
				fmt.Fprintf(stderr, "messager: nobody may join %s: no users are listed\n", strings.Join(nobody, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the groups as one JSON array")
	return cmd
}

// warnUnknownUsers warns about the users that are not in the user file.
// They are listed anyway: a user may be created after the group.
func warnUnknownUsers(stderr io.Writer, usersFile string, members []string) {
	if len(members) == 0 || members[0] == groups.Everyone {
		return
	}
	t, err := users.Load(usersFile)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "messager: warning: %s does not exist, so the users were not checked\n", usersFile)
		return
	}
	if err != nil {
		fmt.Fprintf(stderr, "messager: warning: users not checked: %v\n", err)
		return
	}
	for _, u := range members {
		if t.Has(u) {
			continue
		}
		if n := findUserFold(t, u); n != "" {
			fmt.Fprintf(stderr, "messager: warning: no user %q in %s (did you mean %q?); added anyway\n", u, usersFile, n)
		} else {
			fmt.Fprintf(stderr, "messager: warning: no user %q in %s; added anyway (create it with \"messager user add %s\")\n", u, usersFile, u)
		}
	}
}

// groupNameAndUsers checks the arguments of add and del: a group name,
// then users, or a single "*". Mistakes are usage errors (exit status 2).
func groupNameAndUsers(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageError(fmt.Errorf("%s needs a group name; quote it, as in '#team', since a shell takes an unquoted # for a comment (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	name, members := args[0], args[1:]
	if !protocol.ValidGroupString(name) {
		err := fmt.Errorf("invalid group name %q: want \"#\" and 1 to %d of A-Z a-z 0-9 _ . -", name, protocol.MaxGroupLen)
		if protocol.ValidGroupString("#" + name) {
			err = fmt.Errorf("%w (did you mean '#%s'?)", err, name)
		}
		return usageError(err)
	}
	seen := make(map[string]string, len(members))
	for _, u := range members {
		if u == groups.Everyone {
			if len(members) != 1 {
				return usageError(fmt.Errorf("%q stands for every user and cannot be given with other users", groups.Everyone))
			}
			continue
		}
		if err := checkUserName(u); err != nil {
			return err
		}
		key := strings.ToLower(u)
		if prev, ok := seen[key]; ok {
			if prev == u {
				return usageError(fmt.Errorf("user %q is given twice", u))
			}
			return usageError(fmt.Errorf("users %q and %q differ only by case (user names are unique ignoring case)", prev, u))
		}
		seen[key] = u
	}
	return nil
}

// groupNoArgs refuses arguments, so that a mistyped subcommand ("messager
// group ad '#team'") is an error rather than help text.
func groupNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError(fmt.Errorf("unknown command %q for %q (see %q)", args[0], cmd.CommandPath(), cmd.CommandPath()+" --help"))
		}
		return usageError(fmt.Errorf("%s takes no arguments (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	if cmd.HasSubCommands() {
		return usageError(fmt.Errorf("%s needs a subcommand: add, del or list (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	return nil
}
