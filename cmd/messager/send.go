package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/client"
)

// sendExitNotOnline is the exit status of send when the target was not
// online, so that scripts can tell it from other failures (status 1).
const sendExitNotOnline = 2

func newSendCmd() *cobra.Command {
	var f connectFlags
	var to string
	cmd := &cobra.Command{
		Use:   "send --to NAME|#GROUP TEXT...",
		Short: "Send one message and exit",
		Long: `Send logs in, sends TEXT (the arguments joined by spaces) to --to, and
ends the session once the server has handled it.

--to is a user, or a group ("#team"): send joins the group, sends the
message to its members and ends the session, which leaves the group.
Groups need a server that offers them (protocol version 2).

Exit status: 0 when the message was relayed, 2 when the target was not
online, or the server did not let the message into the group (not allowed
to join it, no such group, or no groups on this server), 1 on any other
error.

The flags and environment variables for the server, the user and trust are
those of "messager chat"; the password comes from MESSAGER_PASSWORD or is
asked for on a terminal. With several servers (--server a:18443,b:18443)
the message goes through the first that takes the login; the ones passed
over are told on stderr.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError(errors.New("--to is required"))
			}
			if err := checkTarget(to); err != nil {
				return usageError(fmt.Errorf("--to: %w", err))
			}
			text := strings.Join(args, " ")
			s, err := f.setup(cmd)
			if err != nil {
				return err
			}
			// Refuse what cannot be sent before connecting at all.
			if err := client.CheckText(to, s.user, text); err != nil {
				return fmt.Errorf("message not sent: %w", err)
			}
			ctx := cmd.Context()
			conn, err := s.login(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			refused, err := sendOne(ctx, conn, to, text)
			if err != nil {
				var off *client.NotOfferedError
				if errors.As(err, &off) {
					goodbye(ctx, conn)
					return withExitCode(sendExitNotOnline, err)
				}
				return err
			}
			if refused != "" {
				return withExitCode(sendExitNotOnline, errors.New(refused))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "send the message to `NAME`, or to the members of a #group")
	return cmd
}

// sendOne sends text to a user or a group, then END, and reads until the
// server's END. The server handles lines in order, so a CNT or a FAIL
// before END <end accepted> means the message was not relayed, and
// neither means it was. A group is joined first. It returns why the
// message was not relayed, escaped, or "" when it was.
func sendOne(ctx context.Context, conn *client.Conn, to, text string) (refused string, err error) {
	if strings.HasPrefix(to, "#") {
		if err := conn.Join(to); err != nil {
			return "", err
		}
	}
	if err := conn.Queue(to, text); err != nil {
		return "", fmt.Errorf("message not sent: %w", err)
	}
	if err := conn.SendEnd(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, client.DefaultWriteTimeout+client.DefaultLoginTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		ev, err := conn.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return "", errors.New("no answer from the server")
			}
			return "", fmt.Errorf("before the server confirmed the message: %w", err)
		}
		switch ev := ev.(type) {
		case client.NotOnline:
			if refused == "" {
				refused = client.Escape(to) + " is not online"
			}
		case client.Fail:
			// A refused JOIN is followed by a refused MSG: the first
			// says why.
			if refused == "" {
				refused = ev.Text()
			}
		case client.End:
			if err := ev.Err(); err != nil {
				return "", err
			}
			return refused, nil
		}
	}
}

// goodbye ends a session that has nothing more to do, politely but
// without waiting long for the server's answer.
func goodbye(ctx context.Context, conn *client.Conn) {
	ctx, cancel := context.WithTimeout(ctx, client.DefaultWriteTimeout)
	defer cancel()
	_ = conn.End(ctx)
}
