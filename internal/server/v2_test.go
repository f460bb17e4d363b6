package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// Tests of protocol version 2: every row and rule of its part of the
// protocol, over real TLS.

const hello2 = "HELLO 2 presence=100 groups=20,500 \r\n"

// loginV2 says HELLO 2, logs in as user and returns the session.
func loginV2(t testing.TB, srv *servertest.Server, user string) *lineConn {
	t.Helper()
	c := dial(t, srv)
	c.Send("HELLO 2 \r\nAUTH " + user + " pw-" + user + " \r\n")
	if l := c.Line(); !strings.HasPrefix(l, "HELLO 2 ") {
		t.Fatalf("got %q, want HELLO 2", l)
	}
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}

// joinAll makes each user join group in turn, reading the answers and
// the others' notices, so nothing is left unread.
func joinAll(t testing.TB, group string, users []string, conns []*lineConn) {
	t.Helper()
	for i, c := range conns {
		c.Send("JOIN " + group + " \r\n")
		c.Expect("JOIN " + group + " " + users[i] + " \r\n")
		if l := c.Line(); !strings.HasPrefix(l, "WHO "+group+" ") {
			t.Fatalf("got %q, want the WHO of the JOIN", l)
		}
		for _, earlier := range conns[:i] {
			earlier.Expect("JOIN " + group + " " + users[i] + " \r\n")
		}
	}
}

// marker proves that nothing else is queued for c: it sends itself a
// message and expects it as the very next line.
func marker(c *lineConn, user, text string) {
	c.Send("MSG " + user + " " + user + " " + text + " \r\n")
	c.Expect("RELAY " + user + " " + user + " " + text + " \r\n")
}

func TestHello(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	for _, tt := range []struct{ send, want string }{
		{"HELLO 2", hello2},
		{"HELLO 999", hello2},
		{"HELLO 1", "HELLO 1 \r\n"},
	} {
		c := dial(t, srv)
		c.Send(tt.send + " \r\nAUTH alice pw-alice \r\n")
		c.Expect(tt.want)
		c.Expect("ACCEPT alice \r\n")
	}
	for _, lines := range []string{
		"HELLO 0", "HELLO 01", "HELLO 1000", "HELLO", "HELLO 2 3", "HELLO two",
		"HELLO 2 \r\nHELLO 2",
	} {
		c := dial(t, srv)
		c.Send(lines + " \r\n")
		if strings.Contains(lines, "\r\n") {
			c.Expect(hello2)
		}
		c.Expect("END * <incorrect protocol> \r\n")
		c.ExpectClosed()
	}
	// After login, HELLO is a protocol error in either version.
	for _, c := range []*lineConn{login(t, srv, "bob", "pw-bob"), loginV2(t, srv, "carol")} {
		c.Send("HELLO 2 \r\n")
		c.Expect("END * <incorrect protocol> \r\n")
		c.ExpectClosed()
	}
}

// TestHelloFeatures: features the operator switched off are not offered,
// and their queries get FAIL ... <not enabled>.
func TestHelloFeatures(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.NoPresence, c.Groups = true, server.GroupsOff
	})
	c := dial(t, srv)
	c.Send("HELLO 2 \r\nAUTH alice pw-alice \r\n")
	c.Expect("HELLO 2 \r\n")
	c.Expect("ACCEPT alice \r\n")
	c.Send("WHO * \r\nWATCH bob carol \r\nUNWATCH bob \r\nJOIN #team \r\nPART #team \r\nMSG #team alice hi \r\n")
	c.Expect("FAIL WHO * <not enabled> \r\n")
	c.Expect("FAIL WATCH bob <not enabled> \r\n")
	c.Expect("FAIL WATCH carol <not enabled> \r\n")
	c.Expect("FAIL JOIN #team <not enabled> \r\n")
	c.Expect("FAIL PART #team <not enabled> \r\n")
	c.Expect("FAIL MSG #team <not enabled> \r\n")
	marker(c, "alice", "done")

	srv2 := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxWatch, c.MaxGroups, c.MaxMembers = 7, 3, 9 })
	c = dial(t, srv2)
	c.Send("HELLO 2 \r\n")
	c.Expect("HELLO 2 presence=7 groups=3,9 \r\n")
}

// TestNamedCNT: a version-2 sender is told which target is not online.
func TestNamedCNT(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := loginV2(t, srv, "alice")
	alice.Send("MSG carol alice hi \r\nMSG nobody alice hi \r\n")
	alice.Expect("CNT carol <user not online> \r\n")
	alice.Expect("CNT nobody <user not online> \r\n")
}

