package client_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/client/seedserver"
	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/trust"
)

func TestParseServers(t *testing.T) {
	port := strconv.Itoa(protocol.DefaultPort)
	tests := []struct {
		in   string
		want []string
		err  string // a part of the error; empty when none is wanted
	}{
		{in: "a.example:1", want: []string{"a.example:1"}},
		{in: "a:18443,b:18443,c:18443", want: []string{"a:18443", "b:18443", "c:18443"}},
		{in: " a:1 , b:2 ", want: []string{"a:1", "b:2"}},
		{in: "localhost", want: []string{"localhost:" + port}},
		{in: "a,b:2", want: []string{"a:" + port, "b:2"}},
		{in: "127.0.0.1:1,[::1]:1", want: []string{"127.0.0.1:1", "[::1]:1"}},
		{in: "::1", want: []string{"[::1]:" + port}},
		{in: "[::1]", want: []string{"[::1]:" + port}},
		{in: "fe80::1%eth0", want: []string{"[fe80::1%eth0]:" + port}},
		{in: "a:018443", want: []string{"a:18443"}},
		{in: "bücher.example:1", want: []string{"bücher.example:1"}},

		{in: "", err: "no server address"},
		{in: "  ", err: "no server address"},
		{in: "a:1,,b:2", err: `address 2 of "a:1,,b:2" is empty`},
		{in: "a:1,", err: `address 2 of "a:1," is empty`},
		{in: ",a:1", err: `address 1 of ",a:1" is empty`},
		{in: "a:1, ,b:2", err: "address 2 of"},
		{in: "a:", err: `address "a:": no port after the colon`},
		{in: "a:1,b:", err: `address "b:": no port after the colon`},
		{in: "[::1]:", err: "no port after the colon"},
		{in: ":18443", err: `address ":18443": no host before the port`},
		{in: "a:x", err: "the port must be a number from 1 to 65535"},
		{in: "a:0", err: "the port must be a number from 1 to 65535"},
		{in: "a:65536", err: "the port must be a number from 1 to 65535"},
		{in: "a:+1", err: "the port must be a number from 1 to 65535"},
		{in: "a:1,a:1", err: `address "a:1" is listed twice`},
		{in: "a:1,b:2,A:1", err: `addresses "a:1" and "A:1" are the same server`},
		{in: "a,a:" + port, err: "are the same server"},
		{in: "[::1]:5,[0:0::1]:5", err: "are the same server"},
		{in: "a b:1", err: `address "a b:1": want HOST:PORT`},
		{in: "https://a:1", err: "want HOST:PORT"},
		{in: "alice@a:1", err: "want HOST:PORT"},
		{in: "a/b", err: "want HOST:PORT"},
		{in: "a:b:c", err: "an IPv6 address with a port goes in brackets"},
		{in: "[a]", err: "brackets are for IPv6 addresses only"},
		{in: "a\x1b[2J:1", err: "want HOST:PORT"},
		{in: "a\u202e:1", err: "want HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := client.ParseServers(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseServers(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseServers(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzParseServers: what parses is a list of dialable HOST:PORT with no
// two alike, and the list written back with commas parses to itself.
func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"a:1", "a:1,b:2", "a,B:18443", "::1,[::2]:3", " x , y ", "a:1,,b", "a:", "[::1]", "a:1,A:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		addrs, err := client.ParseServers(list)
		if err != nil {
			return
		}
		if len(addrs) == 0 {
			t.Fatalf("ParseServers(%q): no address and no error", list)
		}
		for _, a := range addrs {
			host, port, err := net.SplitHostPort(a)
			if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				t.Fatalf("ParseServers(%q) gave %q", list, a)
			}
			if strings.ContainsAny(a, ", \t\n") || client.Escape(a) != a {
				t.Fatalf("ParseServers(%q) gave %q", list, a)
			}
		}
		again, err := client.ParseServers(strings.Join(addrs, ","))
		if err != nil || !reflect.DeepEqual(again, addrs) {
			t.Fatalf("ParseServers(%q) = %q, but its join parses to %q, %v", list, addrs, again, err)
		}
	})
}

