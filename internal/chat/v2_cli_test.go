package chat_test

// Protocol version 2 in the real messager binary: groups, presence and
// the named not-online answer, on a terminal and through pipes, against a
// real server, one that does not offer them, and the original server's
// double.

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// fastPresence makes the server tell presence changes within 50 ms.
func fastPresence(c *server.Config) { c.PresenceInterval = 50 * time.Millisecond }

// stripTime zeroes an event's Time, for comparisons.
func stripTime(ev client.Event) client.Event {
	v := reflect.New(reflect.TypeOf(ev)).Elem()
	v.Set(reflect.ValueOf(ev))
	if f := v.FieldByName("Time"); f.IsValid() {
		f.Set(reflect.Zero(f.Type()))
	}
	return v.Interface().(client.Event)
}

// await skips events until want arrives (its Time ignored).
func (p *peer) await(want client.Event) {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				p.t.Fatalf("peer connection ended, want %#v", want)
			}
			if reflect.DeepEqual(stripTime(ev), want) {
				return
			}
		case <-deadline:
			p.t.Fatalf("peer: timed out waiting for %#v", want)
		}
	}
}

// join makes the peer join group and waits for the answer.
func (p *peer) join(group string) {
	p.t.Helper()
	if err := p.conn.Join(group); err != nil {
		p.t.Fatalf("peer join: %v", err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-p.events:
			if j, ok := ev.(client.GroupJoin); ok && j.User == p.conn.User() {
				return
			}
		case <-deadline:
			p.t.Fatalf("peer: timed out joining %s", group)
		}
	}
}

func TestInteractiveGroups(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxGroups = 1 })
	bob := connectPeer(t, srv, "bob")
	bob.join("#Team")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob")
	tm.expect("[to bob] ")

	tm.send("/help\r")
	tm.expect("/join #GROUP")
	tm.expect("/part [#GROUP]")
	tm.expect("/who [MASK]")
	tm.expect("/watch NAME")
	tm.expect("/unwatch NAME")

	tm.send("/join #team\r")
	tm.expect("* you joined #Team")
	tm.expect("* in #Team (2): alice bob")
	bob.await(client.GroupJoin{Group: "#Team", User: "alice"})
	if err := bob.conn.SendGroup("#team", "hello team"); err != nil {
		t.Fatal(err)
	}
	tm.expect("#Team bob: hello team")
	if !regexp.MustCompile(`\[\d\d:\d\d\] #Team bob: hello team`).MatchString(tm.output()) {
		t.Errorf("group message not shown as [15:04] #Team bob: text")
	}
	tm.send("/join #two\r")
	tm.expect("* cannot join #two: too many groups")

	tm.send("/to #team\r")
	tm.expect("sending to #team")
	tm.expect("[to #team] ")
	tm.send("hi all\r")
	bob.await(client.Relay{From: "alice", To: "#Team", Text: "hi all", Group: "#Team"})
	tm.expect("alice → #team: hi all")

	carol := connectPeer(t, srv, "carol")
	carol.join("#team")
	tm.expect("* carol joined #Team")
	carol.conn.Close()
	tm.expect("* carol left #Team")

	tm.send("/who\r")
	tm.expect("* online (2): alice bob")
	tm.send("/who b*\r")
	tm.expect("* online matching b* (1): bob")
	tm.send("/who #team\r")
	tm.expect("* in #team (2): alice bob") // the mask as asked
	tm.send("/who dave\r")
	tm.expect("* dave is not online")
	tm.send("/who a b\r")
	tm.expect(`"a b" is not a valid mask`)

	// /part leaves the group sent to; a message to it then is refused.
	tm.send("/part\r")
	tm.expect("* you left #Team")
	bob.await(client.GroupPart{Group: "#Team", User: "alice"})
	tm.send("still there?\r")
	tm.expect("* message to #team not delivered: not a member")
	tm.send("/part\r")
	tm.expect("* cannot leave #team: not a member")
	tm.send("/join team\r")
	tm.expect(`"team" is not a valid group`)
	tm.send("/to bob\r")
	tm.expect("[to bob] ")
	tm.send("/part\r")
	tm.expect("which group?")

	// The named CNT: the notice is about the right message.
	tm.send("/to carol\r")
	tm.expect("[to carol] ")
	tm.send("are you there?\r")
	tm.expect("* carol is not online")

	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d after /quit", code)
	}
}