// TestVersion1Guarantee: a session that never says HELLO gets exactly
// the version-1 bytes, while version-2 sessions around it use presence
// and groups, watch it and message it.
func TestVersion1Guarantee(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.PresenceInterval = 50 * time.Millisecond })
	bob := loginV2(t, srv, "bob")
	carol := loginV2(t, srv, "carol")
	bob.Send("WATCH alice dave \r\nJOIN #team \r\n")
	bob.Expect("PRESENCE off alice dave \r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Expect("WHO #team 1 bob \r\n")
	alice := login(t, srv, "alice", "pw-alice")
	bob.Expect("PRESENCE on alice \r\n")
	carol.Send("JOIN #team \r\nMSG #team carol hello team \r\nMSG alice carol hi alice \r\n")
	bob.Expect("JOIN #team carol \r\n")
	bob.Expect("RELAY #team carol hello team \r\n")
	alice.Send("MSG dave alice anyone? \r\nMSG bob alice hi bob \r\n")
	bob.Expect("RELAY bob alice hi bob \r\n")
	// Every version-2 query from alice is a protocol error; before that,
	// her lines are version 1's exactly.
	alice.Send("END \r\n")
	var got strings.Builder
	for {
		l := alice.Line()
		if l == "CHECK \r\n" {
			continue
		}
		got.WriteString(l)
		if strings.HasPrefix(l, "END ") {
			break
		}
	}
	want := "RELAY alice carol hi alice \r\nCNT <user not online> \r\nEND <end accepted> \r\n"
	if got.String() != want {
		t.Fatalf("version-1 session got %q, want %q", got.String(), want)
	}
	for _, q := range []string{"WHO *", "WATCH bob", "UNWATCH *", "JOIN #team", "PART #team", "MSG #team alice hi", "PUT zed password1", "HELLO 2"} {
		c := login(t, srv, "alice", "pw-alice")
		c.Send(q + " \r\n")
		c.Expect("END * <incorrect protocol> \r\n")
		c.ExpectClosed()
	}
}

// TestWho covers the masks, the count, the 100-name cap and the rate
// limit.
func TestWho(t *testing.T) {
	u := servertest.Users{}
	for i := 0; i < 120; i++ {
		u[fmt.Sprintf("u%03d", i)] = fmt.Sprintf("pw-u%03d", i)
	}
	u["alice"], u["albert"], u["bob"] = "pw-alice", "pw-albert", "pw-bob"
	srv := servertest.Start(t, u)
	for i := 0; i < 120; i++ {
		login(t, srv, fmt.Sprintf("u%03d", i), fmt.Sprintf("pw-u%03d", i))
	}
	loginV2(t, srv, "albert")
	alice := loginV2(t, srv, "alice")
	alice.Send("WHO al* \r\nWHO bob \r\nWHO alice \r\nWHO u1* \r\n")
	alice.Expect("WHO al* 2 albert alice \r\n")
	alice.Expect("WHO bob 0 \r\n")
	alice.Expect("WHO alice 1 alice \r\n")
	var names []string
	for i := 100; i < 120; i++ {
		names = append(names, fmt.Sprintf("u%03d", i))
	}
	alice.Expect("WHO u1* 20 " + strings.Join(names, " ") + " \r\n")
	// The fifth query of the burst is answered; the sixth must slow down.
	alice.Send("WHO * \r\nWHO #none \r\n")
	l := alice.Line()
	if !strings.HasPrefix(l, "WHO * 122 albert alice u000 ") || strings.Count(l, " ") != 3+100 {
		t.Fatalf("WHO * answer %q: want a count of 122 and the first 100 names", servertest.Trunc(l))
	}
	alice.Expect("FAIL WHO #none <slow down> \r\n")
}

