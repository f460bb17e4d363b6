package client_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// These tests run the client's version 2 over real TLS: against a
// messager server, and against the original server's double, which does
// not know HELLO.

var v2Users = servertest.Users{"alice": "pw1", "bob": "pw2", "carol": "pw3"}

// fastPresence makes the server tell presence changes within 50 ms.
func fastPresence(c *server.Config) { c.PresenceInterval = 50 * time.Millisecond }

func dialV2(t *testing.T, srv *servertest.Server, user string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS()}
	c, err := d.Login(ctx, user, v2Users[user])
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next event, failing the test after 5 s.
func next(t *testing.T, c *client.Conn) client.Event {
	t.Helper()
	type result struct {
		ev  client.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := c.Receive()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("receive: %v", r.err)
		}
		return r.ev
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for an event")
		return nil
	}
}

// expect checks the next event, ignoring its Time.
func expect(t *testing.T, c *client.Conn, want client.Event) {
	t.Helper()
	got := withoutTime(next(t, c))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s got %#v, want %#v", c.User(), got, want)
	}
}

func withoutTime(ev client.Event) client.Event {
	switch e := ev.(type) {
	case client.Relay:
		e.Time = time.Time{}
		return e
	case client.NotOnline:
		e.Time = time.Time{}
		return e
	case client.Fail:
		e.Time = time.Time{}
		return e
	case client.Presence:
		e.Time = time.Time{}
		return e
	case client.Who:
		e.Time = time.Time{}
		return e
	case client.GroupJoin:
		e.Time = time.Time{}
		return e
	case client.GroupPart:
		e.Time = time.Time{}
		return e
	}
	return ev
}

// expectMarker sends c's user a message from themself and expects it as
// the next event: nothing else was queued for c before it.
func expectMarker(t *testing.T, c *client.Conn, text string) {
	t.Helper()
	if err := c.Send(c.User(), text); err != nil {
		t.Fatal(err)
	}
	expect(t, c, client.Relay{From: c.User(), To: c.User(), Text: text})
}

