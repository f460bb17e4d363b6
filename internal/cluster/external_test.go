package cluster_test

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/messager/messager/internal/cluster"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// TestExternalNATS runs two nodes on an existing NATS server (as --nats
// URL does), reached over TCP with a token.
func TestExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, Authorization: "tok", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(ns.Shutdown)
	url := "nats://tok@" + ns.Addr().String()
	start := func(name string) (*servertest.Server, *cluster.Node) {
		n, err := cluster.New(cluster.Config{
			Name: "ext", NodeName: name, Connect: cluster.ConnectExternal(cluster.ExternalConfig{URL: url}),
			Heartbeat: testHeartbeat, PeerTimeout: testPeerTimeout,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		s := servertest.Start(t, testUsers, func(c *server.Config) { c.Cluster = n })
		if err := n.Attach(s.Server); err != nil {
			t.Fatal(err)
		}
		return s, n
	}
	a, na := start("a")
	b, nb := start("b")
	servertest.WaitFor(t, "the nodes to meet", func() bool { return len(na.Peers()) == 1 && len(nb.Peers()) == 1 })
	alice := a.Login(t, "alice", "pw-a")
	bob := b.Login(t, "bob", "pw-b")
	servertest.WaitFor(t, "bob known on a", func() bool { return na.Route([]byte("bob")).Remote != nil })
	alice.Send("MSG bob alice over an existing NATS\r\n")
	bob.Expect("RELAY bob alice over an existing NATS \r\n")
}
