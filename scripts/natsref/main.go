// Command natsref is the reference load against nats-server for
// messager's bench, in two shapes:
//
//   - fan-out (--subscribers N): one publisher sends to one subject, N
//     subscribers receive it, with the same window, payload, counting and
//     report as "messager bench --group-size N" (a message is done when
//     its last subscriber has it);
//   - pairs (--pairs N): N publishers each send to a subject of its own,
//     which one subscriber each receives, as "messager bench --pairs N"
//     does (window per publisher, the pairs mode's report).
//
// It connects over TLS (--transport tls, NATS's own TLS listener) or over
// nats-server's WebSocket listener (--transport ws, wss://). With
// --server-b the subscribers connect to a second node of a NATS cluster,
// the publishers to --server, and --server-pid-b counts that node's CPU
// with the first's. It speaks NATS's text protocol itself, through the
// same line reader (and, over WebSocket, the same WebSocket client) as
// the messager bench, so that both loads cost their client alike; the
// figures to compare are the servers'.
//
//	natsref --server 127.0.0.1:4222 --server-pid PID --ca cert.pem --subscribers 100
//	natsref --server 127.0.0.1:4223 --server-pid PID --ca cert.pem --pairs 100 --transport ws
//
// The exit status is 1 when deliveries were lost or out of order, or a
// connection failed; 2 for bad flags.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/messager/messager/internal/bench"
	"github.com/messager/messager/internal/protocol"
)

// subject is the one subject of the fan-out load; a pairs load has a
// subject per pair, and one more per pair to tell that the pair's
// subscription has reached the publisher's node.
const (
	subject      = "bench.group"
	pairSubject  = "bench.pair."
	readySubject = "bench.ready."
)

// Connections are opened this many at a time.
const dialConcurrency = 8

// readBuffer is each connection's read buffer under TLS, as in the
// messager bench: one read takes every record waiting in the socket.
const readBuffer = 64 << 10

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	server      string
	pid         int
	serverB     string
	pidB        int
	transport   string
	ca          string
	insecure    bool
	subscribers int
	pairs       int
	size        int
	window      int
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	asJSON      bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natsref", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.server, "server", "127.0.0.1:4222", "host:port of the NATS server")
	fs.IntVar(&o.pid, "server-pid", 0, "process id of the NATS server, for its CPU time and memory")
	fs.StringVar(&o.serverB, "server-b", "", "host:port of a second node of the --server's cluster, for the subscribers (pairs only)")
	fs.IntVar(&o.pidB, "server-pid-b", 0, "process id of the --server-b, whose CPU time and memory count with the --server's")
	fs.StringVar(&o.transport, "transport", bench.TransportTLS, "tls (NATS's TLS listener) or ws (its WebSocket listener, wss://)")
	fs.StringVar(&o.ca, "ca", "", "PEM certificate to trust for the server (its self-signed certificate)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not check the server's certificate")
	fs.IntVar(&o.subscribers, "subscribers", 100, "fan-out: subscribers, each its own connection")
	fs.IntVar(&o.pairs, "pairs", 0, "pairs of publisher and subscriber, each pair a subject of its own (instead of the fan-out)")
	fs.IntVar(&o.size, "size", bench.DefaultSize, "bytes of payload per message")
	fs.IntVar(&o.window, "window", bench.DefaultWindow, "most messages in flight")
	fs.DurationVar(&o.duration, "duration", bench.DefaultDuration, "measured time")
	fs.DurationVar(&o.warmup, "warmup", bench.DefaultWarmup, "time sending before measuring")
	fs.DurationVar(&o.drain, "drain", bench.DefaultDrain, "longest wait for messages in flight at the end")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natsref: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := o.check(set); err != nil {
		fmt.Fprintf(stderr, "natsref: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, &o)
	if err != nil {
		fmt.Fprintf(stderr, "natsref: %v\n", err)
		return 1
	}
	if o.asJSON {
		err = json.NewEncoder(stdout).Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "natsref: %v\n", err)
		return 1
	}
	if rep.Lost > 0 || rep.OutOfOrder > 0 || rep.Errors > 0 {
		fmt.Fprintf(stderr, "natsref: %d lost, %d out of order, %d errors\n", rep.Lost, rep.OutOfOrder, rep.Errors)
		return 1
	}
	return 0
}

