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
	secret      []byte
	noAdvertise bool
	users       servertest.Users
	server      []servertest.Option
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
		Secret: o.secret, NoAdvertise: o.noAdvertise, Logger: testLogger(t),
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
	second := b.s.Login(t, "alice", "pw-a")
	first.Expect("END <logged in elsewhere> " + "\r\n")
	first.ExpectClosed()
	servertest.WaitFor(t, "alice on b only", func() bool {
		return a.s.Server.Local().Lookup([]byte("alice")) == nil && b.s.Server.Local().Lookup([]byte("alice")) != nil
	})
	carol := c.s.Login(t, "carol", "pw-c")
	waitOnline(t, "carol", true, b)
	carol.Send("MSG alice carol still here?" + "\r\n")
	second.Expect("RELAY alice carol still here? " + "\r\n")
}
