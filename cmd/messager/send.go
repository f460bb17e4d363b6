package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
)

// sendExitNotOnline is the exit status of send when the target was not
// online, so that scripts can tell it from other failures (status 1).
const sendExitNotOnline = 2

func newSendCmd() *cobra.Command {
	var f connectFlags
	var to string
	cmd := &cobra.Command{
		Use:   "send --to NAME TEXT...",
		Short: "Send one message and exit",
		Long: `Send logs in, sends TEXT (the arguments joined by spaces) to --to, and
ends the session once the server has handled it.

Exit status: 0 when the message was relayed, 2 when the target was not
online, 1 on any other error.

The flags and environment variables for the server, the user and trust are
those of "messager chat"; the password comes from MESSAGER_PASSWORD or is
asked for on a terminal.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError(errors.New("--to is required"))
			}
			if !protocol.ValidNameString(to) {
				return usageError(fmt.Errorf("--to: %w", &client.NameError{Name: to}))
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
			relayed, err := sendOne(ctx, conn, to, text)
			if err != nil {
				return err
			}
			if !relayed {
				return withExitCode(sendExitNotOnline, fmt.Errorf("%s is not online", client.Escape(to)))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "send the message to `NAME`")
	return cmd
}

// sendOne sends text, then END, and reads until the server's END. The
// server handles lines in order, so a CNT before END <end accepted> means
// the message was not relayed, and no CNT means it was.
func sendOne(ctx context.Context, conn *client.Conn, to, text string) (relayed bool, err error) {
	if err := conn.Queue(to, text); err != nil {
		return false, fmt.Errorf("message not sent: %w", err)
	}
	if err := conn.SendEnd(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, client.DefaultWriteTimeout+client.DefaultLoginTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	relayed = true
	for {
		ev, err := conn.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return false, errors.New("no answer from the server")
			}
			return false, fmt.Errorf("before the server confirmed the message: %w", err)
		}
		switch ev := ev.(type) {
		case client.NotOnline:
			relayed = false
		case client.End:
			if err := ev.Err(); err != nil {
				return false, err
			}
			return relayed, nil
		}
	}
}