// TestWatchPresence: WATCH answers the current state, changes arrive
// coalesced, a replaced session is no change, and the watch list has a
// bound.
func TestWatchPresence(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.MaxWatch, c.PresenceInterval = 3, 300*time.Millisecond
	})
	alice := loginV2(t, srv, "alice")
	login(t, srv, "carol", "pw-carol")
	time.Sleep(700 * time.Millisecond) // carol's login is told before alice watches
	alice.Send("WATCH bob carol nobody dave \r\nWATCH bob \r\n")
	alice.Expect("PRESENCE on carol \r\n")
	alice.Expect("PRESENCE off bob nobody \r\n")
	alice.Expect("FAIL WATCH dave <watch list full> \r\n")
	alice.Expect("PRESENCE off bob \r\n") // watched already: the state again
	login(t, srv, "bob", "pw-bob")
	alice.Expect("PRESENCE on bob \r\n")
	// bob replaced by a new login: no change. bob leaving and coming back
	// within one round: no change either.
	bob := login(t, srv, "bob", "pw-bob")
	bob.Send("END \r\n")
	bob.Expect("END <end accepted> \r\n")
	login(t, srv, "bob", "pw-bob")
	time.Sleep(700 * time.Millisecond) // two rounds
	marker(alice, "alice", "no news")
	// UNWATCH: no more news of carol.
	alice.Send("UNWATCH carol \r\n")
	carolAgain := login(t, srv, "carol", "pw-carol")
	carolAgain.Send("END \r\n")
	carolAgain.Expect("END <end accepted> \r\n")
	time.Sleep(700 * time.Millisecond)
	marker(alice, "alice", "still no news")
	alice.Send("UNWATCH * \r\n")
	if n := srv.Server.WatchEntries(); n != 0 {
		waitFor(t, "no watch entries", func() bool { return srv.Server.WatchEntries() == 0 })
	}
}

// TestWatchAnswerWithinRound: a WATCH answered during a presence round is
// told by that round only what changed after the answer; a change before
// it, already in the answer, is not told twice, and a flap after it
// (state back to what was answered) is not told at all.
func TestWatchAnswerWithinRound(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) {
		c.PresenceInterval = 400 * time.Millisecond
	})
	alice := loginV2(t, srv, "alice")
	time.Sleep(900 * time.Millisecond) // alice's own login is told and gone

	// carol comes online, then alice watches her, within one round: the
	// answer says on, and the round says nothing more.
	login(t, srv, "carol", "pw-carol")
	alice.Send("WATCH carol \r\n")
	alice.Expect("PRESENCE on carol \r\n")

	// bob is answered off; he logs in after the answer: the round tells
	// alice on.
	alice.Send("WATCH bob \r\n")
	alice.Expect("PRESENCE off bob \r\n")
	bob := login(t, srv, "bob", "pw-bob")
	alice.Expect("PRESENCE on bob \r\n")

	// dave is answered off and comes and goes within the round: alice's
	// answer is still true, so she hears nothing.
	time.Sleep(900 * time.Millisecond)
	alice.Send("WATCH dave \r\n")
	alice.Expect("PRESENCE off dave \r\n")
	dave := login(t, srv, "dave", "pw-dave")
	dave.Send("END \r\n")
	dave.Expect("END <end accepted> \r\n")
	time.Sleep(900 * time.Millisecond) // two rounds
	alice.Send("MSG alice alice mark \r\n")
	var got []string
	for l := alice.Line(); l != "RELAY alice alice mark \r\n"; l = alice.Line() {
		got = append(got, l)
	}
	// Nothing, or, when a round began between dave's login and logout,
	// both changes in order: never a state that stays wrong.
	if len(got) != 0 && !slices.Equal(got, []string{"PRESENCE on dave \r\n", "PRESENCE off dave \r\n"}) {
		t.Errorf("after dave came and went, alice got %q", got)
	}

	// Later changes reach her as to any watcher.
	bob.Send("END \r\n")
	bob.Expect("END <end accepted> \r\n")
	alice.Expect("PRESENCE off bob \r\n")
}

