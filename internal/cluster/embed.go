package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbedConfig configures the NATS server a node runs inside itself.
type EmbedConfig struct {
	// Cluster is the cluster's name.
	Cluster string
	// NodeName names this node to the others.
	NodeName string
	// Listen is the route port's address, HOST:PORT (port 0 picks one).
	Listen string
	// Routes are the other nodes' route URLs (nats-route://HOST:PORT).
	Routes []*url.URL
	// Secret is the cluster secret the routes' TLS is made from.
	Secret []byte
	// Logger receives the NATS server's warnings and errors.
	Logger *slog.Logger
}

// Embedded is a nats-server running inside this process for its routes:
// the node's own connections are in process, and its client port takes
// nobody else (see StartEmbedded).
type Embedded struct {
	ns    *natsserver.Server
	token string
}

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckName checks a cluster name: 1 to 64 letters, digits, '-' or '_'.
func CheckName(name string) error {
	if !clusterNameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: use 1 to 64 letters, digits, '-' or '_'", name)
	}
	return nil
}

// ParseRoutes parses a comma-separated list of route URLs.
func ParseRoutes(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats-route" || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("route %q: want nats-route://HOST:PORT", r)
		}
		out = append(out, u)
	}
	return out, nil
}

// StartEmbedded starts the NATS server of a node.
func StartEmbedded(cfg EmbedConfig) (*Embedded, error) {
	if err := CheckName(cfg.Cluster); err != nil {
		return nil, err
	}
	if len(cfg.Secret) == 0 {
		return nil, errNoSecret
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("cluster listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	tlsCfg, err := RouteTLS(cfg.Secret)
	if err != nil {
		return nil, err
	}
	// The node connects in process. nats-server starts its routes only
	// once its client port listens, so it gets one on loopback, on a
	// port of its own choosing, with a random token that never leaves
	// this process: nobody else can log in to it.
	var token [32]byte
	_, _ = rand.Read(token[:])
	opts := &natsserver.Options{
		ServerName:    cfg.NodeName,
		Host:          "127.0.0.1",
		Port:          natsserver.RANDOM_PORT,
		Authorization: hex.EncodeToString(token[:]),
		NoSigs:        true,
		MaxPayload:    1 << 20,
		Cluster: natsserver.ClusterOpts{
			Name:           cfg.Cluster,
			Host:           host,
			Port:           port,
			TLSConfig:      tlsCfg,
			TLSTimeout:     2,
			ConnectRetries: -1,
			// Each route is one ordered stream between two nodes; a pool
			// of routes would add connections and not help order.
			PoolSize:     -1,
			PingInterval: 2 * time.Second,
			MaxPingsOut:  2,
		},
		Routes: cfg.Routes,
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: NATS server: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With("part", "nats"), last: make(map[string]time.Time)}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("cluster: the NATS server did not start (is the route port in use?)")
	}
	return &Embedded{ns: ns, token: opts.Authorization}, nil
}

// Connect opens an in-process connection to the embedded server.
func (e *Embedded) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append(opts, nats.InProcessServer(e.ns), nats.Token(e.token), nats.Name(name), nats.MaxReconnects(-1))
	return nats.Connect("", opts...)
}

// RouteAddr is the address the route port listens on.
func (e *Embedded) RouteAddr() net.Addr { return e.ns.ClusterAddr() }

// Routes reports how many routes to other nodes are up.
func (e *Embedded) Routes() int { return e.ns.NumRoutes() }

// Shutdown stops the embedded server.
func (e *Embedded) Shutdown() {
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
}

// ExternalConfig says how to reach an existing NATS system.
type ExternalConfig struct {
	URL       string // nats:// or tls:// URLs, comma separated
	CredsFile string // NATS credentials (JWT and seed), if the system wants them
	CAFile    string // the CA to verify the NATS servers with, if not the system's
}

// ConnectExternal returns how a node connects to an existing NATS system.
func ConnectExternal(cfg ExternalConfig) func(name string, opts ...nats.Option) (*nats.Conn, error) {
	return func(name string, opts ...nats.Option) (*nats.Conn, error) {
		opts = append(opts, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
		return nats.Connect(cfg.URL, opts...)
	}
}

// natsLogger passes the NATS server's warnings and errors on, each kind
// at most once every natsLogEvery: a route to a node that is down is
// retried every second and would otherwise fill the log.
type natsLogger struct {
	log  *slog.Logger
	mu   sync.Mutex // guards last
	last map[string]time.Time
}

const natsLogEvery = 30 * time.Second

// limited reports whether a line of this format was passed on lately.
// Digits do not count: nats-server puts each connection's address and
// id in front of its format, and a failed handshake every second must
// not pass as a new kind of line each time.
func (l *natsLogger) limited(format string) bool {
	key := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, format)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < natsLogEvery {
		return true
	}
	if len(l.last) > 1000 {
		clear(l.last)
	}
	l.last[key] = now
	return false
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  {}
func (l *natsLogger) Tracef(format string, v ...any)  {}
func (l *natsLogger) Warnf(format string, v ...any) {
	if !l.limited(format) {
		l.log.Warn(fmt.Sprintf(format, v...))
	}
}
func (l *natsLogger) Errorf(format string, v ...any) {
	if !l.limited(format) {
		l.log.Warn(fmt.Sprintf(format, v...))
	}
}
func (l *natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
