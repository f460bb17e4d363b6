package server_test

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// forwarder is a Forwarder standing in for another node: it keeps what it
// is given, and takes messages only for users it says are online there.
type forwarder struct {
	mu     sync.Mutex
	online map[string]bool
	got    []string
}

func (f *forwarder) Forward(target, sender, text []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.online[string(target)] {
		return false
	}
	f.got = append(f.got, string(target)+" "+string(sender)+" "+string(text))
	return true
}

func (f *forwarder) ForwardGroup(group string, sender, text []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, group+" "+string(sender)+" "+string(text))
	return true
}

// elsewhere routes names held by the forwarder there, the rest locally.
type elsewhere struct {
	local func() *server.Registry
	fwd   *forwarder
}

func (e *elsewhere) Route(name []byte) server.Route {
	if strings.HasPrefix(string(name), "remote") {
		return server.Route{Remote: e.fwd}
	}
	return e.local().Route(name)
}

// TestRouterForwards: a Router in front of the local registry sends
// messages for users elsewhere to its Forwarder, in order, and a refused
// forward is answered CNT, exactly as a user who is not online.
func TestRouterForwards(t *testing.T) {
	fwd := &forwarder{online: map[string]bool{"remote1": true}}
	var srv *servertest.Server
	r := &elsewhere{local: func() *server.Registry { return srv.Server.Local() }, fwd: fwd}
	srv = servertest.Start(t, testUsers, func(c *server.Config) { c.Router = r })
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	alice.Send("MSG remote1 alice one \r\nMSG bob alice local \r\nMSG remote1 alice two \r\nMSG remote2 alice nobody \r\n")
	alice.Expect("CNT <user not online> \r\n")
	bob.Expect("RELAY bob alice local \r\n")
	fwd.mu.Lock()
	defer fwd.mu.Unlock()
	if want := []string{"remote1 alice one", "remote1 alice two"}; strings.Join(fwd.got, "|") != strings.Join(want, "|") {
		t.Fatalf("forwarded %q, want %q", fwd.got, want)
	}
}

// TestPlainTransport: the login and the session run over any line
// transport; here a plain TCP socket with no TLS at all.
func TestPlainTransport(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p := srv.Server.Admit(c); p != nil {
				go p.Serve(c.(*net.TCPConn))
			}
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("HELLO 2 \r\nAUTH alice pw-alice \r\nMSG alice alice over plain TCP \r\nEND \r\n")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, l)
	}
	want := []string{hello2, "ACCEPT alice \r\n", "RELAY alice alice over plain TCP \r\n", "END <end accepted> \r\n"}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("got %q, want %q", got, want)
	}
}