// TestGroups covers JOIN, PART, MSG #group and their FAIL answers.
func TestGroups(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxGroups, c.MaxMembers = 2, 3 })
	alice, bob, carol, dave := loginV2(t, srv, "alice"), loginV2(t, srv, "bob"), loginV2(t, srv, "carol"), loginV2(t, srv, "dave")
	alice.Send("JOIN #Team \r\n")
	alice.Expect("JOIN #Team alice \r\n")
	alice.Expect("WHO #Team 1 alice \r\n")
	bob.Send("JOIN #team \r\n") // names compare ignoring case, shown as first written
	bob.Expect("JOIN #Team bob \r\n")
	bob.Expect("WHO #Team 2 alice bob \r\n")
	alice.Expect("JOIN #Team bob \r\n")
	bob.Send("JOIN #TEAM \r\n") // again: answered, nobody told
	bob.Expect("JOIN #Team bob \r\n")
	bob.Expect("WHO #Team 2 alice bob \r\n")
	carol.Send("JOIN #team \r\n")
	carol.Expect("JOIN #Team carol \r\n")
	carol.Expect("WHO #Team 3 alice bob carol \r\n")
	alice.Expect("JOIN #Team carol \r\n")
	bob.Expect("JOIN #Team carol \r\n")
	dave.Send("JOIN #team \r\nMSG #team dave hi \r\nPART #team \r\n")
	dave.Expect("FAIL JOIN #team <group full> \r\n")
	dave.Expect("FAIL MSG #team <not a member> \r\n")
	dave.Expect("FAIL PART #team <not a member> \r\n")
	alice.Send("JOIN #two \r\nJOIN #three \r\n")
	alice.Expect("JOIN #two alice \r\n")
	alice.Expect("WHO #two 1 alice \r\n")
	alice.Expect("FAIL JOIN #three <too many groups> \r\n")

	// A message goes to every other member, not back to its sender.
	bob.Send("MSG #TEAM bob hello all \r\n")
	alice.Expect("RELAY #Team bob hello all \r\n")
	carol.Expect("RELAY #Team bob hello all \r\n")
	marker(bob, "bob", "not echoed")
	// A spoofed sender is a protocol error, as in version 1.
	d2 := loginV2(t, srv, "dave")
	d2.Send("MSG #team alice hi \r\n")
	d2.Expect("END * <incorrect protocol> \r\n")

	// PART tells everyone, the leaver too; a session's end tells the others.
	carol.Send("PART #team \r\n")
	carol.Expect("PART #Team carol \r\n")
	alice.Expect("PART #Team carol \r\n")
	bob.Expect("PART #Team carol \r\n")
	bob.Send("END \r\n")
	bob.Expect("END <end accepted> \r\n")
	alice.Expect("PART #Team bob \r\n")
	alice.Send("WHO #team \r\n")
	alice.Expect("WHO #team 1 alice \r\n")
	// The last member leaving ends the group: the next JOIN makes it anew.
	alice.Send("PART #Team \r\n")
	alice.Expect("PART #Team alice \r\n")
	carol.Send("JOIN #TEAM \r\n")
	carol.Expect("JOIN #TEAM carol \r\n")
	carol.Expect("WHO #TEAM 1 carol \r\n")
}

// TestGroupOrder: two senders writing to one group at once; every
// member sees the same order.
func TestGroupOrder(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	users := []string{"alice", "bob", "carol", "dave"}
	var members []*lineConn
	for _, u := range users {
		members = append(members, loginV2(t, srv, u))
	}
	joinAll(t, "#g", users, members)
	const n = 500
	for i, sender := range []string{"alice", "bob"} {
		go func(c *lineConn, sender string) {
			var b strings.Builder
			for j := 0; j < n; j++ {
				fmt.Fprintf(&b, "MSG #g %s %d \r\n", sender, j)
			}
			c.Send(b.String())
		}(members[i], sender)
	}
	read := func(c *lineConn, count int) []string {
		var got []string
		for len(got) < count {
			got = append(got, c.Line())
		}
		return got
	}
	carol, dave := read(members[2], 2*n), read(members[3], 2*n)
	for i := range carol {
		if carol[i] != dave[i] {
			t.Fatalf("line %d: carol got %q, dave %q: the members saw different orders", i, carol[i], dave[i])
		}
	}
}

// TestGroupRunsKeepSenderOrder: a read's group messages reach the members
// together, and a member who is also sent a direct message, a message of
// another group or the sender's other lines in the same read gets them all
// in the order sent.
func TestGroupRunsKeepSenderOrder(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	users := []string{"alice", "bob", "carol"}
	var conns []*lineConn
	for _, u := range users {
		conns = append(conns, loginV2(t, srv, u))
	}
	joinAll(t, "#g", users, conns)
	joinAll(t, "#h", users[:2], conns[:2])
	alice, bob, carol := conns[0], conns[1], conns[2]
	alice.Send("MSG #g alice 1 \r\nMSG #g alice 2 \r\nMSG bob alice 3 \r\nMSG #g alice 4 \r\n" +
		"MSG #h alice 5 \r\nMSG #g alice 6 \r\nWHO bob \r\nMSG #g alice 7 \r\n")
	for _, want := range []string{"RELAY #g alice 1 ", "RELAY #g alice 2 ", "RELAY bob alice 3 ",
		"RELAY #g alice 4 ", "RELAY #h alice 5 ", "RELAY #g alice 6 ", "RELAY #g alice 7 "} {
		bob.Expect(want + "\r\n")
	}
	for _, want := range []string{"1", "2", "4", "6", "7"} {
		carol.Expect("RELAY #g alice " + want + " \r\n")
	}
	alice.Expect("WHO bob 1 bob \r\n")
	for i, c := range conns {
		marker(c, users[i], "nothing more")
	}
}

