package cluster_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/cluster"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// testSecret is the cluster secret of the test nodes.
var testSecret = []byte(strings.Repeat("s3cret-", 6))

var testUsers = servertest.Users{"alice": "pw-a", "bob": "pw-b", "carol": "pw-c", "dave": "pw-d"}

// Test nodes beat every 50 ms and give a silent node 400 ms.
const (
	testHeartbeat   = 50 * time.Millisecond
	testPeerTimeout = 400 * time.Millisecond
)

// testLogger logs to the test's output when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// node is one test node: an embedded NATS server, the cluster node and
// a messager server over real TLS.
type node struct {
	name string
	e    *cluster.Embedded
	n    *cluster.Node
	s    *servertest.Server
	once sync.Once
}

type nodeOpts struct {
	secret []byte
	users  servertest.Users
	server []servertest.Option
}

// startNode starts a node whose routes go to routes.
func startNode(t *testing.T, name string, o nodeOpts, routes ...string) *node {
	t.Helper()
	if o.secret == nil {
		o.secret = testSecret
	}
	if o.users == nil {
		o.users = testUsers
	}
	var rs []*url.URL
	for _, r := range routes {
		u, err := url.Parse("nats-route://" + r)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, u)
	}
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{
		Cluster: "test", NodeName: name, Listen: "127.0.0.1:0", Routes: rs,
		Secret: o.secret, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.New(cluster.Config{
		Name: "test", NodeName: name, Connect: e.Connect,
		Heartbeat: testHeartbeat, PeerTimeout: testPeerTimeout, Logger: testLogger(t),
	})
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	nd := &node{name: name, e: e, n: n}
	t.Cleanup(nd.close)
	opts := append([]servertest.Option{func(c *server.Config) {
		c.Cluster = n
		c.PresenceInterval = 50 * time.Millisecond
	}}, o.server...)
	nd.s = servertest.Start(t, o.users, opts...)
	if err := n.Attach(nd.s.Server); err != nil {
		t.Fatal(err)
	}
	return nd
}

// close stops the node as a clean shutdown does.
func (nd *node) close() {
	nd.once.Do(func() {
		if nd.s != nil {
			nd.s.Stop()
		}
		nd.n.Close()
		nd.e.Shutdown()
	})
}

// kill stops the node as a crash would: the routes drop, nobody is told.
func (nd *node) kill() {
	nd.once.Do(func() {
		nd.e.Shutdown()
		nd.s.Stop()
		nd.n.Close()
	})
}

func (nd *node) route() string { return nd.e.RouteAddr().String() }

// startCluster starts three nodes, B and C routed to A, and waits until
// each knows the other two.
func startCluster(t *testing.T) (a, b, c *node) {
	t.Helper()
	a = startNode(t, "a", nodeOpts{})
	b = startNode(t, "b", nodeOpts{}, a.route())
	c = startNode(t, "c", nodeOpts{}, a.route())
	waitPeers(t, 2, a, b, c)
	return a, b, c
}

func waitPeers(t *testing.T, want int, nodes ...*node) {
	t.Helper()
	servertest.WaitFor(t, fmt.Sprintf("every node to know %d others", want), func() bool {
		for _, nd := range nodes {
			if len(nd.n.Peers()) != want {
				return false
			}
		}
		return true
	})
}

// waitOnline waits until every node sees user online (or offline).
func waitOnline(t *testing.T, user string, online bool, nodes ...*node) {
	t.Helper()
	servertest.WaitFor(t, fmt.Sprintf("%s online=%v on every node", user, online), func() bool {
		for _, nd := range nodes {
			r := nd.n.Route([]byte(user))
			if (r.Local != nil || r.Remote != nil) != online {
				return false
			}
		}
		return true
	})
}

