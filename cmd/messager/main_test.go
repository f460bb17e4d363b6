package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/trust"
)

// TestMain lets the test binary stand in for the messager command in
// scripts: testscript runs it as "messager" with the real main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"messager": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs every testdata/script/*.txt: each runs the real command
// in a fresh directory and checks its output, files and exit status.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// A race-enabled binary sleeps a second when it exits
			// successfully, to let racing goroutines report; scripts run
			// it many times and wait for each to exit anyway.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			// The client logs in as alice unless a script says otherwise.
			env.Setenv("MESSAGER_USER", "alice")
			env.Setenv("MESSAGER_PASSWORD", scriptUsers["alice"])
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Values[peersKey{}] = &scriptPeers{byName: make(map[string]*scriptPeer)}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":     cmdStatus,
			"mode":       cmdMode,
			"server":     func(ts *testscript.TestScript, neg bool, args []string) { cmdServer(t, ts, neg, args) },
			"seedserver": func(ts *testscript.TestScript, neg bool, args []string) { cmdSeedServer(t, ts, neg, args) },
			"online":     func(ts *testscript.TestScript, neg bool, args []string) { cmdOnline(t, ts, neg, args) },
			"received":   cmdReceived,
			"signupserver": func(ts *testscript.TestScript, neg bool, args []string) {
				cmdSignupServer(t, ts, neg, args)
			},
		},
	})
}

// scriptUsers are the users of a script's servers.
var scriptUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}

// scriptTB lets servertest and seedserver run inside a script: failures
// fail the script, cleanups run when it ends, files go to its work
// directory. The outer test stands in for the rest.
type scriptTB struct {
	testing.TB
	ts *testscript.TestScript
}

func (s scriptTB) Helper()                        {}
func (s scriptTB) Fatalf(format string, a ...any) { s.ts.Fatalf(format, a...) }
func (s scriptTB) Fatal(a ...any)                 { s.ts.Fatalf("%s", fmt.Sprint(a...)) }
func (s scriptTB) Logf(format string, a ...any)   { s.ts.Logf(format, a...) }
func (s scriptTB) Cleanup(f func())               { s.ts.Defer(f) }

// Errorf is called by a server's shutdown, after the script: the outer
// test reports it.
func (s scriptTB) Errorf(format string, a ...any) { s.TB.Errorf(s.ts.Name()+": "+format, a...) }

func (s scriptTB) TempDir() string {
	dir, err := os.MkdirTemp(s.ts.Getenv("WORK"), "server")
	s.ts.Check(err)
	return dir
}

// cmdServer is "server [OPTION...]": start a messager server for the rest
// of the script, with the users alice, bob and carol (passwords "pw-"
// and the name), and point the client at it: $MESSAGER_SERVER is its
// address and $PIN its fingerprint. Options: no-presence, no-groups,
// listed=#GROUP:USER+USER (a listed group; quote it, since # starts a
// comment), crowd=N (N more users, u000 and on, online with version 1 for
// the whole script).
func cmdServer(t *testing.T, ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: server [OPTION...]")
	}
	users := servertest.Users{}
	for name, pw := range scriptUsers {
		users[name] = pw
	}
	var opts []servertest.Option
	crowd := 0
	for _, arg := range args {
		name, value, _ := strings.Cut(arg, "=")
		switch name {
		case "no-presence":
			opts = append(opts, func(c *server.Config) { c.NoPresence = true })
		case "no-groups":
			opts = append(opts, func(c *server.Config) { c.Groups = server.GroupsOff })
		case "listed":
			group, members, _ := strings.Cut(value, ":")
			path := filepath.Join(ts.Getenv("WORK"), "groups.csv")
			ts.Check(os.WriteFile(path, []byte(group+","+strings.ReplaceAll(members, "+", ",")+"\n"), 0o600))
			list, err := groups.Load(path)
			ts.Check(err)
			opts = append(opts, func(c *server.Config) { c.GroupList = list })
		case "crowd":
			var err error
			crowd, err = strconv.Atoi(value)
			ts.Check(err)
			for i := 0; i < crowd; i++ {
				users[fmt.Sprintf("u%03d", i)] = fmt.Sprintf("pw-u%03d", i)
			}
		default:
			ts.Fatalf("server: unknown option %q", arg)
		}
	}
	tb := scriptTB{TB: t, ts: ts}
	srv := servertest.Start(tb, users, opts...)
	for i := 0; i < crowd; i++ {
		srv.Login(tb, fmt.Sprintf("u%03d", i), fmt.Sprintf("pw-u%03d", i))
	}
	ts.Setenv("MESSAGER_SERVER", srv.Addr)
	ts.Setenv("PIN", srv.Fingerprint)
	peers(ts).srv = srv
}

