package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/messager/messager/internal/bench"
)

type benchOptions struct {
	cfg          bench.Config
	fingerprintB string
	asJSON       bool
	idle         bool
	insecure     bool
	protocol     int
	writeUsers   string
	cpuProfile   string
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a server: throughput, latency and sessions",
		Long: `Measure a messager server with bench users.

Pairs of bench users log in; sender i sends only to receiver i. With
--window (the default) each sender keeps at most that many messages in
flight, for the highest throughput; with --rate all senders together send
that many messages a second, for latency at a fixed load. --sessions N
--idle instead holds N idle sessions, reports the server's memory per
session, and sends probe messages to random ones.

--transport ws runs the same loads over the web client's WebSocket (the
same port, ALPN http/1.1, /ws, one text frame a line) instead of the line
protocol over TLS.

--server-b HOST:PORT names a second node of the --server's cluster: the
receivers (and group members) log in there, the senders to --server, so
every message crosses from one node to the other. --server-pid-b adds
that node's CPU and memory to the --server-pid's. --fingerprint pins both
nodes' certificate unless --fingerprint-b pins the second's; --ca and
--insecure cover both.

--group-size N fans messages out instead: N members and --senders
senders (members too) join one group, each sender keeps --window messages
in flight, a message is done when its last recipient has it, and the
report counts deliveries (messages times recipients), their latency at
every recipient, losses and order at each one, and the server's CPU per
delivery.

--presence --sessions N has N sessions watch --watch names each among
--churn-users users, of which --churn a second log in and as many log
out; it reports the PRESENCE lines and their delay, whether every watcher
is right within 1.5 s, the server's memory per watch entry, and the 1:1
relay rate of --pairs pairs without the churn and with it.

Without --server the bench starts "messager serve" itself on a free
loopback port, with a temporary user file whose bench users have cheap
password hashes, and reports the server's CPU time per delivered message
and its memory. For a server of your own, write its bench users with
--write-users FILE, start it with --users FILE, and pass --server and
--server-pid.

The exit status is 1 when messages were lost, arrived out of order, or
sessions failed, when fewer idle sessions opened than asked for, and when
a watcher was still wrong 1.5 s after the churn stopped.`,
		Example: `  messager bench --pairs 100 --size 100 --window 64 --duration 10s
  messager bench --pairs 100 --rate 10000 --duration 10s --json
  messager bench --sessions 19000 --idle --hold 40s
  messager bench --group-size 100 --window 64 --duration 10s
  messager bench --presence --sessions 10000 --watch 100 --churn 500
  messager bench --write-users bench-users.csv --pairs 100 --sessions 19000
  messager bench --server 127.0.0.1:18443 --server-pid 4242 --insecure --pairs 100
  messager bench --transport ws --pairs 100
  messager bench --server 127.0.0.1:18443 --server-pid 4242 --server-b 127.0.0.1:18444 --server-pid-b 4343 --ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, &o)
		},
	}
	f := cmd.Flags()
	c := &o.cfg
	f.StringVar(&c.Server, "server", "", "host:port of a running server (default: start one)")
	f.IntVar(&c.ServerPID, "server-pid", 0, "process id of the --server, for its CPU time and memory")
	f.StringVar(&c.Transport, "transport", bench.TransportTLS, "how sessions reach the server: tls (the line protocol) or ws (the web client's WebSocket on the same port)")
	f.StringVar(&c.ServerB, "server-b", "", "host:port of a second node of the --server's cluster: receivers and group members log in there")
	f.IntVar(&c.ServerPIDB, "server-pid-b", 0, "process id of the --server-b, whose CPU time and memory count with the --server's")
	f.StringVar(&o.fingerprintB, "fingerprint-b", "", "pin the --server-b's certificate: sha256:<hex> (default: --fingerprint; --ca and --insecure cover both)")
	f.IntVar(&c.Pairs, "pairs", bench.DefaultPairs, "sender and receiver pairs")
	f.IntVar(&c.Size, "size", bench.DefaultSize, "bytes of text per message")
	f.DurationVar(&c.Duration, "duration", bench.DefaultDuration, "measured time")
	f.DurationVar(&c.Warmup, "warmup", bench.DefaultWarmup, "time sending before measuring")
	f.DurationVar(&c.Drain, "drain", bench.DefaultDrain, "longest wait for messages in flight at the end")
	f.IntVar(&c.Window, "window", bench.DefaultWindow, "most messages in flight per sender (closed loop)")
	f.Float64Var(&c.Rate, "rate", 0, "messages per second over all senders (open loop)")
	f.IntVar(&c.Sessions, "sessions", 0, "idle sessions to open (with --idle)")
	f.BoolVar(&o.idle, "idle", false, "hold --sessions idle sessions instead of sending a load")
	f.DurationVar(&c.Hold, "hold", bench.DefaultHold, "how long to hold idle sessions")
	f.IntVar(&o.protocol, "protocol", 1, "protocol version of the 1:1 load's sessions: 1, or 2 (they say HELLO 2 first)")
	f.IntVar(&c.GroupSize, "group-size", 0, "fan out to a group of this many members instead of pairs")
	f.IntVar(&c.Senders, "senders", bench.DefaultSenders, "senders to the group (with --group-size)")
	f.BoolVar(&c.Presence, "presence", false, "watch --sessions sessions' presence under a churn of logins and logouts")
	f.IntVar(&c.Watch, "watch", bench.DefaultWatch, "names each session watches (with --presence)")
	f.IntVar(&c.Churn, "churn", bench.DefaultChurn, "logins, and as many logouts, a second (with --presence)")
	f.IntVar(&c.ChurnUsers, "churn-users", 0, "users that log in and out, half online at a time (with --presence; default 10 × --churn)")
	f.IntVar(&c.Probes, "probes", bench.DefaultProbes, "messages sent to random idle sessions")
	f.StringVar(&c.UserPrefix, "user-prefix", bench.DefaultUserPrefix, "start of every bench user name")
	f.StringVar(&c.Password, "password", bench.DefaultPassword, "password of the bench users")
	f.StringVar(&o.writeUsers, "write-users", "", "write a user file for the bench users to this new file and exit")
	f.BoolVar(&o.insecure, "insecure", false, "do not check the --server's certificate")
	f.StringVar(&c.TLS.CAFile, "ca", "", "PEM file of certificates to trust for the --server")
	f.StringVar(&c.TLS.Fingerprint, "fingerprint", "", "pin the --server's certificate: sha256:<hex>")
	f.StringArrayVar(&c.ServeArgs, "serve-arg", nil, "extra flag for the server the bench starts (repeatable)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write the bench's own CPU profile to this file")
	return cmd
}

func runBench(cmd *cobra.Command, o *benchOptions) error {
	f := cmd.Flags()
	c := &o.cfg
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := o.modeFlags(cmd); err != nil {
		return err
	}
	if o.writeUsers != "" {
		n, err := bench.WriteUsers(o.writeUsers, *c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d bench users with cheap password hashes to %s\n", n, o.writeUsers)
		if stderrIsTerminal(stderr) {
			fmt.Fprintf(stderr, "start a server with them: messager serve --users %s (pinned: taskset -c 0 messager serve ...)\n", o.writeUsers)
		}
		return nil
	}
	if f.Changed("rate") && !f.Changed("window") {
		c.Window = 0
	}
	switch {
	case o.protocol != 1 && o.protocol != 2:
		return usageError(fmt.Errorf("--protocol must be 1 or 2, not %d", o.protocol))
	case o.protocol == 2 && (o.idle || c.Presence || c.GroupSize > 0):
		return usageError(errors.New("--protocol is for the 1:1 load; the group and presence modes speak version 2 anyway"))
	case o.idle && c.Presence:
		return usageError(errors.New("--idle and --presence exclude each other"))
	case o.idle && c.Sessions == 0:
		return usageError(errors.New("--sessions N and --idle go together"))
	case c.Sessions > 0 && !o.idle && !c.Presence:
		return usageError(errors.New("--sessions N goes with --idle or --presence"))
	case c.Server == "" && (o.insecure || c.TLS.CAFile != "" || c.TLS.Fingerprint != ""):
		return usageError(errors.New("--insecure, --ca and --fingerprint are for a --server; a server the bench starts is pinned by fingerprint"))
	case o.insecure && (c.TLS.CAFile != "" || c.TLS.Fingerprint != ""):
		return usageError(errors.New("--insecure excludes --ca and --fingerprint"))
	case c.Server != "" && len(c.ServeArgs) > 0:
		return usageError(errors.New("--serve-arg is for a server the bench starts, not a --server"))
	case c.Transport != bench.TransportTLS && c.Transport != bench.TransportWS:
		return usageError(fmt.Errorf("--transport must be %s or %s, not %q", bench.TransportTLS, bench.TransportWS, c.Transport))
	case o.fingerprintB != "" && c.ServerB == "":
		return usageError(errors.New("--fingerprint-b is for a --server-b"))
	case o.fingerprintB != "" && (o.insecure || c.TLS.CAFile != ""):
		return usageError(errors.New("--fingerprint-b excludes --insecure and --ca, which cover both servers"))
	}
	if o.fingerprintB != "" {
		c.TLSB = bench.TLS{Fingerprint: o.fingerprintB}
	}
	c.Version2 = o.protocol == 2
	if err := c.Check(); err != nil {
		return usageError(err)
	}
	if c.Server != "" && !o.insecure && c.TLS.CAFile == "" && c.TLS.Fingerprint == "" {
		fmt.Fprintln(stderr, "messager: bench: the server's certificate is not checked (pass --fingerprint, --ca or --insecure)")
	}
	if stderrIsTerminal(stderr) {
		c.Progress = stderr
	}
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			_ = pf.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); _ = pf.Close() }()
	}

	ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, *c)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := writeReport(stdout, rep, o.asJSON); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return withExitCode(130, errors.New("bench: interrupted"))
	}
	if rep.Lost > 0 || rep.OutOfOrder > 0 || rep.Errors > 0 {
		return withExitCode(1, fmt.Errorf("bench: %d lost, %d out of order, %d errors", rep.Lost, rep.OutOfOrder, rep.Errors))
	}
	if p := rep.Presence; p != nil && p.FinalCorrect < p.Sessions {
		return withExitCode(1, fmt.Errorf("bench: %d of %d watching sessions still wrong after the churn", p.Sessions-p.FinalCorrect, p.Sessions))
	}
	if ir := rep.Idle; ir != nil {
		if ir.Stopped != "" {
			return withExitCode(1, fmt.Errorf("bench: %s", ir.Stopped))
		}
		if ir.ProbesRelayed+ir.ProbesCNT < ir.ProbesSent {
			return withExitCode(1, fmt.Errorf("bench: %d of %d probe messages not relayed", ir.ProbesSent-ir.ProbesRelayed-ir.ProbesCNT, ir.ProbesSent))
		}
	}
	return nil
}

// modeFlags clears the flags of the modes the run is not in, whose
// defaults are not zero, and refuses those given for another mode.
func (o *benchOptions) modeFlags(cmd *cobra.Command) error {
	f := cmd.Flags()
	c := &o.cfg
	if c.GroupSize == 0 {
		if f.Changed("senders") {
			return usageError(errors.New("--senders is for a group run (--group-size N)"))
		}
		c.Senders = 0
	} else if f.Changed("pairs") && o.writeUsers == "" {
		return usageError(errors.New("--pairs is for pairs and presence runs; a group run has --group-size and --senders"))
	}
	if c.Presence {
		// Zero would mean the default to bench.Config.
		switch {
		case c.Watch < 1:
			return usageError(errors.New("--watch must be at least 1"))
		case c.Churn < 1:
			return usageError(errors.New("--churn must be at least 1 login and 1 logout a second"))
		case c.ChurnUsers < 0:
			return usageError(errors.New("--churn-users must not be negative"))
		}
	} else {
		for _, name := range []string{"watch", "churn", "churn-users"} {
			if f.Changed(name) && o.writeUsers == "" {
				return usageError(fmt.Errorf("--%s is for a presence run (--presence)", name))
			}
		}
		c.Watch, c.Churn = 0, 0
		if o.writeUsers == "" {
			c.ChurnUsers = 0
		}
	}
	return nil
}

// stderrIsTerminal reports whether w is a terminal: the live progress line and
// hints are for people watching.
func stderrIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func writeReport(w io.Writer, rep *bench.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}
