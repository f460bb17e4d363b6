package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/users"
)

// defaultUsersFile is where the server and the user commands look for
// users unless told otherwise.
const defaultUsersFile = "user.csv"

func newUserCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, remove, list users and change passwords",
		Long: `Manage the users of a server, kept in a user file (user.csv by default):
one user per line, "name,hash", where the hash is argon2id.

Names are 1 to 32 of A-Z a-z 0-9 _ . - and unique ignoring case. Passwords
are 1 to 128 bytes without spaces. A running server picks up changes when
it reloads the file (SIGHUP).`,
		Args: userNoArgs,
		// Runnable, so that Args is checked: a mistyped subcommand is then
		// an error instead of help text.
		RunE: func(cmd *cobra.Command, args []string) error { return nil },
	}
	cmd.PersistentFlags().StringVar(&file, "users", defaultUsersFile, "user `file`")
	cmd.AddCommand(
		newUserAddCmd(&file),
		newUserDelCmd(&file),
		newUserListCmd(&file),
		newUserPasswdCmd(&file),
	)
	return cmd
}

func newUserAddCmd(file *string) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user",
		Long: `Add a user to the user file, creating the file (mode 0600) if needed.

The password is asked twice on the terminal, without echo, or read as one
line from standard input with --password-stdin.`,
		Example: `  messager user add alice
  printf '%s\n' "$PASSWORD" | messager user add alice --password-stdin`,
		Args: userOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkUserName(name); err != nil {
				return err
			}
			// Fail before asking for a password the user would type in
			// vain; users.Add checks again under the file's lock.
			if t, err := users.Load(*file); err == nil {
				if n := findUserFold(t, name); n == name {
					return fmt.Errorf("user %q already exists", name)
				} else if n != "" {
					return fmt.Errorf("user %q already exists as %q (names are unique ignoring case)", name, n)
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			pw, err := readNewPassword(cmd, name, fromStdin)
			if err != nil {
				return err
			}
			if err := users.Add(*file, name, pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "messager: added user %s to %s\n", name, *file)
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func newUserPasswdCmd(file *string) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password",
		Long: `Set a new password for a user. The password is asked twice on the terminal,
without echo, or read as one line from standard input with --password-stdin.

Sessions already logged in stay logged in.`,
		Args: userOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			// Fail before asking for a password the user would type in vain.
			t, err := users.Load(*file)
			if err != nil {
				return userFileError(*file, err)
			}
			if !t.Has(name) {
				if n := findUserFold(t, name); n != "" {
					return fmt.Errorf("no user %q in %s (did you mean %q?)", name, *file, n)
				}
				return fmt.Errorf("no user %q in %s", name, *file)
			}
			pw, err := readNewPassword(cmd, name, fromStdin)
			if err != nil {
				return err
			}
			if err := users.SetPassword(*file, name, pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "messager: changed the password of %s in %s\n", name, *file)
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func newUserDelCmd(file *string) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a user",
		Long: `Remove a user from the user file. A running server logs the user out when
it reloads the file (SIGHUP).`,
		Args: userOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := users.Delete(*file, args[0]); err != nil {
				return userFileError(*file, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "messager: removed user %s from %s\n", args[0], *file)
			return nil
		},
	}
}

func newUserListCmd(file *string) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users, one name per line",
		Args:    userNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := users.Load(*file)
			if err != nil {
				return userFileError(*file, err)
			}
			var b strings.Builder
			for _, n := range t.Names() {
				b.WriteString(n)
				b.WriteByte('\n')
			}
			if _, err := io.WriteString(cmd.OutOrStdout(), b.String()); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if t.Len() == 0 {
				fmt.Fprintf(stderr, "messager: no users in %s; add one with \"messager user add NAME\"\n", *file)
			}
			if p := t.PlaintextUsers(); len(p) > 0 {
				fmt.Fprintf(stderr, "messager: warning: plain-text passwords for %s; hash them with \"messager user passwd NAME\"\n", strings.Join(p, ", "))
			}
			return nil
		},
	}
}