// cmdSignupServer is "signupserver open|invite": start a messager server
// like server does, on which users may sign up (with an invite, or
// without); $INVITE is an invite for one sign-up. The accounts are made
// as "messager serve" makes them: in the user file, then reloaded.
func cmdSignupServer(t *testing.T, ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || (args[0] != "open" && args[0] != "invite") {
		ts.Fatalf("usage: signupserver open|invite")
	}
	mode := server.SignupOpen
	if args[0] == "invite" {
		mode = server.SignupInvite
	}
	tb := scriptTB{TB: t, ts: ts}
	srv := servertest.Start(tb, scriptUsers, func(c *server.Config) { c.Signup = mode; c.SignupsPerAddr = 100 })
	dir := filepath.Dir(srv.UsersFile)
	op, err := operator.New(srv.Server, operator.Config{
		UsersFile:   srv.UsersFile,
		BansFile:    filepath.Join(dir, "bans.csv"),
		InvitesFile: filepath.Join(dir, "invites.csv"),
		Reloader:    reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile}),
	})
	ts.Check(err)
	srv.Server.SetAccounts(op)
	token, _, err := op.Invite(1, time.Hour)
	ts.Check(err)
	ts.Setenv("MESSAGER_SERVER", srv.Addr)
	ts.Setenv("PIN", srv.Fingerprint)
	ts.Setenv("INVITE", token)
	peers(ts).srv = srv
}

// cmdSeedServer is "seedserver": start the original server's double for
// the rest of the script, with the users of server; $SEED is its address
// and $SEEDPIN its fingerprint.
func cmdSeedServer(t *testing.T, ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: seedserver")
	}
	s := seedserver.Start(scriptTB{TB: t, ts: ts}, seedserver.Users(scriptUsers), seedserver.Options{})
	ts.Setenv("SEED", s.Addr)
	ts.Setenv("SEEDPIN", s.Fingerprint)
}

type peersKey struct{}

// scriptPeers are the users a script logged in on its server.
type scriptPeers struct {
	srv    *servertest.Server
	byName map[string]*scriptPeer
}

func peers(ts *testscript.TestScript) *scriptPeers { return ts.Value(peersKey{}).(*scriptPeers) }

// scriptPeer is a user online for a script, keeping what it received.
type scriptPeer struct {
	mu       sync.Mutex
	received []string        // "FROM TO: TEXT"
	more     chan struct{}   // closed and replaced when a message arrives
	joined   map[string]bool // groups whose JOIN was answered
}

