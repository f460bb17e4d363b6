package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/admin"
	"github.com/messager/messager/internal/client"
)

// defaultAdminSocket is where the server's admin socket is unless told
// otherwise: messager.sock beside the user file.
func defaultAdminSocket(usersFile string) string { return admin.DefaultSocketPath(usersFile) }

// adminOptions are the flags of every admin command.
type adminOptions struct {
	socket string // --socket; empty for messager.sock beside the user file
	users  string // --users
	json   bool   // --json
}

func (o *adminOptions) socketPath() string {
	if o.socket != "" {
		return o.socket
	}
	return defaultAdminSocket(o.users)
}

// call connects to the admin socket, runs fn, and disconnects.
func (o *adminOptions) call(fn func(c *admin.Client) error) error {
	c, err := admin.Dial(o.socketPath())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// adminCommands lists the admin subcommands, for the usage error of
// "messager admin" alone.
const adminCommands = "sessions, kick, ban, unban, bans, notice, invite, invites, uninvite, reload or groups"

func newAdminCmd() *cobra.Command {
	o := &adminOptions{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage a running server: sessions, kicks, bans, notices, invites",
		Long: `Talk to a running server over its admin socket, a Unix socket (messager.sock
beside the user file by default; serve's --admin-socket). There is no
password: whoever may connect to the socket is the operator, and the
server makes it mode 0600, in a directory only its user may write. Run
the admin commands as the user who runs the server.

Results are printed for people, tables on standard output and notes on
standard error; --json prints them as JSON on standard output instead, for
scripts. The exit status is 0 on success, 1 when the server could not do
what was asked (a kick of a user who is not online, an unban of a target
not banned, a reload with errors, no server), and 2 for a usage error.`,
		Example: `  messager admin sessions
  messager admin kick bob --reason spam
  messager admin ban 203.0.113.0/24 --for 24h
  messager admin notice 'restarting in 5 minutes'
  messager admin invite --uses 3 --ttl 72h`,
		Args: adminNoArgs,
		// Runnable, so that Args is checked: a mistyped subcommand is then
		// an error instead of help text.
		RunE: func(cmd *cobra.Command, args []string) error { return nil },
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.socket, "socket", "", "admin socket `path` (default messager.sock beside the user file)")
	f.StringVar(&o.users, "users", defaultUsersFile, "user `file`, beside which the socket is by default")
	f.BoolVar(&o.json, "json", false, "print the result as JSON on standard output")
	cmd.AddCommand(
		newAdminSessionsCmd(o),
		newAdminKickCmd(o),
		newAdminBanCmd(o),
		newAdminUnbanCmd(o),
		newAdminBansCmd(o),
		newAdminNoticeCmd(o),
		newAdminInviteCmd(o),
		newAdminInvitesCmd(o),
		newAdminUninviteCmd(o),
		newAdminReloadCmd(o),
		newAdminGroupsCmd(o),
	)
	return cmd
}

func newAdminSessionsCmd(o *adminOptions) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the sessions online",
		Long: `List the sessions online, sorted by user: user, remote address, login time,
protocol version, bytes queued to it, and the groups it is in. With
--user, only that user's session.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user != "" {
				if err := admin.CheckUser(user); err != nil {
					return usageError(err)
				}
			}
			return o.call(func(c *admin.Client) error {
				list, err := c.Sessions(user)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, list)
				}
				if len(list) == 0 {
					if user != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "messager: %s is not online\n", user)
					} else {
						fmt.Fprintln(cmd.ErrOrStderr(), "messager: nobody is online")
					}
					return nil
				}
				// A cluster's sessions say which node they are on.
				clustered := slices.ContainsFunc(list, func(s admin.Session) bool { return s.Node != "" })
				header := []string{"USER", "REMOTE", "SINCE", "VERSION", "QUEUED", "GROUPS"}
				if clustered {
					header = append(header, "NODE")
				}
				rows := [][]string{header}
				for _, s := range list {
					groups := "-"
					if len(s.Groups) > 0 {
						groups = strings.Join(s.Groups, ",")
					}
					row := []string{s.User, s.Remote, formatTime(s.Since), strconv.Itoa(s.Version), strconv.Itoa(s.QueuedBytes), groups}
					if clustered {
						row = append(row, s.Node)
					}
					rows = append(rows, row)
				}
				return printTable(cmd.OutOrStdout(), rows)
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's session")
	return cmd
}

func newAdminKickCmd(o *adminOptions) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "kick USER",
		Short: "End a user's session",
		Long: `End a user's session. The user may log in again at once; to keep them out,
ban them. Fails (exit status 1) if the user is not online.`,
		Args: adminArgs(1, "one user name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			if err := admin.CheckUser(user); err != nil {
				return usageError(err)
			}
			if err := admin.CheckReason(reason); err != nil {
				return usageError(fmt.Errorf("--reason: %w", err))
			}
			return o.call(func(c *admin.Client) error {
				kicked, err := c.Kick(user, reason)
				if err != nil {
					return err
				}
				if !kicked {
					return fmt.Errorf("%s is not online", user)
				}
				if o.json {
					return printJSON(cmd, struct {
						User   string `json:"user"`
						Kicked bool   `json:"kicked"`
					}{user, true})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: kicked %s\n", user)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the log and the user")
	return cmd
}

func newAdminBanCmd(o *adminOptions) *cobra.Command {
	var reason string
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "ban USER|ADDRESS[/BITS]",
		Short: "Ban a user or an address, ending their sessions",
		Long: `Ban a user, an address, or a network written ADDRESS/BITS: their sessions
end, and they cannot log in until the ban ends (--for, as in 30m or 12h;
without it, until "messager admin unban"). Digits and dots are an
address: a user whose name looks like one is written user:NAME. A network
has no bits set past its length (10.0.0.0/8, not 10.1.2.3/8). Banning a
target again replaces its ban.`,
		Example: `  messager admin ban bob --reason spam
  messager admin ban 2001:db8::/32 --for 12h`,
		Args: adminArgs(1, "one user name or ADDRESS[/BITS]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := admin.ParseTarget(args[0]); err != nil {
				return usageError(err)
			}
			if d < 0 {
				return usageError(fmt.Errorf("--for %v: a ban cannot last less than nothing", d))
			}
			if err := admin.CheckReason(reason); err != nil {
				return usageError(fmt.Errorf("--reason: %w", err))
			}
			return o.call(func(c *admin.Client) error {
				b, err := c.Ban(args[0], d, reason)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, b)
				}
				until := "with no end"
				if !b.Until.IsZero() {
					until = "until " + formatTime(b.Until)
				}
				ended := ""
				if b.Sessions > 0 {
					ended = "; ended " + countOf(b.Sessions, "session")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: banned %s %s%s\n", client.Escape(b.Target), until, ended)
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&d, "for", 0, "how long the ban lasts, as in 30m or 12h (default: until unbanned)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the list of bans and the log")
	return cmd
}

func newAdminUnbanCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unban USER|ADDRESS[/BITS]",
		Short: "Lift a ban",
		Long: `Lift the ban on a user, an address or a network, written as it was banned
(see "messager admin bans"). Fails (exit status 1) if there is no such ban.`,
		Args: adminArgs(1, "one user name or ADDRESS[/BITS]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _, err := admin.ParseTarget(args[0])
			if err != nil {
				return usageError(err)
			}
			return o.call(func(c *admin.Client) error {
				found, err := c.Unban(target)
				if err != nil {
					return err
				}
				if !found {
					return fmt.Errorf("no ban on %s (see \"messager admin bans\")", target)
				}
				if o.json {
					return printJSON(cmd, struct {
						Target   string `json:"target"`
						Unbanned bool   `json:"unbanned"`
					}{target, true})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: lifted the ban on %s\n", target)
				return nil
			})
		},
	}
}

func newAdminBansCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "bans",
		Short: "List the bans in force",
		Long: `List the bans in force: target, user or address, when the ban ends, when
it was made, how many sessions it ended, and why.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *admin.Client) error {
				list, err := c.Bans()
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, list)
				}
				if len(list) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "messager: no bans")
					return nil
				}
				rows := [][]string{{"TARGET", "KIND", "UNTIL", "CREATED", "ENDED", "REASON"}}
				for _, b := range list {
					kind, until, reason := "address", "never", "-"
					if b.User {
						kind = "user"
					}
					if !b.Until.IsZero() {
						until = formatTime(b.Until)
					}
					if b.Reason != "" {
						reason = b.Reason
					}
					rows = append(rows, []string{b.Target, kind, until, formatTime(b.Created), strconv.Itoa(b.Sessions), reason})
				}
				return printTable(cmd.OutOrStdout(), rows)
			})
		},
	}
}

