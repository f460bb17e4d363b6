// Command messager is the messager server, terminal client, load generator
// and admin tools in one binary.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status. Errors
// are printed once, here, prefixed with the program name.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ec *exitError
	if errors.As(err, &ec) {
		if ec.err != nil {
			printError(stderr, ec.err)
		}
		return ec.code
	}
	printError(stderr, err)
	return 1
}

// printError writes an error to stderr. Errors may quote what a server
// sent (an END reason, a name in its certificate), so every line is
// escaped: nothing from the network reaches the terminal raw.
func printError(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "messager: %s\n", client.EscapeLines(err.Error()))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "messager",
		Short: "A small, fast, secure messaging server and client",
		Long: `messager relays text messages between users logged in to one server over TLS.

Start a server with "messager serve", add users with "messager user add",
and chat with "messager chat".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(fmt.Errorf("%w (see %q)", err, c.CommandPath()+" --help"))
	})
	root.AddCommand(
		newServeCmd(),
		newUserCmd(),
		newGroupCmd(),
		newCertCmd(),
		newChatCmd(),
		newSendCmd(),
		newSignupCmd(),
		newWhoCmd(),
		newBenchCmd(),
		newAdminCmd(),
		newClusterCmd(),
	)
	// "messager nonsense" is a usage error; "messager" alone shows help.
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	argsAreUsage(root)
	return root
}

// argsAreUsage makes a wrong number or kind of arguments, found by a
// command's Args check, a usage error (exit status 2) like a bad flag.
func argsAreUsage(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				if !strings.Contains(err.Error(), "--help") {
					err = fmt.Errorf("%w (see %q)", err, cmd.CommandPath()+" --help")
				}
				return usageError(err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		argsAreUsage(sub)
	}
}

// exitError carries an exit status other than 1 out of a command. A nil
// err means the command already told the user what happened.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withExitCode makes a command exit with code, printing err if not nil.
func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is a bad flag or argument: exit status 2, as is the custom.
func usageError(err error) error { return &exitError{code: 2, err: err} }