func TestHelloRealServer(t *testing.T) {
	srv := servertest.Start(t, v2Users)
	d := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Login(ctx, "alice", "pw1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := protocol.Features{Presence: 100, Groups: 20, Members: 500}
	if c.Version() != 2 || c.Features() != want || d.Version1() || d.Dials() != 1 {
		t.Fatalf("version %d, features %+v, version 1 %v, %d dials; want 2, %+v, false, 1",
			c.Version(), c.Features(), d.Version1(), d.Dials(), want)
	}
	if !c.Offers(client.FeaturePresence) || !c.Offers(client.FeatureGroups) {
		t.Error("presence and groups not offered")
	}

	// A version-1 Dialer says no HELLO and gets a version-1 session: a
	// CNT that names nobody.
	d1 := &client.Dialer{Addr: srv.Addr, TLSConfig: srv.ClientTLS(), Version: 1}
	bob, err := d1.Login(ctx, "bob", "pw2")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if bob.Version() != 1 || bob.Features() != (protocol.Features{}) {
		t.Fatalf("version-1 dialer: version %d, features %+v", bob.Version(), bob.Features())
	}
	if err := bob.Send("nobody", "hi"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, client.NotOnline{LastTarget: "nobody"})
	var off *client.NotOfferedError
	if err := bob.Join("#team"); !errors.As(err, &off) || err.Error() != "this server does not offer groups" {
		t.Errorf("join on version 1: %v", err)
	}
}

// TestFallbackOnce: the original server answers HELLO with
// END * <incorrect protocol> and closes. The client connects once more
// and speaks version 1, and its reconnections never say HELLO again:
// exactly two connections for the first login, one for each later one.
func TestFallbackOnce(t *testing.T) {
	s := seedserver.Start(t, seedUsers, seedserver.Options{})
	d := &client.Dialer{Addr: s.Addr, TLSConfig: seedTLS(s)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.Login(ctx, "alice", "pw1")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if n := s.Connections(); n != 2 || d.Dials() != 2 || !d.Version1() {
		t.Fatalf("%d connections, %d dials, version 1 %v; want 2, 2, true", n, d.Dials(), d.Version1())
	}
	if c.Version() != 1 || c.Features() != (protocol.Features{}) {
		t.Fatalf("version %d, features %+v after the fallback", c.Version(), c.Features())
	}
	bob := mustDialSeed(t, s, "bob", client.Options{})
	if err := c.Send("bob", "hi"); err != nil {
		t.Fatal(err)
	}
	expectRelay(t, bob, "alice", "hi")

	// What version 1 lacks is refused before anything is sent.
	var off *client.NotOfferedError
	for name, err := range map[string]error{
		"who":        c.Who("*"),
		"watch":      c.Watch("bob"),
		"unwatch":    c.Unwatch("bob"),
		"unwatch *":  c.UnwatchAll(),
		"join":       c.Join("#team"),
		"part":       c.Part("#team"),
		"send group": c.SendGroup("#team", "hi"),
		"send #":     c.Send("#team", "hi"),
	} {
		if !errors.As(err, &off) {
			t.Errorf("%s on the original server: %v, want a NotOfferedError", name, err)
		}
	}
	if err := c.End(ctx); err != nil {
		t.Fatal(err)
	}

	// Reconnecting: one connection each, no HELLO.
	for i := 0; i < 3; i++ {
		c, err := d.Login(ctx, "alice", "pw1")
		if err != nil {
			t.Fatalf("login again: %v", err)
		}
		if err := c.End(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// bob's own Dial said HELLO too and fell back: two connections.
	if n := s.Connections(); n != 2+2+3 {
		t.Errorf("%d connections in all, want 7", n)
	}
	hellos := 0
	for _, q := range s.Queries() {
		if strings.HasPrefix(q.Raw, "HELLO") {
			hellos++
			if q.Raw != "HELLO 2 \r\n" {
				t.Errorf("HELLO sent as %q", q.Raw)
			}
		}
		if q.Garbled() {
			t.Errorf("the server read %q: not one query in the seed shape", q.Raw)
		}
	}
	if hellos != 2 {
		t.Errorf("%d HELLOs sent, want 2 (alice's first login, bob's)", hellos)
	}
}

// TestFallbackNotOnOtherErrors: only END * <incorrect protocol> in answer
// to HELLO means version 1; a refused connection is an error.
func TestFallbackNotOnOtherErrors(t *testing.T) {
	d := &client.Dialer{Addr: "127.0.0.1:1"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.Dial(ctx); err == nil || d.Version1() || d.Dials() != 1 {
		t.Fatalf("dial to a closed port: %v, version 1 %v, %d dials", err, d.Version1(), d.Dials())
	}
}

func TestNamedCNT(t *testing.T) {
	srv := servertest.Start(t, v2Users)
	alice := dialV2(t, srv, "alice")
	// Both queued at once: each CNT says which message it concerns.
	if err := alice.Queue("carol", "one"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Queue("nobody", "two"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.NotOnline{Target: "carol", LastTarget: "nobody"})
	expect(t, alice, client.NotOnline{Target: "nobody", LastTarget: "nobody"})
}

func TestPresence(t *testing.T) {
	srv := servertest.Start(t, v2Users, fastPresence)
	alice := dialV2(t, srv, "alice")
	if err := alice.Watch("bob", "carol"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Presence{On: false, Names: []string{"bob", "carol"}})
	bob := dialV2(t, srv, "bob")
	expect(t, alice, client.Presence{On: true, Names: []string{"bob"}})
	if err := alice.Who("*"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Who{Mask: "*", Count: 2, Names: []string{"alice", "bob"}})
	if err := alice.Who("b*"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Who{Mask: "b*", Count: 1, Names: []string{"bob"}})

	// Unwatched: bob's leaving is not told.
	if err := alice.Unwatch("bob"); err != nil {
		t.Fatal(err)
	}
	if err := bob.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // four presence rounds
	expectMarker(t, alice, "no news of bob")
	carol := dialV2(t, srv, "carol")
	expect(t, alice, client.Presence{On: true, Names: []string{"carol"}})
	if err := alice.UnwatchAll(); err != nil {
		t.Fatal(err)
	}
	carol.Close()
	time.Sleep(200 * time.Millisecond)
	expectMarker(t, alice, "no news of carol")

	// A long list goes over several lines of at most 32 names.
	var many []string
	for i := 0; i < 40; i++ {
		many = append(many, fmt.Sprintf("u%02d", i))
	}
	if err := alice.Watch(many...); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Presence{On: false, Names: many[:32]})
	expect(t, alice, client.Presence{On: false, Names: many[32:]})
}

func TestWatchListFull(t *testing.T) {
	srv := servertest.Start(t, v2Users, func(c *server.Config) { c.MaxWatch = 1 })
	alice := dialV2(t, srv, "alice")
	if alice.Features().Presence != 1 {
		t.Fatalf("features %+v", alice.Features())
	}
	if err := alice.Watch("bob", "carol"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Presence{On: false, Names: []string{"bob"}})
	expect(t, alice, client.Fail{Verb: "WATCH", Subject: "carol", Reason: protocol.ReasonWatchListFull})
}

func TestGroups(t *testing.T) {
	srv := servertest.Start(t, v2Users)
	alice, bob, carol := dialV2(t, srv, "alice"), dialV2(t, srv, "bob"), dialV2(t, srv, "carol")
	if err := alice.Join("#Team"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.GroupJoin{Group: "#Team", User: "alice"})
	expect(t, alice, client.Who{Mask: "#Team", Count: 1, Names: []string{"alice"}})
	if err := bob.Join("#team"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, client.GroupJoin{Group: "#Team", User: "bob"})
	expect(t, bob, client.Who{Mask: "#Team", Count: 2, Names: []string{"alice", "bob"}})
	expect(t, alice, client.GroupJoin{Group: "#Team", User: "bob"})

	if err := bob.SendGroup("#team", "hello all"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.Relay{From: "bob", To: "#Team", Text: "hello all", Group: "#Team"})
	if err := alice.Send("#TEAM", "hi bob"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, client.Relay{From: "alice", To: "#Team", Text: "hi bob", Group: "#Team"})
	expectMarker(t, alice, "not echoed")

	// Not a member: the server refuses, the session goes on.
	if err := carol.SendGroup("#team", "let me in"); err != nil {
		t.Fatal(err)
	}
	expect(t, carol, client.Fail{Verb: "MSG", Subject: "#team", Reason: protocol.ReasonNotMember})
	if err := carol.Part("#team"); err != nil {
		t.Fatal(err)
	}
	expect(t, carol, client.Fail{Verb: "PART", Subject: "#team", Reason: protocol.ReasonNotMember})

	if err := bob.Part("#team"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, client.GroupPart{Group: "#Team", User: "bob"})
	expect(t, alice, client.GroupPart{Group: "#Team", User: "bob"})
	// A member whose session ends leaves.
	if err := bob.Join("#team"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.GroupJoin{Group: "#Team", User: "bob"})
	bob.Close()
	expect(t, alice, client.GroupPart{Group: "#Team", User: "bob"})
}

func TestGroupsNotAllowed(t *testing.T) {
	srv := servertest.Start(t, v2Users, func(c *server.Config) { c.MaxGroups = 1 })
	alice := dialV2(t, srv, "alice")
	if err := alice.Join("#one"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Join("#two"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, client.GroupJoin{Group: "#one", User: "alice"})
	expect(t, alice, client.Who{Mask: "#one", Count: 1, Names: []string{"alice"}})
	ev := next(t, alice)
	f, ok := ev.(client.Fail)
	if !ok || f.Text() != "cannot join #two: too many groups" {
		t.Fatalf("second join: %#v", ev)
	}
}

// TestFeaturesOff: a version-2 server whose operator switched presence and
// groups off offers neither; the client refuses their queries itself.
func TestFeaturesOff(t *testing.T) {
	srv := servertest.Start(t, v2Users, func(c *server.Config) { c.NoPresence, c.Groups = true, server.GroupsOff })
	alice := dialV2(t, srv, "alice")
	if alice.Version() != 2 || alice.Features() != (protocol.Features{}) {
		t.Fatalf("version %d features %+v", alice.Version(), alice.Features())
	}
	var off *client.NotOfferedError
	if err := alice.Who("*"); !errors.As(err, &off) || off.Feature != client.FeaturePresence {
		t.Errorf("who: %v", err)
	}
	if err := alice.Join("#team"); !errors.As(err, &off) || off.Feature != client.FeatureGroups {
		t.Errorf("join: %v", err)
	}
	expectMarker(t, alice, "nothing was sent")
}

// TestV2Refused: arguments that are not valid are refused before anything
// is sent.
func TestV2Refused(t *testing.T) {
	srv := servertest.Start(t, v2Users)
	alice := dialV2(t, srv, "alice")
	var group *client.GroupError
	var mask *client.MaskError
	var name *client.NameError
	var tooLong *client.TooLongError
	for _, tt := range []struct {
		name string
		err  error
		ok   func(error) bool
	}{
		{"join without #", alice.Join("team"), func(err error) bool { return errors.As(err, &group) }},
		{"part with a space", alice.Part("#a b"), func(err error) bool { return errors.As(err, &group) }},
		{"group too long", alice.Join("#" + strings.Repeat("g", 33)), func(err error) bool { return errors.As(err, &group) }},
		{"send to a bad group", alice.Send("#", "hi"), func(err error) bool { return errors.As(err, &group) }},
		{"send group to a user", alice.SendGroup("bob", "hi"), func(err error) bool { return errors.As(err, &group) }},
		{"empty group message", alice.SendGroup("#team", "  "), func(err error) bool { return errors.Is(err, client.ErrEmptyMessage) }},
		{"group message too long", alice.SendGroup("#team", strings.Repeat("x", 5000)), func(err error) bool { return errors.As(err, &tooLong) }},
		{"control character", alice.SendGroup("#team", "a\x1bb"), func(err error) bool { return errors.Is(err, client.ErrControlCharacter) }},
		{"mask with a space", alice.Who("a b"), func(err error) bool { return errors.As(err, &mask) }},
		{"empty mask", alice.Who(""), func(err error) bool { return errors.As(err, &mask) }},
		{"watch nobody", alice.Watch(), func(err error) bool { return errors.Is(err, client.ErrNoNames) }},
		{"watch a bad name", alice.Watch("bob", "b@d"), func(err error) bool { return errors.As(err, &name) }},
		{"unwatch *", alice.Unwatch("*"), func(err error) bool { return errors.As(err, &name) }},
	} {
		if !tt.ok(tt.err) {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	expectMarker(t, alice, "nothing was sent")
}