func TestInteractiveWatch(t *testing.T) {
	srv := servertest.Start(t, testUsers, fastPresence)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob", "--watch", "bob,carol")
	tm.expect("* bob and carol are offline")
	bob := connectPeer(t, srv, "bob")
	tm.expect("* bob is online")
	bob.conn.Close()
	tm.expect("* bob is offline")

	tm.send("/watch\r")
	tm.expect("* watching bob (offline), carol (offline)")
	// Asked again, the state is shown though it is known.
	tm.send("/watch carol\r")
	tm.expect("* carol is offline")
	tm.send("/unwatch carol\r")
	tm.expect("* stopped watching carol")
	connectPeer(t, srv, "carol")
	time.Sleep(200 * time.Millisecond) // four presence rounds
	tm.send("/watch\r")
	tm.expect("* watching bob (offline)\r\n")
	tm.send("/unwatch\r")
	tm.expect("whom?")
	tm.send("/watch b@d\r")
	tm.expect(`"b@d" is not a valid username`)
	tm.send("/unwatch *\r")
	tm.expect("* watching nobody now")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if strings.Contains(tm.output(), "carol is online") {
		t.Error("told of carol after /unwatch carol")
	}
}

// TestInteractiveReconnectRestores: after the server restarts, the
// client joins its groups and watches its users again, without showing
// the answers again; what changes after is shown.
func TestInteractiveReconnectRestores(t *testing.T) {
	srv := servertest.Start(t, testUsers, fastPresence)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "#team", "--watch", "bob")
	tm.expect("* you joined #team")
	tm.expect("* in #team (1): alice")
	tm.expect("* bob is offline")
	tm.expect("[to #team] ")

	srv.Restart()
	tm.expect("reconnected to " + srv.Addr + " as alice")
	bob := connectPeer(t, srv, "bob")
	// The WATCH went after the JOIN on the new connection: once bob's
	// coming is told, alice is in #team again.
	tm.expect("* bob is online")
	bob.join("#team")
	tm.expect("* bob joined #team")
	tm.send("back again\r")
	bob.await(client.Relay{From: "alice", To: "#team", Text: "back again", Group: "#team"})
	if err := bob.conn.SendGroup("#team", "welcome back"); err != nil {
		t.Fatal(err)
	}
	tm.expect("#team bob: welcome back")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	out := tm.output()
	for _, once := range []string{"you joined #team", "in #team (1): alice", "bob is offline"} {
		if n := strings.Count(out, once); n != 1 {
			t.Errorf("%q shown %d times, want once: the rejoin was not quiet", once, n)
		}
	}
}

// TestInteractiveVersion1: against the original server, version 1 works
// as before and the commands of version 2 say that it is not offered.
func TestInteractiveVersion1(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	bob := seedPeer(t, s, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", s.Addr, "--fingerprint", s.Fingerprint, "--to", "bob", "--join", "#team", "--watch", "bob")
	tm.expect("* this server does not offer groups; not in #team")
	tm.expect("* this server does not offer presence (who is online, watching users); not watching bob")
	tm.expect("[to bob] ")
	for _, tt := range []struct{ typed, want string }{
		{"/join #team", "* this server does not offer groups"},
		{"/to #team", "* this server does not offer groups"},
		{"/part #team", "* this server does not offer groups"},
		{"/who", "* this server does not offer presence"},
		{"/watch bob", "* this server does not offer presence"},
		{"/unwatch bob", "* this server does not offer presence"},
	} {
		tm.send(tt.typed + "\r")
		tm.expect(tt.want)
	}
	tm.expect("[to bob] ")
	tm.send("still works\r")
	bob.expectRelay("alice", "still works")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	checkQueries(t, s)
}

func TestPipeGroup(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	bob := connectPeer(t, srv, "bob")
	bob.join("#team")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	p := startProc(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "#team")
	p.write("hello team\n")
	bob.await(client.Relay{From: "alice", To: "#team", Text: "hello team", Group: "#team"})
	if err := bob.conn.SendGroup("#team", "hi alice"); err != nil {
		t.Fatal(err)
	}
	p.stdout.expect(t, "#team bob: hi alice\n")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, p.stderr)
	}
	if got := p.stdout.String(); got != "#team bob: hi alice\n" {
		t.Errorf("stdout %q, want only the message", got)
	}
	for _, want := range []string{"* you joined #team\n", "* in #team (2): alice bob\n"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", p.stderr, want)
		}
	}

	// MESSAGER_JOIN joins a group of a bot that sends to a user.
	p = startProc(t, with(env, "MESSAGER_JOIN=#team"), "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob")
	p.stderr.expect(t, "* you joined #team")
	if err := bob.conn.SendGroup("#team", "for the bot"); err != nil {
		t.Fatal(err)
	}
	p.stdout.expect(t, "#team bob: for the bot\n")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, p.stderr)
	}
}