func newAdminNoticeCmd(o *adminOptions) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "notice [--to USER|'#GROUP'] TEXT...",
		Short: "Send a notice from the server to everyone, a user or a group",
		Long: `Send a notice from the server: every session gets it, or, with --to, a
user's session or a group's members. It arrives as a message from
"server". The words are joined with spaces into one line.`,
		Example: `  messager admin notice 'restarting at 22:00'
  messager admin notice --to '#ops' disk almost full`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(fmt.Errorf("%s needs the text of the notice (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := admin.CheckNoticeTo(to); err != nil {
				return usageError(fmt.Errorf("--to: %w", err))
			}
			text := strings.Join(args, " ")
			if err := admin.CheckNotice(text); err != nil {
				return usageError(err)
			}
			return o.call(func(c *admin.Client) error {
				n, err := c.Notice(to, text)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, struct {
						Sessions int `json:"sessions"`
					}{n})
				}
				if n == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "messager: no session got the notice")
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "messager: sent the notice to %s\n", countOf(n, "session"))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "a user or a '#group' (default: everyone)")
	return cmd
}

func newAdminInviteCmd(o *adminOptions) *cobra.Command {
	var uses int
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Make an invite for new users to sign up with",
		Long: `Make an invite: a token that lets --uses new users sign up within --ttl.
The token is printed on standard output, this once: the server keeps no
way to show it again. Its ID, for "messager admin uninvite", and when it
expires are printed on standard error.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := admin.CheckInviteUses(uses); err != nil {
				return usageError(fmt.Errorf("--uses: %w", err))
			}
			if ttl <= 0 {
				return usageError(fmt.Errorf("--ttl %v: an invite must last longer than nothing", ttl))
			}
			return o.call(func(c *admin.Client) error {
				token, inv, err := c.Invite(uses, ttl)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, struct {
						Token  string       `json:"token"`
						Invite admin.Invite `json:"invite"`
					}{token, inv})
				}
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), client.Escape(token)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: invite %s: %s, expires %s\n", client.Escape(inv.ID), countOf(inv.Uses, "use"), formatTime(inv.Expires))
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&uses, "uses", 1, "how many users may sign up with the invite")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the invite lasts, as in 90m or 72h")
	return cmd
}

func newAdminInvitesCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "invites",
		Short: "List the invites that can still be used",
		Long: `List the invites that can still be used: ID, uses left, when it expires,
when it was made. Tokens are not shown: only "messager admin invite"
shows one, when it makes it.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *admin.Client) error {
				list, err := c.Invites()
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, list)
				}
				if len(list) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "messager: no invites")
					return nil
				}
				rows := [][]string{{"ID", "USES", "EXPIRES", "CREATED"}}
				for _, inv := range list {
					rows = append(rows, []string{inv.ID, strconv.Itoa(inv.Uses), formatTime(inv.Expires), formatTime(inv.Created)})
				}
				return printTable(cmd.OutOrStdout(), rows)
			})
		},
	}
}

func newAdminUninviteCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "uninvite ID",
		Short: "Withdraw an invite",
		Long:  `Withdraw an invite, named by its ID (see "messager admin invites"): its token no longer lets anyone sign up.`,
		Args:  adminArgs(1, "one invite ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := admin.CheckInviteID(id); err != nil {
				return usageError(err)
			}
			return o.call(func(c *admin.Client) error {
				if err := c.Uninvite(id); err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, struct {
						ID        string `json:"id"`
						Withdrawn bool   `json:"withdrawn"`
					}{id, true})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: withdrew invite %s\n", id)
				return nil
			})
		},
	}
}

func newAdminReloadCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Reload the server's files, as SIGHUP does",
		Long: `Reload the users, groups and bans files and the certificate, as SIGHUP
does, and say what the server now has. What fails to reload is kept as it
was; the errors are printed and the exit status is 1.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *admin.Client) error {
				r, err := c.Reload()
				if err != nil {
					return err
				}
				stderr := cmd.ErrOrStderr()
				if o.json {
					if err := printJSON(cmd, r); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(stderr, "messager: reloaded: %s, %s, %s; certificate %s\n",
						countOf(r.Users, "user"), countOf(r.Groups, "group"), countOf(r.Bans, "ban"), client.Escape(r.Fingerprint))
				}
				for _, e := range r.Errors {
					fmt.Fprintf(stderr, "messager: reload: %s\n", client.EscapeLines(e))
				}
				if len(r.Errors) > 0 {
					return withExitCode(1, nil)
				}
				return nil
			})
		},
	}
}

func newAdminGroupsCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "groups",
		Short: "List the groups and how many are in each",
		Long: `List the groups, those in use and those of the groups file: name, sessions
