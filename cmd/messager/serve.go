package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/admin"
	"github.com/messager/messager/internal/bans"
	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/fileperm"
	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/invites"
	"github.com/messager/messager/internal/listen"
	"github.com/messager/messager/internal/metrics"
	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
	"github.com/messager/messager/internal/web"
)

type serveOptions struct {
	listen         string
	usersFile      string
	certFile       string
	keyFile        string
	checkInterval  time.Duration
	writeTimeout   time.Duration
	loginTimeout   time.Duration
	logFormat      string
	logLevel       string
	maxQueue       int
	maxSessions    int
	maxUnauth      int
	maxPending     int
	presence       bool
	web            bool
	adminSocket    string
	signup         string
	webOrigins     []string
	groupsMode     string
	groupsFile     string
	maxWatch       int
	maxGroups      int
	maxMembers     int
	loginParallel  int
	metrics        string
	shutdownPeriod time.Duration
	noWatch        bool
	cpuProfile     string
	pprof          bool
	cluster        clusterOptions
}

func newServeCmd() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the messager server",
		Long: `Run the messager server: TLS on --listen, users from --users.

Missing files are created: an empty user file (mode 0600), and a
self-signed certificate and key when both are missing. SIGHUP reloads the
user file and the certificate; the user file is also reloaded when it
changes on disk. SIGINT and SIGTERM shut down gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", 18443), "address to listen on")
	f.StringVar(&o.usersFile, "users", "user.csv", "user file (created empty if missing)")
	f.StringVar(&o.certFile, "cert", "cert.pem", "TLS certificate (PEM)")
	f.StringVar(&o.keyFile, "key", "key.pem", "TLS private key (PEM)")
	f.DurationVar(&o.checkInterval, "check-interval", server.DefaultCheckInterval, "how often each session gets a CHECK")
	f.DurationVar(&o.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "longest a write to a client may take")
	f.DurationVar(&o.loginTimeout, "login-timeout", server.DefaultLoginTimeout, "time allowed for the TLS handshake and AUTH")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.IntVar(&o.maxQueue, "max-queue", server.DefaultMaxQueue, "bytes queued for one session before it is closed as too slow")
	f.IntVar(&o.maxSessions, "max-sessions", server.DefaultMaxSessions, "most users online at once")
	f.IntVar(&o.maxUnauth, "max-unauth-per-addr", server.DefaultMaxUnauthPerAddr, "most connections one address may have open before logging in")
	f.IntVar(&o.maxPending, "max-pending", 0, "most connections from all addresses together not yet logged in (0: an eighth of the open-file limit)")
	f.StringVar(&o.adminSocket, "admin-socket", "", "the operators' socket for 'messager admin' (default messager.sock beside the user file; \"off\" for none)")
	f.StringVar(&o.signup, "signup", "off", "sign-up: off, invite (with an invite from 'messager admin invite') or open (anyone; mind the risks)")
	f.BoolVar(&o.web, "web", true, "serve the web client on the same port (to browsers: TLS connections that ask for HTTP/1.1)")
	f.StringSliceVar(&o.webOrigins, "web-origin", nil, "other origins (host patterns, e.g. chat.example.org) whose pages may use the web client's WebSocket")
	f.BoolVar(&o.presence, "presence", true, "offer presence: WHO, WATCH and PRESENCE (protocol version 2)")
	f.StringVar(&o.groupsMode, "groups", "open", "groups: open (anyone makes a group by joining it), listed (only the groups file's), or off")
	f.StringVar(&o.groupsFile, "groups-file", "", "listed groups (default groups.csv beside the user file)")
	f.IntVar(&o.maxWatch, "max-watch", server.DefaultMaxWatch, "most names one session may watch")
	f.IntVar(&o.maxGroups, "max-groups", server.DefaultMaxGroups, "most groups one user may be in")
	f.IntVar(&o.maxMembers, "max-members", server.DefaultMaxMembers, "most members one group may have")
	f.IntVar(&o.loginParallel, "login-parallel", 0, "password checks run at once (0: one per CPU)")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9464 (off when empty)")
	f.DurationVar(&o.shutdownPeriod, "shutdown-timeout", 5*time.Second, "longest a graceful shutdown may take")
	f.BoolVar(&o.noWatch, "no-watch", false, "do not reload the user file when it changes on disk (SIGHUP still does)")
	f.BoolVar(&o.pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on the --metrics address")
	o.cluster.register(f)
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError(fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level))
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError(fmt.Errorf("bad --log-format %q: want text or json", format))
}

// check refuses flag values the server cannot run with, rather than
// replacing them with defaults behind the operator's back.
func (o *serveOptions) check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--check-interval", o.checkInterval}, {"--write-timeout", o.writeTimeout}, {"--login-timeout", o.loginTimeout}, {"--shutdown-timeout", o.shutdownPeriod}} {
		if d.v <= 0 {
			return usageError(fmt.Errorf("%s must be positive, not %v", d.name, d.v))
		}
	}
	switch {
	case o.maxQueue < server.MinMaxQueue:
		return usageError(fmt.Errorf("--max-queue must be at least %d bytes (what one read of a sender can queue for one receiver), not %d", server.MinMaxQueue, o.maxQueue))
	case o.maxPending < 0:
		return usageError(fmt.Errorf("--max-pending must be 0 (derived from the open-file limit) or more, not %d", o.maxPending))
	case o.maxSessions < 1:
		return usageError(fmt.Errorf("--max-sessions must be at least 1, not %d", o.maxSessions))
	case o.maxUnauth < 1:
		return usageError(fmt.Errorf("--max-unauth-per-addr must be at least 1, not %d", o.maxUnauth))
	case o.loginParallel < 0:
		return usageError(fmt.Errorf("--login-parallel must be 0 (one per CPU) or more, not %d", o.loginParallel))
	case o.maxWatch < 1 || o.maxWatch > 100_000:
		return usageError(fmt.Errorf("--max-watch must be from 1 to 100000, not %d", o.maxWatch))
	case o.maxGroups < 1 || o.maxGroups > 10_000:
		return usageError(fmt.Errorf("--max-groups must be from 1 to 10000, not %d", o.maxGroups))
	case o.maxMembers < 2 || o.maxMembers > 1_000_000:
		return usageError(fmt.Errorf("--max-members must be from 2 to 1000000, not %d", o.maxMembers))
	case o.pprof && o.metrics == "":
		return usageError(errors.New("--pprof needs --metrics ADDR to serve on"))
	}
	return o.cluster.check()
}

// warnPermissions warns about a secret file that others can read or
// write, or whose folder others can write.
func warnPermissions(log *slog.Logger, path string) {
	for _, problem := range fileperm.Check(path) {
		log.Warn("loose permissions: " + problem)
	}
}

// groupMode parses --groups.
func (o serveOptions) groupMode() (server.GroupMode, error) {
	switch o.groupsMode {
	case "open":
		return server.GroupsOpen, nil
	case "listed":
		return server.GroupsListed, nil
	case "off":
		return server.GroupsOff, nil
	}
	return 0, usageError(fmt.Errorf("bad --groups %q: want open, listed or off", o.groupsMode))
}

// signupMode parses --signup.
func (o serveOptions) signupMode() (server.SignupMode, error) {
	switch o.signup {
	case "off":
		return server.SignupOff, nil
	case "invite":
		return server.SignupInvite, nil
	case "open":
		return server.SignupOpen, nil
	}
	return 0, usageError(fmt.Errorf("bad --signup %q: want off, invite or open", o.signup))
}

func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	if err := (&o).check(); err != nil {
		return err
	}
	mode, err := o.groupMode()
	if err != nil {
		return err
	}
	signup, err := o.signupMode()
	if err != nil {
		return err
	}
	if o.adminSocket == "" {
		o.adminSocket = admin.DefaultSocketPath(o.usersFile)
	}
	if o.groupsFile == "" {
		o.groupsFile = groups.DefaultPath(o.usersFile)
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Sessions are many small, long-lived objects and every login
		// leaves garbage behind; a lower target keeps the heap close to
		// what is live. The relay path allocates nothing, so collections
		// stay rare under load. GOGC in the environment still wins.
		debug.SetGCPercent(50)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	created, err := users.EnsureFile(o.usersFile)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if created {
		log.Info("created empty user file", "path", o.usersFile)
	}
	table, err := users.Load(o.usersFile)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	if plain := table.PlaintextUsers(); len(plain) > 0 {
		log.Warn("plain passwords in user file; set them again with 'messager user passwd'", "users", plain)
	}
	warnPermissions(log, o.usersFile)
	listed, err := groups.Load(o.groupsFile)
	if err != nil {
		return fmt.Errorf("load groups: %w", err)
	}
	certSrc, generated, err := certs.NewSource(o.certFile, o.keyFile)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	warnPermissions(log, o.keyFile)
	if generated {
		log.Info("generated self-signed certificate", "cert", o.certFile, "key", o.keyFile, "fingerprint", certSrc.Fingerprint())
	}
	var cn *clusterNode
	var clusterHooks server.Cluster
	if o.cluster.enabled() {
		if cn, err = startCluster(o.cluster, o.listen, log); err != nil {
			return err
		}
		defer cn.stop()
		clusterHooks = cn.node
	}
	srv, err := server.New(server.Config{
		Users:            table,
		Checker:          users.NewChecker(o.loginParallel),
		CheckInterval:    o.checkInterval,
		WriteTimeout:     o.writeTimeout,
		LoginTimeout:     o.loginTimeout,
		MaxQueue:         o.maxQueue,
		MaxSessions:      o.maxSessions,
		MaxUnauthPerAddr: o.maxUnauth,
		MaxPending:       o.maxPending,
		NoPresence:       !o.presence,
		MaxWatch:         o.maxWatch,
		Groups:           mode,
		GroupList:        listed,
		MaxGroups:        o.maxGroups,
		MaxMembers:       o.maxMembers,
		Signup:           signup,
		Cluster:          clusterHooks,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	if cn != nil {
		if err := cn.node.Attach(srv); err != nil {
			return err
		}
		log.Info("cluster node", "cluster", o.cluster.name, "node", cn.node.Name(), "id", cn.node.ID())
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "fingerprint", certSrc.Fingerprint(), "users", table.Len(),
		"listed_groups", listed.Len(), "groups", o.groupsMode, "presence", o.presence)
	if table.Len() == 0 {
		log.Info("no users yet; add one with: messager user add NAME --users " + o.usersFile)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reloader := reload.New(srv, reload.Config{UsersFile: o.usersFile, GroupsFile: o.groupsFile, Certs: certSrc, Logger: log})
	op, err := operator.New(srv, operator.Config{
		UsersFile:   o.usersFile,
		BansFile:    bans.DefaultPath(o.usersFile),
		InvitesFile: invites.DefaultPath(o.usersFile),
		Reloader:    reloader,
		Logger:      log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv.SetAccounts(op)
	if cn != nil {
		op.SetPeers(cn.node)
	}
	if signup == server.SignupOpen {
		log.Warn("sign-up is open: anyone who can reach the server can make an account (limited to a few an hour per address)")
	}
	if !o.noWatch {
		if err := reloader.Watch(ctx); err != nil {
			log.Warn("user file changes will need SIGHUP", "err", err)
		}
		if err := op.Watch(ctx); err != nil {
			log.Warn("bans file changes will need SIGHUP", "err", err)
		}
	}
	if o.adminSocket != "off" {
		as, err := admin.Listen(o.adminSocket, op, log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin socket: %w", err)
		}
		defer as.Close()
		log.Info("admin socket", "path", o.adminSocket)
	}
	if o.metrics != "" {
		ep, err := metrics.Listen(o.metrics, srv, metrics.Options{Pprof: o.pprof})
		if err != nil {
			ln.Close()
			return err
		}
		defer ep.Close()
		log.Info("serving metrics", "addr", ep.Addr().String(), "path", "/metrics")
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	served := make(chan error, 1)
	var webSide listen.HTTP
	if o.web {
		webSide = web.New(srv, web.Options{Origins: o.webOrigins, Fingerprint: certSrc.Fingerprint, Version: version()})
		log.Info("serving the web client", "url", "https://"+webHost(ln.Addr())+"/")
	}
	go func() { served <- listen.Serve(ln, srv, certSrc.TLSConfig(), webSide) }()
	for {
		select {
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				op.Reload()
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "online", srv.Online())
			sctx, scancel := context.WithTimeout(context.Background(), o.shutdownPeriod)
			err := srv.Shutdown(sctx)
			scancel()
			<-served
			st := srv.Stats()
			log.Info("stopped", "relayed", st.Relayed.Load(), "not_online", st.NotOnline.Load())
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if err != nil {
				log.Warn("shutdown timed out; closed the remaining connections", "err", err)
			}
			return nil
		}
	}
}

// webHost is the host:port a browser on this machine would open.
func webHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