func TestPipeJSONV2(t *testing.T) {
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1", "MESSAGER_WATCH=carol")
	p := startProc(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint, "--to", "bob", "--join", "#team", "--json")
	p.stdout.expect(t, `"type":"presence"`)
	carol := connectPeer(t, srv, "carol")
	p.stdout.expect(t, `"on":true`)
	bob.join("#team")
	p.stdout.expect(t, `"user":"bob"`)
	if err := bob.conn.SendGroup("#team", "to the group"); err != nil {
		t.Fatal(err)
	}
	p.stdout.expect(t, "to the group")
	p.write("to bob\n")
	bob.await(client.Relay{From: "alice", To: "bob", Text: "to bob"})
	carol.conn.Close()
	p.stdout.expect(t, `"on":false`)
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, p.stderr)
	}

	type line struct {
		Type, From, To, Text, Group, User, Mask string
		On                                      bool
		Count                                   int
		Names                                   []string
		Time                                    time.Time
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSuffix(p.stdout.String(), "\n"), "\n") {
		var m line
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if time.Since(m.Time) > time.Minute {
			t.Errorf("line %q: time %v", l, m.Time)
		}
		m.Time = time.Time{}
		got = append(got, m)
	}
	want := []line{
		{Type: "join", Group: "#team", User: "alice"},
		{Type: "who", Mask: "#team", Count: 1, Names: []string{"alice"}},
		{Type: "presence", On: false, Names: []string{"carol"}},
		{Type: "presence", On: true, Names: []string{"carol"}},
		{Type: "join", Group: "#team", User: "bob"},
		{Type: "message", From: "bob", To: "#team", Text: "to the group"},
		{Type: "presence", On: false, Names: []string{"carol"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON lines\n%+v\nwant\n%+v", got, want)
	}
}

// TestPipeRefused: a group the operator does not let alice join. The
// refusal and every line not delivered are reported; exit status 2.
func TestPipeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groups.csv")
	if err := os.WriteFile(path, []byte("#ops,bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := groups.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.GroupList = list })
	bob := connectPeer(t, srv, "bob")
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	args := []string{"chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint}

	code, stdout, stderr := run(t, env, "one\ntwo\n", append(args, "--to", "#ops")...)
	if code != 2 || stdout != "" {
		t.Errorf("exit status %d, stdout %q, want 2 and nothing", code, stdout)
	}
	want := "* cannot join #ops: not allowed\n" +
		"* message to #ops not delivered: not a member\n" +
		"* message to #ops not delivered: not a member\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}

	// Every line delivered, but a --join refused: still 2.
	code, _, stderr = run(t, env, "hi bob\n", append(args, "--to", "bob", "--join", "#ops")...)
	bob.expectRelay("alice", "hi bob")
	if code != 2 || !strings.Contains(stderr, "cannot join #ops: not allowed") {
		t.Errorf("refused --join: exit status %d, stderr %q", code, stderr)
	}

	// JSON: the refusal is a "fail" line.
	code, stdout, _ = run(t, env, "x\n", append(args, "--to", "#ops", "--json")...)
	var f struct{ Type, To, Verb, Subject, Reason, Text string }
	first, _, _ := strings.Cut(stdout, "\n")
	if err := json.Unmarshal([]byte(first), &f); err != nil {
		t.Fatalf("line %q: %v", first, err)
	}
	if code != 2 || f != (struct{ Type, To, Verb, Subject, Reason, Text string }{
		Type: "fail", Verb: "JOIN", Subject: "#ops", Reason: "not allowed", Text: "cannot join #ops: not allowed"}) {
		t.Errorf("exit status %d, first line %+v", code, f)
	}
	if !strings.Contains(stdout, `"type":"fail","time":`) || !strings.Contains(stdout, `"to":"#ops","verb":"MSG"`) {
		t.Errorf("JSON %q lacks the fail of the message", stdout)
	}
}

// TestPipeNotOffered: groups and presence asked of servers that do not
// offer them fail at once with exit status 2, before any line is sent;
// bad flags are usage errors.
func TestPipeNotOffered(t *testing.T) {
	seed := seedserver.Start(t, seedUsers, seedserver.Options{})
	off := servertest.Start(t, testUsers, func(c *server.Config) { c.NoPresence, c.Groups = true, server.GroupsOff })
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"seed --to group", []string{"--server", seed.Addr, "--fingerprint", seed.Fingerprint, "--to", "#team"}, 2,
			"messager: --to #team: this server does not offer groups\n"},
		{"seed --watch", []string{"--server", seed.Addr, "--fingerprint", seed.Fingerprint, "--to", "bob", "--watch", "bob"}, 2,
			"messager: --watch: this server does not offer presence (who is online, watching users)\n"},
		{"off --join", []string{"--server", off.Addr, "--fingerprint", off.Fingerprint, "--to", "bob", "--join", "#a,#b"}, 2,
			"messager: --join: this server does not offer groups\n"},
		{"bad --join", []string{"--server", off.Addr, "--to", "bob", "--join", "#a,b"}, 2,
			`messager: --join: "b" is not a valid group (# and 1 to 32 characters from A-Z a-z 0-9 _ . -)` + "\n"},
		{"bad --watch", []string{"--server", off.Addr, "--to", "bob", "--watch", "bob carol,b@d"}, 2,
			`messager: --watch: "b@d" is not a valid username (1 to 32 characters from A-Z a-z 0-9 _ . -)` + "\n"},
		{"bad --to group", []string{"--server", off.Addr, "--to", "#a b"}, 2,
			`messager: --to: "#a b" is not a valid group (# and 1 to 32 characters from A-Z a-z 0-9 _ . -)` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, env, "never sent\n", append([]string{"chat"}, tt.args...)...)
			if code != tt.code || stderr != tt.stderr || stdout != "" {
				t.Errorf("exit status %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.code, tt.stderr)
			}
		})
	}
	checkQueries(t, seed)
	for _, q := range seed.Queries() {
		if strings.HasPrefix(q.Raw, "MSG") {
			t.Errorf("sent %q", q.Raw)
		}
	}
}