in it, and whether the groups file lists it.`,
		Args: adminNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(func(c *admin.Client) error {
				list, err := c.Groups()
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(cmd, list)
				}
				if len(list) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "messager: no groups")
					return nil
				}
				rows := [][]string{{"NAME", "MEMBERS", "LISTED"}}
				for _, g := range list {
					listed := "no"
					if g.Listed {
						listed = "yes"
					}
					rows = append(rows, []string{g.Name, strconv.Itoa(g.Members), listed})
				}
				return printTable(cmd.OutOrStdout(), rows)
			})
		},
	}
}

// printJSON prints v as one line of JSON on standard output.
func printJSON(cmd *cobra.Command, v any) error {
	return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
}

// printTable prints rows as columns. Every cell is escaped: it comes from
// the server, and may quote what users sent.
func printTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i, cell := range row {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, strings.ReplaceAll(client.Escape(cell), "\t", " "))
		}
		io.WriteString(tw, "\n")
	}
	return tw.Flush()
}

// formatTime shows a time of the server in local time, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// countOf is "1 session", "2 sessions".
func countOf(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// adminArgs accepts exactly n arguments, described by what; anything else
// is a usage error (exit status 2).
func adminArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Errorf("%s takes %s, got %d arguments (see %q)", cmd.CommandPath(), what, len(args), cmd.CommandPath()+" --help"))
		}
		return nil
	}
}

// adminNoArgs refuses arguments, so that a mistyped subcommand ("messager
// admin sesions") is an error rather than help text.
func adminNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError(fmt.Errorf("unknown command %q for %q (see %q)", args[0], cmd.CommandPath(), cmd.CommandPath()+" --help"))
		}
		return usageError(fmt.Errorf("%s takes no arguments (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	if cmd.HasSubCommands() {
		return usageError(fmt.Errorf("%s needs a subcommand: %s (see %q)", cmd.CommandPath(), adminCommands, cmd.CommandPath()+" --help"))
	}
	return nil
}
