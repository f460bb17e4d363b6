package reload_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/filewatch"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

var testUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave"}

// fastWatch keeps the quiet period short, so the tests are quick.
var fastWatch = filewatch.Options{Quiet: 200 * time.Millisecond}

// TestWatchUsers edits the user file on disk the ways an operator does:
// replaced by a rename ('messager user del'), rewritten in place, and
// broken by a bad edit.
func TestWatchUsers(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs))
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile, Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the server stops: cleanups run last first
	if err := rl.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	alice := srv.Login(t, "alice", "pw-alice")
	bob := srv.Login(t, "bob", "pw-bob")
	carol := srv.Login(t, "carol", "pw-carol")

	// Replaced by a rename.
	if err := users.Delete(srv.UsersFile, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.Expect("END <account removed> \r\n")
	alice.ExpectClosed()
	bob.Send("MSG carol bob still here\r\n")
	carol.Expect("RELAY carol bob still here \r\n")

	// Rewritten in place (an editor that truncates and writes).
	if err := os.WriteFile(srv.UsersFile, []byte(servertest.UsersCSV(t, servertest.Users{"bob": "pw-bob", "dave": "pw-dave"})), 0o600); err != nil {
		t.Fatal(err)
	}
	carol.Expect("END <account removed> \r\n")
	carol.ExpectClosed()
	dave := srv.Login(t, "dave", "pw-dave")
	bob.Send("MSG dave bob welcome\r\n")
	dave.Expect("RELAY dave bob welcome \r\n")

	// A bad edit keeps the old table, and the log names the line.
	good, err := os.ReadFile(srv.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(bytes.Clone(good), "eve;no-comma-here\n"...)
	if err := os.WriteFile(srv.UsersFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the bad edit to be logged", func() bool { return strings.Contains(logs.String(), "not valid") })
	if l := logs.LastLine("not valid"); !strings.Contains(l, "line 3") {
		t.Errorf("log does not name line 3: %s", l)
	}
	srv.Login(t, "dave", "pw-dave") // replaces the session above: the table is intact
	bob.Send("MSG bob bob and me\r\n")
	bob.Expect("RELAY bob bob and me \r\n")
	err = rl.Users()
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("ReloadUsers of a bad file: %v, want an error naming line 3", err)
	}
}

// TestWatchUsersEmptied: the watcher never empties the table (a file
// caught halfway through a rewrite looks empty); SIGHUP still can.
func TestWatchUsersEmptied(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs))
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile, Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rl.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	alice := srv.Login(t, "alice", "pw-alice")
	if err := os.WriteFile(srv.UsersFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the empty file to be logged", func() bool { return strings.Contains(logs.String(), "now empty") })
	alice.Send("MSG alice alice still here\r\n")
	alice.Expect("RELAY alice alice still here \r\n")
	// An operator who means it sends SIGHUP, which reloads as it is.
	if err := rl.Users(); err != nil {
		t.Fatal(err)
	}
	alice.Expect("END <account removed> \r\n")
	alice.ExpectClosed()
}

// TestWatchSymlinkedUsers: a user file that is a symbolic link to a file
// in another folder is reloaded when 'messager user del' changes it, and
// the link stays a link.
func TestWatchSymlinkedUsers(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	target := filepath.Join(t.TempDir(), "user.csv")
	data, err := os.ReadFile(srv.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, data, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "user.csv")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	rl := reload.New(srv.Server, reload.Config{UsersFile: link, Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rl.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	alice := srv.Login(t, "alice", "pw-alice")
	if err := users.Delete(link, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.Expect("END <account removed> \r\n")
	alice.ExpectClosed()
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the user file is no longer a link: %v, %v", fi.Mode(), err)
	}
}

// TestSlowRewriteKeepsSessions: a user file rewritten in place, slowly,
// is applied once, whole, after the last write: nobody is logged out by a
// part of it.
func TestSlowRewriteKeepsSessions(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs))
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile, Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rl.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	var sessions []*servertest.Conn
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		sessions = append(sessions, srv.Login(t, u, "pw-"+u))
	}
	// The same four users and one more, written a piece at a time, each
	// piece within the quiet period of the last.
	body := []byte(servertest.UsersCSV(t, servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave", "erin": "pw-erin"}))
	f, err := os.OpenFile(srv.UsersFile, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for len(body) > 0 {
		n := min(len(body), 60)
		if _, err := f.Write(body[:n]); err != nil {
			t.Fatal(err)
		}
		body = body[n:]
		time.Sleep(fastWatch.Quiet * 3 / 4) // longer than the old 100 ms settle
	}
	f.Close()
	servertest.WaitFor(t, "the whole file applied", func() bool { return srv.Server.Users().Len() == 5 })
	if n := strings.Count(logs.String(), "users reloaded"); n != 1 {
		t.Errorf("%d reloads for one slow rewrite, want 1", n)
	}
	srv.Login(t, "erin", "pw-erin")
	for i, u := range []string{"alice", "bob", "carol", "dave"} {
		sessions[i].Send("MSG " + u + " " + u + " still here \r\n")
		sessions[i].Expect("RELAY " + u + " " + u + " still here \r\n")
	}
}

// TestPartialLineNotApplied: a watched file whose last line has no line
// end yet (a writer that stopped mid-line) is not applied.
func TestPartialLineNotApplied(t *testing.T) {
	var logs servertest.Logs
	srv := servertest.Start(t, testUsers, servertest.WithLogs(&logs))
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile, Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rl.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	alice := srv.Login(t, "alice", "pw-alice")
	whole := servertest.UsersCSV(t, servertest.Users{"bob": "pw-bob", "alice": "pw-alice"})
	cut := whole[:strings.Index(whole, "\n")+10] // one whole line and the start of the next
	if err := os.WriteFile(srv.UsersFile, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, "the partial file to be logged", func() bool { return strings.Contains(logs.String(), "does not end with a line end") })
	alice.Send("MSG alice alice still here \r\n")
	alice.Expect("RELAY alice alice still here \r\n")
}
