// Package metrics serves a messager server's counters to Prometheus, on
// an HTTP endpoint of its own with timeouts and a connection cap, so that
// a scraper (or a flood of idle keep-alive connections) can never take
// what the chat listener needs.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"time"

	"golang.org/x/net/netutil"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/messager/messager/internal/server"
)

// Handler serves the server's counters in the Prometheus text format.
// The metrics read the same counters as Stats when scraped, so they cost
// the relay path nothing.
func Handler(s *server.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{s: s},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type statsCollector struct{ s *server.Server }

var (
	descOnline       = prometheus.NewDesc("messager_sessions_online", "Users logged in now.", nil, nil)
	descLogins       = prometheus.NewDesc("messager_logins_total", "Login attempts by result.", []string{"result"}, nil)
	descRelayed      = prometheus.NewDesc("messager_messages_relayed_total", "Messages queued on their target's session.", nil, nil)
	descDropped      = prometheus.NewDesc("messager_messages_dropped_total", "Relayed messages lost with the queue of a session closed before they were written (too slow, write failed).", nil, nil)
	descSignups      = prometheus.NewDesc("messager_signups_total", "Sign-ups by result: an account made, or answered TRY.", []string{"result"}, nil)
	descNotOnline    = prometheus.NewDesc("messager_cnt_total", "Messages answered with CNT (target not online).", nil, nil)
	descBytes        = prometheus.NewDesc("messager_bytes_total", "Protocol bytes by direction.", []string{"direction"}, nil)
	descQueueHigh    = prometheus.NewDesc("messager_queue_high_water_bytes", "Largest send queue seen (only queues over 64 KiB are tracked).", nil, nil)
	descCloses       = prometheus.NewDesc("messager_closes_total", "Connections closed, by reason.", []string{"reason"}, nil)
	descUnauthorised = prometheus.NewDesc("messager_connections_pending", "Connections not yet logged in.", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, float64(c.s.Online()))
	ch <- prometheus.MustNewConstMetric(descUnauthorised, prometheus.GaugeValue, float64(c.s.Pending()))
	counter(descLogins, st.LoginsOK.Load(), "ok")
	counter(descLogins, st.LoginsFailed.Load(), "failed")
	counter(descLogins, st.LoginsRefused.Load(), "refused")
	counter(descRelayed, st.Relayed.Load())
	counter(descDropped, st.Dropped.Load())
	counter(descSignups, st.Signups.Load(), "ok")
	counter(descSignups, st.SignupsRefused.Load(), "refused")
	counter(descNotOnline, st.NotOnline.Load())
	counter(descBytes, st.BytesIn.Load(), "in")
	counter(descBytes, st.BytesOut.Load(), "out")
	ch <- prometheus.MustNewConstMetric(descQueueHigh, prometheus.GaugeValue, float64(st.QueueHighWater.Load()))
	for reason, n := range st.ClosesByReason() {
		counter(descCloses, n, reason)
	}
}

// Options tune the metrics endpoint. Zero fields take the defaults.
type Options struct {
	// ReadTimeout, WriteTimeout and IdleTimeout bound a request's read,
	// its answer, and an idle keep-alive connection.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns is the most connections open at once; more wait in the
	// listen queue, holding no file of the server's.
	MaxConns int
	// Pprof also serves Go's /debug/pprof/ profiles.
	Pprof bool
}

// Defaults of Options. A profile takes 30 s by default, so the write
// timeout leaves room for one.
const (
	DefaultReadTimeout  = 5 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultIdleTimeout  = 30 * time.Second
	DefaultMaxConns     = 32
)

// Endpoint is a running metrics endpoint.
type Endpoint struct {
	ln net.Listener
	hs *http.Server
}

// Listen starts serving the metrics of s on addr.
func Listen(addr string, s *server.Server, opts Options) (*Endpoint, error) {
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(s))
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	}
	e := &Endpoint{
		ln: netutil.LimitListener(ln, opts.MaxConns),
		hs: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: opts.ReadTimeout,
			ReadTimeout:       opts.ReadTimeout,
			WriteTimeout:      opts.WriteTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    16 << 10,
		},
	}
	go func() {
		if err := e.hs.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger().Error("metrics endpoint stopped", "err", err)
		}
	}()
	return e, nil
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() net.Addr { return e.ln.Addr() }

// Close stops the endpoint, letting requests in flight finish for a
// moment.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := e.hs.Shutdown(ctx); err != nil {
		return e.hs.Close()
	}
	return nil
}
