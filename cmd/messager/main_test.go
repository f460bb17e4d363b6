package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

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
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status": cmdStatus,
			"mode":   cmdMode,
		},
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