// TestHostileV2Escaped: names, groups, masks and reasons of version 2
// from a server are escaped like everything else it sends.
func TestHostileV2Escaped(t *testing.T) {
	lines := []string{
		"JOIN #team b\x1b[2Job \r\n",
		"WHO * 2 alice m\x1b]0;x\x07al \r\n",
		"FAIL JOIN #t\x1b[31m <no\u202e> \r\n",
		"RELAY #te\x1b[Ham bob hi \r\n",
		"CNT c\x1b[5marol <user not online> \r\n",
		"RELAY alice bob done \r\n",
	}
	wants := []string{`b\x1b[2Job joined #team`, `online (2): alice m\x1b]0;x\x07al`, `cannot join #t\x1b[31m: no\u202e`,
		`#te\x1b[Ham bob: hi`, `c\x1b[5marol is not online`}
	raws := []string{"\x1b[2J", "\x1b]", "\x07", "\x1b[31m", "\u202e", "\x1b[H", "\x1b[5m"}
	addr, fp := fakeServerHello(t, "HELLO 2 presence=10 groups=5,5 \r\n", func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil { // AUTH
			return
		}
		io.WriteString(c, "ACCEPT alice \r\n")
		for _, l := range lines {
			io.WriteString(c, l)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "END") {
				io.WriteString(c, "END <end accepted> \r\n")
				return
			}
		}
	})
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
	tm.expect("bob: done")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	out := tm.output()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, raw := range raws {
		if strings.Contains(out, raw) {
			t.Errorf("raw %q reached the terminal", raw)
		}
	}
}
