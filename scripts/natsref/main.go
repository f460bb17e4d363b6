// Command natsref is the reference load for messager's group fan-out: one
// publisher sends to one subject of a NATS server over TLS, N subscribers
// receive it, with the same window, payload, counting and report as
// "messager bench --group-size N" (a message is done when its last
// subscriber has it). It speaks NATS's text protocol itself, through the
// same line reader as the messager bench, so that both loads cost their
// client alike; the figures to compare are the server's.
//
//	natsref --server 127.0.0.1:4222 --server-pid PID --ca cert.pem --subscribers 100
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

// subject is the one subject of the load.
const subject = "bench.group"

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
	ca          string
	insecure    bool
	subscribers int
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
	fs.StringVar(&o.ca, "ca", "", "PEM certificate to trust for the server (its self-signed certificate)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not check the server's certificate")
	fs.IntVar(&o.subscribers, "subscribers", 100, "subscribers, each its own connection")
	fs.IntVar(&o.size, "size", bench.DefaultSize, "bytes of payload per message")
	fs.IntVar(&o.window, "window", bench.DefaultWindow, "most messages in flight")
	fs.DurationVar(&o.duration, "duration", bench.DefaultDuration, "measured time")
	fs.DurationVar(&o.warmup, "warmup", bench.DefaultWarmup, "time sending before measuring")
	fs.DurationVar(&o.drain, "drain", bench.DefaultDrain, "longest wait for messages in flight at the end")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "natsref: unexpected argument %q\n", fs.Arg(0))
		return 2
	case o.subscribers < 1 || o.window < 1 || o.duration <= 0 || o.warmup < 0 || o.drain < 0:
		fmt.Fprintln(stderr, "natsref: --subscribers and --window must be at least 1, --duration positive, --warmup and --drain not negative")
		return 2
	case o.size < bench.MinSize || o.size > bench.MaxSize:
		fmt.Fprintf(stderr, "natsref: --size must be between %d and %d bytes\n", bench.MinSize, bench.MaxSize)
		return 2
	case (o.ca == "") == !o.insecure:
		fmt.Fprintln(stderr, "natsref: pass --ca FILE (the server's certificate) or --insecure")
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

// measure connects the publisher and the subscribers and runs the load.
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
	dial := func(ctx context.Context, name string, subscribe bool) (*conn, error) {
		c, err := connect(ctx, o.server, tlsCfg, name, subscribe)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, nil
	}

	subs := make([]*conn, o.subscribers)
	sem := make(chan struct{}, dialConcurrency)
	errs := make(chan error, o.subscribers)
	var wg sync.WaitGroup
	for i := range subs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := dial(ctx, fmt.Sprintf("sub-%04d", i+1), true)
			subs[i] = c
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("connect subscribers: %w", err)
	}
	pub, err := dial(ctx, "pub-0001", false)
	if err != nil {
		return nil, fmt.Errorf("connect the publisher: %w", err)
	}

	f := &bench.Fanout{
		Mode:      "nats-fanout",
		Size:      o.size,
		Window:    o.window,
		Warmup:    o.warmup,
		Duration:  o.duration,
		Drain:     o.drain,
		ServerPID: o.pid,
		Senders: []bench.FanoutSender{{
			Name:   "publisher",
			Conn:   pub.tls,
			Prefix: []byte("PUB " + subject + " " + strconv.Itoa(o.size) + "\r\n"),
			Suffix: []byte("\r\n"),
		}},
		// The publisher reads too (PING, -ERR) but gets no messages.
		Receivers: []bench.FanoutReceiver{{Name: "publisher", Self: 0, Read: pub.read}},
		Close:     closeAll,
	}
	for _, c := range subs {
		f.Receivers = append(f.Receivers, bench.FanoutReceiver{Name: c.name, Self: -1, Read: c.read})
	}
	rep, err := f.Run(ctx)
	if err != nil {
		return nil, err
	}
	rep.Server = o.server
	rep.Certificate = "verified against " + o.ca
	if o.insecure {
		rep.Certificate = "not verified"
	}
	return rep, nil
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

// conn is one NATS client connection.
type conn struct {
	name   string
	tls    *tls.Conn
	reader *protocol.Reader
}

func (c *conn) Close() error { return c.tls.Close() }

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

// connect opens a connection the way NATS does: INFO in the clear, the
// TLS handshake, CONNECT; then, for a subscriber, SUB. It returns once a
// PING after those has its PONG, so the subscription is in place.
func connect(ctx context.Context, addr string, tlsCfg *tls.Config, name string, subscribe bool) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nd := net.Dialer{KeepAlive: -1}
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	buffered := &bufferedConn{Conn: raw, r: bufio.NewReaderSize(raw, readBuffer)}
	line, err := buffered.r.ReadSlice('\n')
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%s: read INFO: %w", name, err)
	}
	js, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("INFO "))
	var in info
	if !ok || json.Unmarshal(js, &in) != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%s: the server did not start with INFO: %q", name, line)
	}
	if !in.TLSRequired {
		_ = raw.Close()
		return nil, fmt.Errorf("%s: the server does not require TLS; the reference load is over TLS", name)
	}
	tc := tls.Client(buffered, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%s: tls handshake: %w", name, err)
	}
	c := &conn{name: name, tls: tc, reader: protocol.NewReader(tc, 8<<10)}
	hello := fmt.Sprintf(`CONNECT {"verbose":false,"pedantic":false,"tls_required":true,"name":%q,"lang":"go","version":"0","protocol":1,"echo":false}`+"\r\n", name)
	if subscribe {
		hello += "SUB " + subject + " 1\r\n"
	}
	hello += "PING\r\n"
	if _, err := io.WriteString(tc, hello); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	for {
		raw, err := c.reader.ReadLine()
		if err != nil {
			_ = tc.Close()
			return nil, fmt.Errorf("%s: connect: %w", name, err)
		}
		line := protocol.TrimLine(raw)
		switch {
		case string(line) == "PONG":
			_ = tc.SetDeadline(time.Time{})
			return c, nil
		case bytes.HasPrefix(line, []byte("-ERR")):
			_ = tc.Close()
			return nil, fmt.Errorf("%s: connect: server answered %s", name, line)
		}
		// +OK, INFO: keep waiting.
	}
}

// read is a connection's read loop: each MSG header is followed by its
// payload on a line of its own (the bench's payloads hold no line
// breaks), handed on as a message of the one publisher.
func (c *conn) read(d *bench.Deliveries) error {
	rd := c.reader
	payload := false // the next line is a message's payload
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
				d.Deliver(0, raw)
				continue
			}
			switch line := protocol.TrimLine(raw); {
			case bytes.HasPrefix(line, []byte("MSG ")):
				payload = true
			case string(line) == "PING":
				if _, werr := io.WriteString(c.tls, "PONG\r\n"); werr != nil {
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