// closedAddr is an address on 127.0.0.1 where nothing listens: a dead
// node.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// countingListener accepts connections and closes them at once,
// counting them: a node that must not be tried.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

// serversOf returns Servers over the test servers and other addresses
// (given as strings, dialled with no certificate to trust), in order.
func serversOf(nodes ...any) *client.Servers {
	var dialers []*client.Dialer
	for _, n := range nodes {
		switch n := n.(type) {
		case *servertest.Server:
			dialers = append(dialers, &client.Dialer{Addr: n.Addr, TLSConfig: n.ClientTLS()})
		case *seedserver.Server:
			dialers = append(dialers, &client.Dialer{Addr: n.Addr, TLSConfig: seedTLS(n)})
		case string:
			dialers = append(dialers, &client.Dialer{Addr: n})
		default:
			panic("serversOf: " + reflect.TypeOf(n).String())
		}
	}
	return client.NewServers(dialers...)
}

// loginAs is a Round's Login for user with the password of users.
func loginAs(user string) func(context.Context, *client.Conn) error {
	return func(ctx context.Context, c *client.Conn) error { return c.Login(ctx, user, users[user]) }
}

// reports collects what a round reports.
type reports []*client.Failure

func (r *reports) add(f *client.Failure) { *r = append(*r, f) }

func connectRound(t *testing.T, s *client.Servers, r client.Round) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Connect(ctx, r)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestServersFirstDead: the first address is a closed port, the second a
// real server over TLS: the login lands on the second, and the first is
// reported once, with why and what comes next.
func TestServersFirstDead(t *testing.T) {
	dead := closedAddr(t)
	srv := servertest.Start(t, users)
	s := serversOf(dead, srv)
	var got reports
	c, err := connectRound(t, s, client.Round{Login: loginAs("alice"), Report: got.add})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if c.Addr() != srv.Addr || c.User() != "alice" || s.Last() != srv.Addr {
		t.Fatalf("connected to %s as %q (last %s), want %s as alice", c.Addr(), c.User(), s.Last(), srv.Addr)
	}
	var ce *client.ConnectError
	if len(got) != 1 || got[0].Addr != dead || got[0].Next != srv.Addr || !errors.As(got[0].Err, &ce) {
		t.Fatalf("reports %v, want the dead address's failure, then %s", got, srv.Addr)
	}
	// A failure to connect names the address itself: once.
	if text := got[0].Error(); strings.Count(text, dead) != 2 || !strings.HasPrefix(text, "connect to "+dead) {
		t.Errorf("report %q", text)
	}

	// The session works.
	if err := c.Send("alice", "to myself"); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Receive(); err != nil || ev.(client.Relay).Text != "to myself" {
		t.Fatalf("receive %v, %v", ev, err)
	}
}

// TestServersReconnectToOther: a round after a session starts with the
// server after the one of that session, so that the server that went
// away is tried last, not first.
func TestServersReconnectToOther(t *testing.T) {
	a := servertest.Start(t, users)
	b := servertest.Start(t, users)
	c := servertest.Start(t, users)
	s := serversOf(a, b, c)
	r := client.Round{Login: loginAs("alice")}

	conn, err := connectRound(t, s, r)
	if err != nil || conn.Addr() != a.Addr {
		t.Fatalf("first round: %v, %v; want %s", conn, err, a.Addr)
	}
	// A stale connection before its login is replaced on the same node.
	again, err := connectRound(t, s, client.Round{Stay: true})
	if err != nil || again.Addr() != a.Addr {
		t.Fatalf("round that stays: %v, %v; want %s", again, err, a.Addr)
	}
	again.Close()

	// a shuts down: the session ends, and the next round goes to b.
	a.Stop()
	waitEnd(t, conn)
	conn, err = connectRound(t, s, r)
	if err != nil || conn.Addr() != b.Addr {
		t.Fatalf("after a: %v, %v; want %s", conn, err, b.Addr)
	}
	// b goes away too: c is next, not a (dead) and not b.
	b.Stop()
	waitEnd(t, conn)
	var got reports
	r.Report = got.add
	conn, err = connectRound(t, s, r)
	if err != nil || conn.Addr() != c.Addr || len(got) != 0 {
		t.Fatalf("after b: %v, %v, reports %v; want %s at once", conn, err, got, c.Addr)
	}
	// c goes away: a and b are dead, and the round ends with c.
	c.Stop()
	waitEnd(t, conn)
	conn, err = connectRound(t, s, r)
	var none *client.ServersError
	if !errors.As(err, &none) || conn != nil {
		t.Fatalf("all down: %v, %v; want a ServersError", conn, err)
	}
	var order []string
	for _, f := range none.Failures {
		order = append(order, f.Addr)
	}
	if want := []string{a.Addr, b.Addr, c.Addr}; !reflect.DeepEqual(order, want) {
		t.Errorf("tried %v, want %v", order, want)
	}
	if !client.Retryable(err) {
		t.Errorf("servers that are down: not retryable")
	}
	if none.Last().Addr != c.Addr || len(got) != 3 || got[2].Next != "" || got[0].Next != b.Addr {
		t.Errorf("last %v, reports %v", none.Last(), got)
	}
}