// check reports what is wrong with the flags; set are those given.
func (o *options) check(set map[string]bool) error {
	switch {
	case o.subscribers < 1 || o.window < 1 || o.duration <= 0 || o.warmup < 0 || o.drain < 0:
		return errors.New("--subscribers and --window must be at least 1, --duration positive, --warmup and --drain not negative")
	case o.pairs < 0:
		return errors.New("--pairs must be at least 1")
	case o.pairs > 0 && set["subscribers"]:
		return errors.New("--pairs and --subscribers exclude each other: a pairs load or a fan-out")
	case o.size < bench.MinSize || o.size > bench.MaxSize:
		return fmt.Errorf("--size must be between %d and %d bytes", bench.MinSize, bench.MaxSize)
	case (o.ca == "") == !o.insecure:
		return errors.New("pass --ca FILE (the servers' certificate or authority) or --insecure")
	case o.transport != bench.TransportTLS && o.transport != bench.TransportWS:
		return fmt.Errorf("--transport must be %s or %s, not %q", bench.TransportTLS, bench.TransportWS, o.transport)
	case o.serverB != "" && o.pairs == 0:
		return errors.New("--server-b is for a pairs load (--pairs N): publishers on one node, subscribers on the other")
	case o.serverB == "" && o.pidB != 0:
		return errors.New("--server-pid-b goes with --server-b")
	case o.pidB != 0 && o.pid == 0:
		return errors.New("--server-pid-b goes with --server-pid: the CPU of both nodes counts together")
	}
	return nil
}