func TestCrossNodeRelay(t *testing.T) {
	a, b, c := startCluster(t)
	alice := a.s.Login(t, "alice", "pw-a")
	bob := b.s.Login(t, "bob", "pw-b")
	waitOnline(t, "bob", true, a, b, c)
	waitOnline(t, "alice", true, a, b, c)

	alice.Send("MSG bob alice hello from a" + "\r\n")
	bob.Expect("RELAY bob alice hello from a " + "\r\n")
	bob.Send("MSG alice bob hi back" + "\r\n")
	alice.Expect("RELAY alice bob hi back " + "\r\n")

	// CNT answers in the sender's order: the second and fourth MSG
	// have nobody online to go to.
	alice.Send("MSG bob alice one" + "\r\n")
	alice.Send("MSG carol alice two" + "\r\n")
	alice.Send("MSG bob alice three" + "\r\n")
	alice.Send("MSG dave alice four" + "\r\n")
	alice.Expect("CNT <user not online> " + "\r\n")
	alice.Expect("CNT <user not online> " + "\r\n")
	bob.Expect("RELAY bob alice one " + "\r\n")
	bob.Expect("RELAY bob alice three " + "\r\n")

	// Messages of one sender to one target stay in order.
	const n = 2000
	for i := range n {
		alice.Send(fmt.Sprintf("MSG bob alice m%d"+"\r\n", i))
	}
	for i := range n {
		bob.Expect(fmt.Sprintf("RELAY bob alice m%d "+"\r\n", i))
	}
}

func TestOneSessionAcrossNodes(t *testing.T) {
	a, b, c := startCluster(t)
	first := a.s.Login(t, "alice", "pw-a")
	waitOnline(t, "alice", true, a, b, c)
	viaA := c.n.Route([]byte("alice")).Remote
	second := b.s.Login(t, "alice", "pw-a")
	first.Expect("END <logged in elsewhere> " + "\r\n")
	first.ExpectClosed()
	servertest.WaitFor(t, "alice on b only", func() bool {
		return a.s.Server.Local().Lookup([]byte("alice")) == nil && b.s.Server.Local().Lookup([]byte("alice")) != nil
	})
	// c may hear of the new login after carol's message would leave it:
	// the message would then go to a, where alice is gone.
	servertest.WaitFor(t, "c routes alice to b", func() bool {
		r := c.n.Route([]byte("alice")).Remote
		return r != nil && r != viaA
	})
	carol := c.s.Login(t, "carol", "pw-c")
	waitOnline(t, "carol", true, b)
	carol.Send("MSG alice carol still here?" + "\r\n")
	second.Expect("RELAY alice carol still here? " + "\r\n")
}

// TestConcurrentLogins logs one user in on three nodes at once, 100
// times: exactly one session survives each round, and the others are
// told they logged in elsewhere.
func TestConcurrentLogins(t *testing.T) {
	a, b, c := startCluster(t)
	nodes := []*node{a, b, c}
	for round := range 100 {
		conns := make([]*servertest.Conn, 3)
		var wg sync.WaitGroup
		for i, nd := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns[i] = nd.s.DialConn(t)
			}()
		}
		wg.Wait()
		for _, cn := range conns {
			go cn.Send("AUTH alice pw-a \r\n")
		}
		servertest.WaitFor(t, fmt.Sprintf("round %d: one alice", round), func() bool {
			n := 0
			for _, nd := range nodes {
				if nd.s.Server.Local().Lookup([]byte("alice")) != nil {
					n++
				}
			}
			return n == 1
		})
		for i, cn := range conns {
			if line := cn.Line(); line != "ACCEPT alice \r\n" {
				t.Fatalf("round %d: login answered %q", round, line)
			}
			if nodes[i].s.Server.Local().Lookup([]byte("alice")) == nil {
				cn.Expect("END <logged in elsewhere> \r\n")
			}
		}
		for _, cn := range conns {
			cn.Conn.Close()
		}
		waitOnline(t, "alice", false, a, b, c)
	}
}

// loginV2 logs in to nd as user, speaking protocol version 2.
func loginV2(t *testing.T, nd *node, user, pw string) *servertest.Conn {
	t.Helper()
	c := nd.s.DialConn(t)
	c.Send("HELLO 2 \r\nAUTH " + user + " " + pw + " \r\n")
	if l := c.Line(); !strings.HasPrefix(l, "HELLO 2 ") {
		t.Fatalf("HELLO answered %q", l)
	}
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}

func TestPresenceAcrossNodes(t *testing.T) {
	a, b, c := startCluster(t)
	alice := loginV2(t, a, "alice", "pw-a")
	alice.Send("WATCH bob carol\r\n")
	alice.Expect("PRESENCE off bob carol \r\n")
	bob := b.s.Login(t, "bob", "pw-b")
	alice.Expect("PRESENCE on bob \r\n")
	carol := c.s.Login(t, "carol", "pw-c")
	alice.Expect("PRESENCE on carol \r\n")
	waitOnline(t, "carol", true, a)
	alice.Send("WHO *\r\n")
	alice.Expect("WHO * 3 alice bob carol \r\n")
	alice.Send("WHO bob\r\n")
	alice.Expect("WHO bob 1 bob \r\n")
	bob.Send("END\r\n")
	alice.Expect("PRESENCE off bob \r\n")
	_ = carol
}

