package operator_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/admin"
	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

var testUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}

// clock is a settable clock for ban expiry.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) now() time.Time      { return *c.t.Load() }
func (c *clock) set(t time.Time)     { c.t.Store(&t) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// setup runs a real server with its operator and admin socket, and
// returns a client of the socket.
func setup(t *testing.T, opts ...servertest.Option) (*servertest.Server, *operator.Operator, *admin.Client, *clock) {
	t.Helper()
	clk := &clock{}
	clk.set(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	srv := servertest.Start(t, testUsers, opts...)
	dir := filepath.Dir(srv.UsersFile)
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile})
	op, err := operator.New(srv.Server, operator.Config{
		UsersFile: srv.UsersFile, BansFile: filepath.Join(dir, "bans.csv"), InvitesFile: filepath.Join(dir, "invites.csv"),
		Reloader: rl, Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Server.SetAccounts(op)
	sock := filepath.Join(t.TempDir(), "messager.sock")
	as, err := admin.Listen(sock, op, srv.Server.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { as.Close() })
	c, err := admin.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, op, c, clk
}

func loginV2(t *testing.T, srv *servertest.Server, user, password string) *servertest.Conn {
	t.Helper()
	c := srv.DialConn(t)
	c.Send("HELLO 2 \r\nAUTH " + user + " " + password + " \r\n")
	if l := c.Line(); !strings.HasPrefix(l, "HELLO 2 ") {
		t.Fatalf("got %q", l)
	}
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}

// TestAdminSessionsKickNotice: the admin socket lists sessions, kicks,
// and sends notices that version-1 sessions get in the version-1 shape.
func TestAdminSessionsKickNotice(t *testing.T) {
	srv, _, c, _ := setup(t)
	alice := srv.Login(t, "alice", "pw-alice")
	bob := loginV2(t, srv, "bob", "pw-bob")
	bob.Send("JOIN #team \r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Line()
	sessions, err := c.Sessions("")
	if err != nil || len(sessions) != 2 || sessions[0].User != "alice" || sessions[1].Version != 2 || len(sessions[1].Groups) != 1 {
		t.Fatalf("sessions: %+v, %v", sessions, err)
	}
	if n, err := c.Notice("", "maintenance at noon"); err != nil || n != 2 {
		t.Fatalf("notice: %d, %v", n, err)
	}
	alice.Expect("RELAY alice server maintenance at noon \r\n")
	bob.Expect("RELAY bob server maintenance at noon \r\n")
	if n, err := c.Notice("#team", "team only"); err != nil || n != 1 {
		t.Fatalf("notice to #team: %d, %v", n, err)
	}
	bob.Expect("RELAY bob server team only \r\n")
	if ok, err := c.Kick("alice", "spam"); !ok || err != nil {
		t.Fatalf("kick: %v, %v", ok, err)
	}
	alice.Expect("END <kicked> \r\n")
	if ok, _ := c.Kick("alice", ""); ok {
		t.Error("kicked alice twice")
	}
	groups, err := c.Groups()
	if err != nil || len(groups) != 1 || groups[0].Name != "#team" || groups[0].Members != 1 {
		t.Fatalf("groups: %+v, %v", groups, err)
	}
}

// TestAdminBans: bans end live sessions, refuse logins as the protocol
// says, survive a restart (a new operator reads the file), expire, and
// are lifted.
func TestAdminBans(t *testing.T) {
	srv, _, c, clk := setup(t)
	alice := srv.Login(t, "alice", "pw-alice")
	b, err := c.Ban("alice", time.Hour, "flooding")
	if err != nil || !b.User || b.Sessions != 1 {
		t.Fatalf("ban: %+v, %v", b, err)
	}
	alice.Expect("END <banned> \r\n")
	d := srv.DialConn(t)
	d.Send("AUTH alice wrong \r\n")
	d.Expect("END <incorrect username or password> \r\n")
	d = srv.DialConn(t)
	d.Send("AUTH alice pw-alice \r\n")
	d.Expect("END <banned> \r\n")

	// A new operator over the same files (a restart) keeps the ban.
	rl := reload.New(srv.Server, reload.Config{UsersFile: srv.UsersFile})
	dir := filepath.Dir(srv.UsersFile)
	if _, err := operator.New(srv.Server, operator.Config{UsersFile: srv.UsersFile, BansFile: filepath.Join(dir, "bans.csv"),
		InvitesFile: filepath.Join(dir, "invites.csv"), Reloader: rl, Now: clk.now}); err != nil {
		t.Fatal(err)
	}
	d = srv.DialConn(t)
	d.Send("AUTH alice pw-alice \r\n")
	d.Expect("END <banned> \r\n")

	// An hour later the ban has expired.
	clk.add(time.Hour + time.Second)
	srv.Login(t, "alice", "pw-alice")

	// An address ban: refused at the first line.
	bob := srv.Login(t, "bob", "pw-bob")
	if b, err := c.Ban("127.0.0.0/8", 0, "everyone here"); err != nil || b.Sessions != 2 {
		t.Fatalf("address ban: %+v, %v; want alice's and bob's sessions ended", b, err)
	}
	bob.Expect("END <banned> \r\n")
	d = srv.DialConn(t)
	d.Send("HELLO 2 \r\n")
	d.Expect("END <banned> \r\n")
	list, err := c.Bans()
	if err != nil || len(list) != 1 { // alice's expired
		t.Fatalf("bans: %+v, %v", list, err)
	}
	if ok, err := c.Unban("127.0.0.0/8"); !ok || err != nil {
		t.Fatalf("unban: %v, %v", ok, err)
	}
	srv.Login(t, "bob", "pw-bob")
}

// TestInviteSignup: an invite from the admin socket lets one person sign
// up over TLS; two sign-ups racing for a single-use invite: one wins.
func TestInviteSignup(t *testing.T) {
	srv, _, c, _ := setup(t, func(cfg *server.Config) { cfg.Signup = server.SignupInvite; cfg.SignupsPerAddr = 100 })
	token, inv, err := c.Invite(1, time.Hour)
	if err != nil || len(token) < 22 || inv.Uses != 1 {
		t.Fatalf("invite: %q %+v %v", token, inv, err)
	}
	data, _ := os.ReadFile(filepath.Join(filepath.Dir(srv.UsersFile), "invites.csv"))
	if strings.Contains(string(data), token) {
		t.Fatal("the invites file holds the token itself")
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, name := range []string{"erin", "frank", "gina", "hank"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := srv.DialConn(t)
			conn.Send("HELLO 2 \r\nPUT " + name + " password1 " + token + " \r\n")
			conn.Line() // HELLO
			switch l := conn.Line(); l {
			case "ACCEPT " + name + " \r\n":
				wins.Add(1)
			case "TRY <invalid invite> \r\n":
			default:
				t.Errorf("%s got %q", name, l)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d sign-ups won a single-use invite, want 1", n)
	}
	invs, err := c.Invites()
	if err != nil || len(invs) != 0 {
		t.Fatalf("invites after use: %+v, %v", invs, err)
	}
	res, err := c.Reload()
	if err != nil || res.Users != 4 || len(res.Errors) != 0 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
}