// pids are the server processes whose CPU counts.
func (o *options) pids() []int {
	var pids []int
	for _, p := range []int{o.pid, o.pidB} {
		if p != 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// measure connects the publishers and the subscribers and runs the load.
func measure(ctx context.Context, o *options) (*bench.Report, error) {
	tlsCfg, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var conns []*conn
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}
	defer closeAll()
	dial := func(ctx context.Context, addr, name string, subs []string) (*conn, error) {
		c, err := connect(ctx, o, addr, tlsCfg, name, subs)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, nil
	}
	f := &bench.Fanout{
		Mode:       "nats-fanout",
		Size:       o.size,
		Window:     o.window,
		Warmup:     o.warmup,
		Duration:   o.duration,
		Drain:      o.drain,
		ServerPIDs: o.pids(),
		Close:      closeAll,
	}
	if o.pairs > 0 {
		if err := pairsLoad(ctx, o, f, dial); err != nil {
			return nil, err
		}
	} else if err := fanoutLoad(ctx, o, f, dial); err != nil {
		return nil, err
	}
	rep, err := f.Run(ctx)
	if err != nil {
		return nil, err
	}
	rep.Server = o.server
	rep.Transport = o.transport
	rep.Certificate = "verified against " + o.ca
	if o.insecure {
		rep.Certificate = "not verified"
	}
	if o.serverB != "" {
		rep.ServerB, rep.CertificateB = o.serverB, rep.Certificate
	}
	return rep, nil
}

// dialFunc connects one client to addr, subscribed to subs.
type dialFunc func(ctx context.Context, addr, name string, subs []string) (*conn, error)

// connectAll runs dial for 0..n-1, a few at a time, and returns the
// first error.
func connectAll(n int, dial func(i int) error) error {
	sem := make(chan struct{}, dialConcurrency)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := dial(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// fanoutLoad connects the subscribers, then the one publisher, for the
// fan-out.
func fanoutLoad(ctx context.Context, o *options, f *bench.Fanout, dial dialFunc) error {
	subs := make([]*conn, o.subscribers)
	err := connectAll(o.subscribers, func(i int) error {
		c, err := dial(ctx, o.server, fmt.Sprintf("sub-%04d", i+1), []string{subject})
		subs[i] = c
		return err
	})
	if err != nil {
		return fmt.Errorf("connect subscribers: %w", err)
	}
	pub, err := dial(ctx, o.server, "pub-0001", nil)
	if err != nil {
		return fmt.Errorf("connect the publisher: %w", err)
	}
	f.Senders = []bench.FanoutSender{{
		Name:   "publisher",
		Conn:   pub.nc,
		Prefix: []byte("PUB " + subject + " " + strconv.Itoa(o.size) + "\r\n"),
		Suffix: []byte("\r\n"),
	}}
	// The publisher reads too (PING, -ERR) but gets no messages.
	f.Receivers = []bench.FanoutReceiver{{Name: "publisher", Self: 0, Read: pub.read}}
	for _, c := range subs {
		f.Receivers = append(f.Receivers, bench.FanoutReceiver{Name: c.name, Self: -1, Read: c.read})
	}
	return nil
}

// pairsLoad connects the subscribers (to --server-b, when given), then
// the publishers, for the pairs load, and waits until every pair's
// subscription has reached its publisher's node: NATS drops a message
// nobody is subscribed to without a word, which would stall the window.
func pairsLoad(ctx context.Context, o *options, f *bench.Fanout, dial dialFunc) error {
	f.Mode, f.Pairs = "nats-pairs", true
	subAddr := o.server
	if o.serverB != "" {
		subAddr = o.serverB
	}
	subs := make([]*conn, o.pairs)
	err := connectAll(o.pairs, func(i int) error {
		c, err := dial(ctx, subAddr, fmt.Sprintf("sub-%04d", i+1), []string{pairName(pairSubject, i), pairName(readySubject, i)})
		if c != nil {
			c.from = i
		}
		subs[i] = c
		return err
	})
	if err != nil {
		return fmt.Errorf("connect subscribers: %w", err)
	}
	pubs := make([]*conn, o.pairs)
	err = connectAll(o.pairs, func(i int) error {
		c, err := dial(ctx, o.server, fmt.Sprintf("pub-%04d", i+1), nil)
		pubs[i] = c
		if err == nil {
			err = ready(ctx, c, subs[i], pairName(readySubject, i))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("connect publishers: %w", err)
	}
	for i, pub := range pubs {
		f.Senders = append(f.Senders, bench.FanoutSender{
			Name:   pub.name,
			Conn:   pub.nc,
			Prefix: []byte("PUB " + pairName(pairSubject, i) + " " + strconv.Itoa(o.size) + "\r\n"),
			Suffix: []byte("\r\n"),
		})
	}
	for i, sub := range subs {
		f.Receivers = append(f.Receivers, bench.FanoutReceiver{Name: sub.name, Pair: i, Read: sub.read})
	}
	// The publishers read too (PING, -ERR) but get no messages.
	for _, pub := range pubs {
		f.Receivers = append(f.Receivers, bench.FanoutReceiver{Name: pub.name, Pair: -1, Read: pub.read})
	}
	return nil
}

func pairName(prefix string, i int) string { return fmt.Sprintf("%s%04d", prefix, i+1) }

// ready publishes to the pair's ready subject every 20 ms until the
// subscriber gets one: then the pair's subscriptions, sent before it,
// have reached the publisher's node too. Ready messages still in flight
// are skipped by the read loop.
func ready(ctx context.Context, pub, sub *conn, subj string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_ = sub.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		defer func() { _ = sub.nc.SetReadDeadline(time.Time{}) }()
		for {
			raw, err := sub.reader.ReadLine()
			if err != nil {
				got <- fmt.Errorf("%s: waiting for %s: %w", sub.name, subj, err)
				return
			}
			if bytes.HasPrefix(raw, []byte("MSG "+subj+" ")) {
				_, err := sub.reader.ReadLine() // its payload
				got <- err
				return
			}
		}
	}()
	probe := []byte("PUB " + subj + " 5\r\nready\r\n")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := pub.nc.Write(probe); err != nil {
			return fmt.Errorf("%s: %w", pub.name, err)
		}
		select {
		case err := <-got:
			return err
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%s: the subscription to %s did not reach %s's node in time", sub.name, subj, pub.name)
		}
	}
}

func tlsConfig(o *options) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(o.server)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	cfg := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: o.insecure,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		MinVersion:         tls.VersionTLS12,
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", o.ca)
		}
	}
	return cfg, nil
}

// conn is one NATS client connection, over TLS or WebSocket.
type conn struct {
	name   string
	nc     net.Conn
	reader *protocol.Reader
	// from is the index of the publisher whose messages a pairs
	// subscriber gets (0 for the fan-out's one publisher).
	from int
}

func (c *conn) Close() error { return c.nc.Close() }

// bufferedConn reads a connection through a large buffer, so that under
// TLS one system call takes every record waiting.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// info is the part of the server's INFO that matters here.
type info struct {
	TLSRequired bool `json:"tls_required"`
	MaxPayload  int  `json:"max_payload"`
}