// joinTeam has alice, then bob (on node b) join #team, once b knows of
// alice's membership, and checks what each is told.
func joinTeam(t *testing.T, b *node, alice, bob *servertest.Conn) {
	t.Helper()
	alice.Send("JOIN #team\r\n")
	alice.Expect("JOIN #team alice \r\n")
	alice.Expect("WHO #team 1 alice \r\n")
	servertest.WaitFor(t, "#team on b", func() bool { return b.s.Server.Groups()["#team"] == 1 })
	bob.Send("JOIN #team\r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Expect("WHO #team 2 alice bob \r\n")
	alice.Expect("JOIN #team bob \r\n")
}

func TestGroupsAcrossNodes(t *testing.T) {
	a, b, c := startCluster(t)
	alice := loginV2(t, a, "alice", "pw-a")
	bob := loginV2(t, b, "bob", "pw-b")
	carol := loginV2(t, c, "carol", "pw-c")
	joinTeam(t, b, alice, bob)
	servertest.WaitFor(t, "#team of 2 on c", func() bool { return c.s.Server.Groups()["#team"] == 2 })
	carol.Send("JOIN #team\r\n")
	carol.Expect("JOIN #team carol \r\n")
	carol.Expect("WHO #team 3 alice bob carol \r\n")
	alice.Expect("JOIN #team carol \r\n")
	bob.Expect("JOIN #team carol \r\n")

	// Messages of one sender stay in order on every node.
	for i := range 200 {
		alice.Send(fmt.Sprintf("MSG #team alice g%d\r\n", i))
	}
	for i := range 200 {
		bob.Expect(fmt.Sprintf("RELAY #team alice g%d \r\n", i))
		carol.Expect(fmt.Sprintf("RELAY #team alice g%d \r\n", i))
	}
	carol.Send("MSG #team carol from c\r\n")
	alice.Expect("RELAY #team carol from c \r\n")
	bob.Expect("RELAY #team carol from c \r\n")

	bob.Send("PART #team\r\n")
	bob.Expect("PART #team bob \r\n")
	alice.Expect("PART #team bob \r\n")
	carol.Expect("PART #team bob \r\n")
	// A member whose session ends is gone from the group everywhere.
	carol.Send("END\r\n")
	alice.Expect("PART #team carol \r\n")
	alice.Send("WHO #team\r\n")
	alice.Expect("WHO #team 1 alice \r\n")
}

// TestNodeKilled kills a node: its users are offline on the others
// within the peer timeout, and messages to them are answered CNT.
func TestNodeKilled(t *testing.T) {
	a, b, c := startCluster(t)
	alice := loginV2(t, a, "alice", "pw-a")
	bob := loginV2(t, b, "bob", "pw-b")
	waitOnline(t, "bob", true, a)
	alice.Send("WATCH bob\r\n")
	alice.Expect("PRESENCE on bob \r\n")
	alice.Send("JOIN #team\r\n")
	alice.Line()
	alice.Line()
	servertest.WaitFor(t, "#team on b", func() bool { return b.s.Server.Groups()["#team"] == 1 })
	bob.Send("JOIN #team\r\n")
	alice.Expect("JOIN #team bob \r\n")
	started := time.Now()
	b.kill()
	// The PART is told at once, the presence change at the next round.
	got := map[string]bool{alice.Line(): true, alice.Line(): true}
	if !got["PRESENCE off bob \r\n"] || !got["PART #team bob \r\n"] {
		t.Errorf("after the kill alice got %v", got)
	}
	if d := time.Since(started); d > 5*testPeerTimeout {
		t.Errorf("bob went offline %v after the kill", d)
	}
	waitOnline(t, "bob", false, a, c)
	alice.Send("MSG bob alice are you there\r\n")
	alice.Expect("CNT bob <user not online> \r\n")
	waitPeers(t, 1, a, c)

	// A node that comes back (a new process: a new id) rejoins.
	b2 := startNode(t, "b2", nodeOpts{}, a.route())
	waitPeers(t, 2, a, b2, c)
	bob = loginV2(t, b2, "bob", "pw-b")
	alice.Expect("PRESENCE on bob \r\n")
	alice.Send("MSG bob alice welcome back\r\n")
	bob.Expect("RELAY bob alice welcome back \r\n")
}

// TestSlowReceiverOnOtherNode floods a receiver that does not read: it
// is closed as too slow on its node, and the sender goes on, its other
// messages delivered.
func TestSlowReceiverOnOtherNode(t *testing.T) {
	small := nodeOpts{server: []servertest.Option{func(c *server.Config) { c.MaxQueue = server.MinMaxQueue }}}
	a := startNode(t, "a", small)
	b := startNode(t, "b", small, a.route())
	waitPeers(t, 1, a, b)
	alice := a.s.Login(t, "alice", "pw-a")
	bob := b.s.Login(t, "bob", "pw-b") // never reads
	carol := b.s.Login(t, "carol", "pw-c")
	waitOnline(t, "bob", true, a)
	waitOnline(t, "carol", true, a)
	text := strings.Repeat("x", 1000)
	for range 2000 {
		alice.Send("MSG bob alice " + text + "\r\n")
	}
	servertest.WaitFor(t, "bob closed as too slow", func() bool {
		return b.s.Server.Stats().CloseCount("too_slow") == 1
	})
	alice.Send("MSG carol alice after the flood\r\n")
	carol.Expect("RELAY carol alice after the flood \r\n")
	_ = bob
}

// TestWrongSecretCannotJoin starts a node with another secret: its
// routes are refused, and it never becomes part of the cluster.
func TestWrongSecretCannotJoin(t *testing.T) {
	a := startNode(t, "a", nodeOpts{})
	b := startNode(t, "b", nodeOpts{}, a.route())
	waitPeers(t, 1, a, b)
	x := startNode(t, "x", nodeOpts{secret: []byte(strings.Repeat("other-", 8))}, a.route())
	x.s.Login(t, "dave", "pw-d")
	time.Sleep(4 * testPeerTimeout)
	if got := len(x.n.Peers()); got != 0 {
		t.Errorf("a node with the wrong secret knows %d nodes", got)
	}
	if got := len(a.n.Peers()); got != 1 {
		t.Errorf("a knows %d nodes, want 1", got)
	}
	waitOnline(t, "dave", false, a, b)
}

// TestHandOverAcrossNodes logs a user in again on another node: a
// version-2 login takes the groups and the watch list over silently, as
// on one node; a version-1 login does not, and the others see the user
// leave.
func TestHandOverAcrossNodes(t *testing.T) {
	a, b, c := startCluster(t)
	alice := loginV2(t, a, "alice", "pw-a")
	bob := loginV2(t, b, "bob", "pw-b")
	joinTeam(t, b, alice, bob)
	alice.Send("WATCH dave\r\n")
	alice.Expect("PRESENCE off dave \r\n")

	alice2 := loginV2(t, c, "alice", "pw-a")
	alice.Expect("END <logged in elsewhere> \r\n")
	servertest.WaitFor(t, "alice a member on c", func() bool {
		return c.s.Server.SessionInfos("alice") != nil && len(c.s.Server.SessionInfos("alice")[0].Groups) == 1
	})
	// bob's node learns of the move a moment later; what it sends to
	// the group before that goes to alice's old node and is lost there.
	for i := 0; ; i++ {
		bob.Send(fmt.Sprintf("MSG #team bob still with us? %d\r\n", i))
		_ = alice2.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if line, err := alice2.R.ReadString('\n'); err == nil {
			if !strings.HasPrefix(line, "RELAY #team bob still with us? ") {
				t.Fatalf("alice on c got %q", line)
			}
			break
		}
		if i == 100 {
			t.Fatal("the group's messages never reached alice on c")
		}
	}
	// bob saw nothing of it: his next line answers his WHO.
	bob.Send("WHO #team\r\n")
	bob.Expect("WHO #team 2 alice bob \r\n")
	alice2.Send("WHO #team\r\n")
	alice2.Expect("WHO #team 2 alice bob \r\n")
	loginV2(t, a, "dave", "pw-d")
	alice2.Expect("PRESENCE on dave \r\n")

	// A version-1 login does not take them: bob sees alice leave.
	b.s.Login(t, "alice", "pw-a")
	alice2.Expect("END <logged in elsewhere> \r\n")
	bob.Expect("PART #team alice \r\n")
	bob.Send("WHO #team\r\n")
	bob.Expect("WHO #team 1 bob \r\n")
}
