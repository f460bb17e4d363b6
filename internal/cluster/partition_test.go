package cluster_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/server/servertest"
)

// proxy forwards TCP connections to a target until it is cut: then its
// connections close and new ones are closed at once, until it heals. It
// stands between two nodes' routes to make a partition.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards cut and conns
	cut    bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// setCut cuts (true) or heals (false) the link.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestPartition cuts the route between two nodes (B's route to A goes
// through a proxy) and heals it: each side sees the other's users go
// offline within the peer timeout and answers CNT for them, a user may
// log in on both sides meanwhile, and after the heal everyone is online
// everywhere again and only the later of the two logins is left.
func TestPartition(t *testing.T) {
	a := startNode(t, "a", nodeOpts{})
	toA := startProxy(t, a.route())
	b := startNode(t, "b", nodeOpts{}, toA.addr())
	waitPeers(t, 1, a, b)

	alice := loginV2(t, a, "alice", "pw-a")
	bob := loginV2(t, b, "bob", "pw-b")
	waitOnline(t, "alice", true, b)
	waitOnline(t, "bob", true, a)

	toA.setCut(true)
	waitOnline(t, "alice", false, b)
	waitOnline(t, "bob", false, a)
	bob.Send("MSG alice bob can you hear me\r\n")
	bob.Expect("CNT alice <user not online> \r\n")
	alice.Send("MSG bob alice anyone?\r\n")
	alice.Expect("CNT bob <user not online> \r\n")

	// dave logs in on both sides: first on A, then on B.
	daveA := loginV2(t, a, "dave", "pw-d")
	time.Sleep(10 * time.Millisecond)
	loginV2(t, b, "dave", "pw-d")

	toA.setCut(false)
	waitPeers(t, 1, a, b)
	waitOnline(t, "alice", true, b)
	waitOnline(t, "bob", true, a)
	daveA.Expect("END <logged in elsewhere> \r\n")
	servertest.WaitFor(t, "one dave, on b", func() bool {
		return a.s.Server.Local().Lookup([]byte("dave")) == nil && b.s.Server.Local().Lookup([]byte("dave")) != nil
	})
	bob.Send("MSG alice bob back again\r\n")
	alice.Expect("RELAY alice bob back again \r\n")
}