// connect opens a connection the way NATS does, then subscribes to subs.
// Over TLS: INFO in the clear, the TLS handshake, CONNECT. Over
// WebSocket: the upgrade over TLS, INFO, CONNECT; the protocol's bytes
// are the frames' payloads, split anyhow. It returns once a PING after
// those has its PONG, so the subscriptions are in place.
func connect(ctx context.Context, o *options, addr string, tlsCfg *tls.Config, name string, subs []string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := open(ctx, o, addr, tlsCfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	c := &conn{name: name, nc: nc, reader: protocol.NewReader(nc, 8<<10)}
	fail := func(err error) (*conn, error) {
		_ = nc.Close()
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	if o.transport == bench.TransportWS {
		raw, err := c.reader.ReadLine()
		if err != nil {
			return fail(fmt.Errorf("read INFO: %w", err))
		}
		if !bytes.HasPrefix(raw, []byte("INFO ")) {
			return fail(fmt.Errorf("the server did not start with INFO: %.40q", raw))
		}
	}
	hello := fmt.Sprintf(`CONNECT {"verbose":false,"pedantic":false,"tls_required":%t,"name":%q,"lang":"go","version":"0","protocol":1,"echo":false}`+"\r\n", o.transport == bench.TransportTLS, name)
	for i, subj := range subs {
		hello += "SUB " + subj + " " + strconv.Itoa(i+1) + "\r\n"
	}
	hello += "PING\r\n"
	if _, err := io.WriteString(nc, hello); err != nil {
		return fail(err)
	}
	for {
		raw, err := c.reader.ReadLine()
		if err != nil {
			return fail(err)
		}
		line := protocol.TrimLine(raw)
		switch {
		case string(line) == "PONG":
			_ = nc.SetDeadline(time.Time{})
			return c, nil
		case bytes.HasPrefix(line, []byte("-ERR")):
			return fail(fmt.Errorf("server answered %s", line))
		}
		// +OK, INFO: keep waiting.
	}
}

// open makes the connection to addr: TLS after NATS's INFO in the clear,
// or a WebSocket over TLS.
func open(ctx context.Context, o *options, addr string, tlsCfg *tls.Config) (net.Conn, error) {
	if o.transport == bench.TransportWS {
		return bench.DialWebSocket(ctx, "wss://"+addr+"/", bench.WebSocketOptions{TLS: tlsCfg, ReadBuffer: readBuffer})
	}
	nd := net.Dialer{KeepAlive: -1}
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	buffered := &bufferedConn{Conn: raw, r: bufio.NewReaderSize(raw, readBuffer)}
	line, err := buffered.r.ReadSlice('\n')
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("read INFO: %w", err)
	}
	js, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("INFO "))
	var in info
	if !ok || json.Unmarshal(js, &in) != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("the server did not start with INFO: %q", line)
	}
	if !in.TLSRequired {
		_ = raw.Close()
		return nil, errors.New("the server does not require TLS; the reference load is over TLS")
	}
	tc := tls.Client(buffered, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// read is a connection's read loop: each MSG header is followed by its
// payload on a line of its own (the bench's payloads hold no line
// breaks), handed on as a message of the connection's publisher; a
// pairs load's ready messages still in flight are skipped.
func (c *conn) read(d *bench.Deliveries) error {
	rd := c.reader
	payload := false // the next line is a message's payload
	skip := false    // and it is a ready message's
	var err error
	for {
		for {
			raw, lerr := rd.Next()
			if lerr != nil {
				return lerr
			}
			if raw == nil {
				break
			}
			if payload {
				payload = false
				if !skip {
					d.Deliver(c.from, raw)
				}
				continue
			}
			switch line := protocol.TrimLine(raw); {
			case bytes.HasPrefix(line, []byte("MSG ")):
				payload = true
				skip = bytes.HasPrefix(line, []byte("MSG "+readySubject))
			case string(line) == "PING":
				if _, werr := io.WriteString(c.nc, "PONG\r\n"); werr != nil {
					return werr
				}
			case bytes.HasPrefix(line, []byte("-ERR")):
				d.Errorf("%s: server said %s", c.name, line)
			case string(line) == "PONG", string(line) == "+OK", bytes.HasPrefix(line, []byte("INFO ")):
			default:
				d.Errorf("%s: unexpected line from the server: %.40q", c.name, line)
			}
		}
		d.Flush()
		if err != nil {
			if d.Closing() && errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		err = rd.Fill()
	}
}
