package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/chat"
	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
)

// whoExitRefused is the exit status of who when the server does not offer
// presence or refuses the query; a usage error has it too.
const whoExitRefused = 2

func newWhoCmd() *cobra.Command {
	var f connectFlags
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "who [MASK]",
		Short: "Print who is online, one name per line",
		Long: `Who logs in, asks the server who is online and prints the names, sorted,
one per line on stdout, for scripts.

MASK is * (everyone, the default), a name, the start of a name followed by
* ("al*"), or a group ("#team": its members). The server lists at most
100 names; when more match, who says so on stderr: narrow the mask to see
the others. With --json it prints one JSON object instead:
{"mask":"*","count":3,"names":["alice","bob","carol"]}.

Who needs a server that offers presence (protocol version 2). It logs in
as the user, so a session of the same user elsewhere is replaced, as with
"messager send".

Exit status: 0 when the server answered, 1 when the connection or the
login failed, 2 for a usage error, or when the server does not offer
presence or refused the query.

The flags and environment variables for the server, the user and trust are
those of "messager chat". With several servers (--server a:18443,b:18443)
the first that takes the login answers; the ones passed over are told on
stderr.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mask := "*"
			if len(args) == 1 {
				mask = args[0]
			}
			if !protocol.ValidMask([]byte(mask)) {
				return usageError(&client.MaskError{Mask: mask})
			}
			s, err := f.setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			conn, err := s.login(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			w, err := askWho(ctx, conn, mask)
			if err != nil {
				var off *client.NotOfferedError
				var refused whoRefused
				if errors.As(err, &off) || errors.As(err, &refused) {
					return withExitCode(whoExitRefused, err)
				}
				return err
			}
			if jsonOut {
				return printWhoJSON(cmd.OutOrStdout(), w)
			}
			var b strings.Builder
			for _, name := range w.Names {
				b.WriteString(client.Escape(name))
				b.WriteByte('\n')
			}
			if _, err := io.WriteString(cmd.OutOrStdout(), b.String()); err != nil {
				return err
			}
			if more := w.More(); more > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "messager: %d users match %s; the server lists %d, the first in order: narrow the mask to see the others\n",
					w.Count, client.Escape(w.Mask), len(w.Names))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, `print {"mask":...,"count":...,"names":[...]} instead of a name per line`)
	return cmd
}

// whoRefused is the server's FAIL in answer to WHO.
type whoRefused struct{ fail client.Fail }

func (e whoRefused) Error() string { return e.fail.Text() }

// askWho sends WHO, then END, and reads until the server's END: the
// answer is the WHO before it.
func askWho(ctx context.Context, conn *client.Conn, mask string) (client.Who, error) {
	if err := conn.Who(mask); err != nil {
		if !errors.Is(err, client.ErrClosed) {
			goodbye(ctx, conn)
		}
		return client.Who{}, err
	}
	if err := conn.SendEnd(); err != nil {
		return client.Who{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, client.DefaultWriteTimeout+client.DefaultLoginTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var answer *client.Who
	var refused error
	for {
		ev, err := conn.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return client.Who{}, errors.New("no answer from the server")
			}
			return client.Who{}, fmt.Errorf("before the server answered: %w", err)
		}
		switch ev := ev.(type) {
		case client.Who:
			if answer == nil {
				answer = &ev
			}
		case client.Fail:
			if ev.Verb == protocol.KindWho.String() && refused == nil {
				refused = whoRefused{ev}
			}
		case client.End:
			if err := ev.Err(); err != nil {
				return client.Who{}, err
			}
			switch {
			case refused != nil:
				return client.Who{}, refused
			case answer == nil:
				return client.Who{}, errors.New("the server ended the session without answering")
			}
			return *answer, nil
		}
	}
}

// printWhoJSON prints the answer as one JSON object, with the server's
// text escaped so that it is safe on a terminal.
func printWhoJSON(w io.Writer, who client.Who) error {
	b := []byte(`{"mask":`)
	b = chat.AppendJSONString(b, who.Mask)
	b = fmt.Appendf(b, `,"count":%d,"names":[`, who.Count)
	for i, name := range who.Names {
		if i > 0 {
			b = append(b, ',')
		}
		b = chat.AppendJSONString(b, name)
	}
	b = append(b, "]}\n"...)
	_, err := w.Write(b)
	return err
}