// TestFrozenGroupMember: a member that stops reading is closed as too
// slow; the sender and the other members go on, and are told it left.
func TestFrozenGroupMember(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice, bob := loginV2(t, srv, "alice"), loginV2(t, srv, "bob")
	joinAll(t, "#g", []string{"alice", "bob"}, []*lineConn{alice, bob})
	frozen := frozenDialV2(t, srv, "dave")
	frozen.Send("JOIN #g \r\n")
	alice.Expect("JOIN #g dave \r\n")
	bob.Expect("JOIN #g dave \r\n")
	// Sent in windows that bob keeps up with; dave reads nothing.
	text := strings.Repeat("x", 1000)
	sawPart := false
	const windows, window = 60, 100
	for w := 0; w < windows; w++ {
		var b strings.Builder
		for i := 0; i < window; i++ {
			fmt.Fprintf(&b, "MSG #g alice %d %s \r\n", w*window+i, text)
		}
		alice.Send(b.String())
		for i := 0; i < window; {
			l := bob.Line()
			if l == "PART #g dave \r\n" {
				sawPart = true
				continue
			}
			if want := fmt.Sprintf("RELAY #g alice %d %s \r\n", w*window+i, text); l != want {
				t.Fatalf("bob got %q, want message %d", servertest.Trunc(l), w*window+i)
			}
			i++
		}
	}
	if !sawPart {
		bob.Expect("PART #g dave \r\n")
	}
	if n := srv.Server.Stats().CloseCount("too_slow"); n != 1 {
		t.Fatalf("too_slow closes = %d, want 1", n)
	}
}

func frozenDialV2(t *testing.T, srv *servertest.Server, user string) *lineConn {
	t.Helper()
	return frozenLogin(t, srv, "HELLO 2 \r\nAUTH "+user+" pw-"+user+" \r\n", hello2, "ACCEPT "+user+" \r\n")
}

// TestReplacedSessionHandsOver: a version-2 login replacing a session
// takes over its groups and watch list without anyone seeing the user
// leave; a version-1 login replacing it leaves its groups.
func TestReplacedSessionHandsOver(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.PresenceInterval = 50 * time.Millisecond })
	alice := loginV2(t, srv, "alice")
	bob := loginV2(t, srv, "bob")
	joinAll(t, "#g", []string{"alice", "bob"}, []*lineConn{alice, bob})
	alice.Send("WATCH carol \r\n")
	alice.Expect("PRESENCE off carol \r\n")

	alice2 := loginV2(t, srv, "alice")
	alice.Expect("END <logged in elsewhere> \r\n")
	bob.Send("MSG #g bob still there? \r\n")
	alice2.Expect("RELAY #g bob still there? \r\n")
	login(t, srv, "carol", "pw-carol")
	alice2.Expect("PRESENCE on carol \r\n")
	marker(bob, "bob", "no part, no join")

	// A version-1 login cannot be in groups: the user leaves them.
	login(t, srv, "alice", "pw-alice")
	alice2.Expect("END <logged in elsewhere> \r\n")
	bob.Expect("PART #g alice \r\n")
}

// TestListedGroups: listed groups admit only their users, exist while
// empty, and in listed mode are the only groups.
func TestListedGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groups.csv")
	if err := os.WriteFile(path, []byte("#Ops,alice,bob\n#lobby,*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := groups.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.GroupList, c.Groups = list, server.GroupsListed })
	alice, carol := loginV2(t, srv, "alice"), loginV2(t, srv, "carol")
	alice.Send("JOIN #ops \r\nWHO #lobby \r\n")
	alice.Expect("JOIN #Ops alice \r\n")
	alice.Expect("WHO #Ops 1 alice \r\n")
	alice.Expect("WHO #lobby 0 \r\n")
	carol.Send("JOIN #ops \r\nJOIN #other \r\nJOIN #LOBBY \r\n")
	carol.Expect("FAIL JOIN #ops <not allowed> \r\n")
	carol.Expect("FAIL JOIN #other <no such group> \r\n")
	carol.Expect("JOIN #lobby carol \r\n")
	carol.Expect("WHO #lobby 1 carol \r\n")
}