// waitEnd waits until the session of c ends.
func waitEnd(t *testing.T, c *client.Conn) {
	t.Helper()
	for {
		ev, err := c.Receive()
		if _, end := ev.(client.End); end || err != nil {
			return
		}
	}
}

// TestServersReportOnce: a server that stays down is reported once, not
// every round, until a connection is made.
func TestServersReportOnce(t *testing.T) {
	dead1, dead2 := closedAddr(t), closedAddr(t)
	s := serversOf(dead1, dead2)
	var got reports
	r := client.Round{Login: loginAs("alice"), Report: got.add}
	for i := 0; i < 3; i++ {
		if _, err := connectRound(t, s, r); err == nil {
			t.Fatal("connected to nothing")
		}
	}
	if len(got) != 2 || got[0].Addr != dead1 || got[1].Addr != dead2 {
		t.Fatalf("reports %v, want each address once", got)
	}
}

// TestServersRefusalIsFinal: a refused login ends the round at once:
// another node would refuse the same password, and a user already online
// must not be fought for from node to node.
func TestServersRefusalIsFinal(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv := servertest.Start(t, users)
		other, accepted := countingListener(t)
		s := serversOf(srv, other)
		login := func(ctx context.Context, c *client.Conn) error { return c.Login(ctx, "alice", "wrong") }
		_, err := connectRound(t, s, client.Round{Login: login})
		var end *client.EndError
		if !errors.As(err, &end) || end.Reason != protocol.ReasonBadLogin {
			t.Fatalf("err %v, want the refusal", err)
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("the next node got %d connections", n)
		}
	})
	t.Run("already online", func(t *testing.T) {
		seed := seedserver.Start(t, seedUsers, seedserver.Options{})
		mustDialSeed(t, seed, "alice", client.Options{})
		other, accepted := countingListener(t)
		s := serversOf(seed, other)
		_, err := connectRound(t, s, client.Round{Login: loginAs("alice")})
		var end *client.EndError
		if !errors.As(err, &end) || end.Reason != client.ReasonAlreadyOnline || client.Retryable(err) {
			t.Fatalf("err %v, want END <user already online>, final", err)
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("the next node got %d connections", n)
		}
	})
}