// findUserFold returns the user whose name equals name ignoring case, or
// "" if there is none.
func findUserFold(t *users.Table, name string) string {
	if t.Has(name) {
		return name
	}
	for _, n := range t.Names() {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

// userFileError adds a hint to the error of a missing user file.
func userFileError(file string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist; add a user with \"messager user add NAME\" (or give another file with --users)", file)
	}
	return err
}

func checkUserName(name string) error {
	if !protocol.ValidNameString(name) {
		return usageError(fmt.Errorf("invalid user name %q: want 1 to %d of A-Z a-z 0-9 _ . -", name, protocol.MaxNameLen))
	}
	return nil
}

// userOneName accepts exactly one NAME argument; anything else is a usage
// error (exit status 2).
func userOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError(fmt.Errorf("%s takes one user name, got %d arguments (see %q)", cmd.CommandPath(), len(args), cmd.CommandPath()+" --help"))
	}
	return nil
}

// userNoArgs refuses arguments, so that a mistyped subcommand ("messager
// user ad alice") is an error rather than help text.
func userNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError(fmt.Errorf("unknown command %q for %q (see %q)", args[0], cmd.CommandPath(), cmd.CommandPath()+" --help"))
		}
		return usageError(fmt.Errorf("%s takes no arguments (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	if cmd.HasSubCommands() {
		return usageError(fmt.Errorf("%s needs a subcommand: add, del, list or passwd (see %q)", cmd.CommandPath(), cmd.CommandPath()+" --help"))
	}
	return nil
}

// maxPasswordInput bounds what --password-stdin reads: a line longer than
// this is not a password anyway.
const maxPasswordInput = 4096

// readNewPassword reads the new password of name: one line of standard
// input with fromStdin, else twice from the terminal without echo.
func readNewPassword(cmd *cobra.Command, name string, fromStdin bool) ([]byte, error) {
	var pw []byte
	var err error
	if fromStdin {
		pw, err = readPasswordLine(cmd.InOrStdin())
	} else {
		pw, err = promptNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), name)
	}
	if err != nil {
		return nil, err
	}
	if !protocol.ValidPassword(pw) {
		return nil, fmt.Errorf("invalid password: want 1 to %d bytes without spaces or control characters", protocol.MaxPasswordLen)
	}
	return pw, nil
}

// readPasswordLine reads exactly one line, a byte at a time so that
// nothing after it is consumed, and removes its "\n" or "\r\n".
func readPasswordLine(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) >= maxPasswordInput {
				return nil, fmt.Errorf("password line on standard input is longer than %d bytes", maxPasswordInput)
			}
			line = append(line, b[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read password from standard input: %w", err)
		}
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, errors.New("no password on standard input (--password-stdin reads it from the first line)")
	}
	return line, nil
}

// promptNewPassword asks for the password twice on the terminal that is
// standard input, prompting on stderr, and checks both answers agree.
func promptNewPassword(stdin io.Reader, stderr io.Writer, name string) ([]byte, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("standard input is not a terminal: use --password-stdin to read the password from it")
	}
	fd := int(f.Fd())
	pw, err := readHidden(fd, stderr, fmt.Sprintf("new password for %s: ", name))
	if err != nil {
		return nil, err
	}
	if !protocol.ValidPassword(pw) {
		return nil, fmt.Errorf("invalid password: want 1 to %d bytes without spaces or control characters", protocol.MaxPasswordLen)
	}
	again, err := readHidden(fd, stderr, "repeat password: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("passwords do not match")
	}
	return pw, nil
}

// readHidden prompts and reads one line without echo. If the command is
// interrupted meanwhile, echo is turned back on before it exits, which
// term.ReadPassword alone would not do.
func readHidden(fd int, stderr io.Writer, prompt string) ([]byte, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	go func() {
		select {
		case <-sig:
			term.Restore(fd, state)
			fmt.Fprintln(stderr)
			os.Exit(130)
		case <-done:
		}
	}()
	fmt.Fprint(stderr, prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr) // the user's Enter was not echoed
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	return pw, nil
}