// cmdOnline is "online USER [#GROUP...]": log USER in on the script's
// server with the client package (version 2) and join the groups, for
// the rest of the script. What USER receives is kept for "received".
func cmdOnline(t *testing.T, ts *testscript.TestScript, neg bool, args []string) {
	ps := peers(ts)
	if neg || len(args) == 0 || ps.srv == nil {
		ts.Fatalf("usage: online USER [#GROUP...], after server")
	}
	user := args[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &client.Dialer{Addr: ps.srv.Addr, TLSConfig: ps.srv.ClientTLS()}
	c, err := d.Login(ctx, user, scriptUsers[user])
	if err != nil {
		ts.Fatalf("online %s: %v", user, err)
	}
	ts.Defer(func() { c.Close() })
	p := &scriptPeer{more: make(chan struct{}), joined: make(map[string]bool)}
	ps.byName[user] = p
	for _, g := range args[1:] {
		ts.Check(c.Join(g))
	}
	go func() {
		for {
			ev, err := c.Receive()
			if err != nil {
				return
			}
			p.mu.Lock()
			switch ev := ev.(type) {
			case client.Relay:
				p.received = append(p.received, ev.From+" "+ev.To+": "+ev.Text)
			case client.GroupJoin:
				if ev.User == user {
					p.joined[strings.ToLower(ev.Group)] = true
				}
			}
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	for _, g := range args[1:] {
		p.wait(ts, "the JOIN of "+g, func() bool { return p.joined[strings.ToLower(g)] })
	}
}

// wait waits until ok, checked under p.mu, or fails the script after
// 10 s.
func (p *scriptPeer) wait(ts *testscript.TestScript, what string, ok func() bool) {
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		done, more := ok(), p.more
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-more:
		case <-deadline:
			ts.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cmdReceived is "received USER 'FROM TO: TEXT'": wait until USER, online
// with "online", has received that message.
func cmdReceived(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: received USER 'FROM TO: TEXT'")
	}
	p := peers(ts).byName[args[0]]
	if p == nil {
		ts.Fatalf("received: %s is not online", args[0])
	}
	p.wait(ts, args[0]+" to receive "+strconv.Quote(args[1]), func() bool {
		for _, m := range p.received {
			if m == args[1] {
				return true
			}
		}
		return false
	})
}

// cmdStatus is "status CODE PROGRAM [ARGS...]": run PROGRAM like exec and
// check that it exits with status CODE (exec can only tell zero from
// non-zero). Its stdout and stderr are kept for the next commands.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: bad exit status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		got = exitErr.ExitCode()
	case err != nil:
		ts.Fatalf("status: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdMode is "mode PERM FILE...": check the permission bits of files, in
// octal, e.g. "mode 0600 user.csv".
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: mode PERM FILE...")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil {
		ts.Fatalf("mode: bad permission %q", args[0])
	}
	for _, f := range args[1:] {
		fi, err := os.Stat(ts.MkAbs(f))
		ts.Check(err)
		got := fi.Mode().Perm()
		if (uint64(got) == want) == neg {
			ts.Fatalf("%s has mode %s", f, fmt.Sprintf("%#o", got))
		}
	}
}

// TestFingerprintHint: the trust prompt and the error for an unknown
// server name a command that exists.
func TestFingerprintHint(t *testing.T) {
	words := strings.Fields(fingerprintCommand)
	cmd, rest, err := newRootCmd().Find(words[1:])
	if err != nil || len(rest) != 0 || cmd.CommandPath() != fingerprintCommand || cmd.RunE == nil {
		t.Fatalf("%q is not a command: found %q, %v, %v", fingerprintCommand, cmd.CommandPath(), rest, err)
	}
	msg := (&trust.UnknownError{Addr: "localhost:18443", Fingerprint: "sha256:00"}).Error()
	if !strings.Contains(msg, `"`+fingerprintCommand+`"`) {
		t.Errorf("unknown-server error does not name %q: %q", fingerprintCommand, msg)
	}
}

// TestGitignore: what the commands leave in a working directory is not
// picked up by git: the server's files, the user file's lock and the
// temporary files of atomic writes, and a binary built in place.
func TestGitignore(t *testing.T) {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git work tree: %v", err)
	}
	dir := strings.TrimSpace(string(root))
	for _, path := range []string{"user.csv", ".user.csv.lock", "cert.pem", "key.pem",
		".user.csv.tmp-123456", "data/.users.csv.lock", "messager", "cmd/messager/messager"} {
		if err := exec.Command("git", "-C", dir, "check-ignore", "-q", "--no-index", path).Run(); err != nil {
			t.Errorf("%s is not ignored: %v", path, err)
		}
	}
	for _, path := range []string{"cmd/messager/chat.go", "go.mod", "docs/protocol.md"} {
		if err := exec.Command("git", "-C", dir, "check-ignore", "-q", "--no-index", path).Run(); err == nil {
			t.Errorf("%s is ignored", path)
		}
	}
}