// TestServersCertificates: every node has its own certificate. A pinned
// list accepts any of its fingerprints on any node; a node whose
// certificate is in none is passed over, and when every node is, the
// round is not worth repeating.
func TestServersCertificates(t *testing.T) {
	a := servertest.Start(t, users)
	b := servertest.Start(t, users)
	c := servertest.Start(t, users)
	dialers := func(pins string) *client.Servers {
		t.Helper()
		addrs := []string{a.Addr, b.Addr}
		vs, err := trust.NewList(addrs, trust.Options{Fingerprint: pins})
		if err != nil {
			t.Fatal(err)
		}
		var ds []*client.Dialer
		for i, v := range vs {
			ds = append(ds, &client.Dialer{Addr: addrs[i], TLSConfig: v.TLSConfig()})
		}
		return client.NewServers(ds...)
	}

	// Both pinned: a, then after a session there, b.
	s := dialers(a.Fingerprint + "," + b.Fingerprint)
	r := client.Round{Login: loginAs("alice")}
	if conn, err := connectRound(t, s, r); err != nil || conn.Addr() != a.Addr {
		t.Fatalf("pinned a: %v, %v", conn, err)
	}
	if conn, err := connectRound(t, s, r); err != nil || conn.Addr() != b.Addr {
		t.Fatalf("pinned b: %v, %v", conn, err)
	}

	// Only b pinned: a's certificate is refused, loudly, and b is used.
	s = dialers(b.Fingerprint)
	var got reports
	r.Report = got.add
	conn, err := connectRound(t, s, r)
	var pin *trust.PinError
	if err != nil || conn.Addr() != b.Addr || len(got) != 1 || !errors.As(got[0].Err, &pin) || pin.Got != a.Fingerprint {
		t.Fatalf("b pinned: %v, %v, reports %v", conn, err, got)
	}

	// Neither: no round would ever do.
	s = dialers(c.Fingerprint)
	_, err = connectRound(t, s, client.Round{Login: loginAs("alice")})
	var none *client.ServersError
	if !errors.As(err, &none) || len(none.Failures) != 2 || client.Retryable(err) {
		t.Fatalf("none pinned: %v, retryable %v", err, client.Retryable(err))
	}
}

// TestServersAgain: Again may dial a node once more (after a person
// trusted it), or end the round.
func TestServersAgain(t *testing.T) {
	dead := closedAddr(t)
	srv := servertest.Start(t, users)
	s := serversOf(dead, srv)
	var asked []string
	_, err := connectRound(t, s, client.Round{Again: func(addr string, err error) (bool, error) {
		asked = append(asked, addr)
		return false, errors.New("no")
	}})
	if err == nil || err.Error() != "no" || !reflect.DeepEqual(asked, []string{dead}) {
		t.Fatalf("Again's error: %v, asked %v", err, asked)
	}
	asked = nil
	c, err := connectRound(t, s, client.Round{Again: func(addr string, err error) (bool, error) {
		asked = append(asked, addr)
		return true, nil
	}})
	if err != nil || c.Addr() != srv.Addr || !reflect.DeepEqual(asked, []string{dead}) {
		t.Fatalf("Again true: %v, %v, asked %v", c, err, asked)
	}
}

// TestServersBackoffBetweenRounds: reconnecting over two dead nodes waits
// before every round, and each round tries each node once: no node is
// tried more often than one dead server alone would be.
func TestServersBackoffBetweenRounds(t *testing.T) {
	d1 := &client.Dialer{Addr: closedAddr(t)}
	d2 := &client.Dialer{Addr: closedAddr(t)}
	s := client.NewServers(d1, d2)
	clock := &virtualClock{now: time.Unix(1000, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dialsAtSleep []int64
	b := &client.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.999999 },
		Now: clock.Now, Sleep: func(ctx context.Context, d time.Duration) error {
			dialsAtSleep = append(dialsAtSleep, d1.Dials()+d2.Dials())
			if len(dialsAtSleep) == 5 {
				cancel()
			}
			return clock.Sleep(ctx, d)
		}}
	notices := 0
	_, err := client.Reconnect(ctx, b, func(ctx context.Context) (*client.Conn, error) {
		return s.Connect(ctx, client.Round{Login: loginAs("alice")})
	}, func(err error, wait time.Duration) {
		var none *client.ServersError
		if !errors.As(err, &none) {
			t.Errorf("notified of %v, want a ServersError", err)
		}
		notices++
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reconnect: %v", err)
	}
	if want := []int64{0, 2, 4, 6, 8}; !reflect.DeepEqual(dialsAtSleep, want) {
		t.Errorf("dials before each wait %v, want %v", dialsAtSleep, want)
	}
	if d1.Dials() != 4 || d2.Dials() != 4 || notices != 4 {
		t.Errorf("dials %d and %d, %d notices; want 4, 4, 4", d1.Dials(), d2.Dials(), notices)
	}
	want := []time.Duration{100, 200, 400, 800, 1000}
	for i, d := range clock.slept {
		if d.Round(10*time.Millisecond) != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", clock.slept, want)
		}
	}
}

// virtualClock is a Backoff's clock that sleeps by moving time on.
type virtualClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *virtualClock) Now() time.Time { return c.now }

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}
