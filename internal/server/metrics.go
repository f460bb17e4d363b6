package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the server's counters in the Prometheus text
// format. The metrics read the same counters as Stats when scraped, so
// they cost the relay path nothing.
func (s *Server) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{s: s},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type statsCollector struct{ s *Server }

var (
	descOnline       = prometheus.NewDesc("messager_sessions_online", "Users logged in now.", nil, nil)
	descLogins       = prometheus.NewDesc("messager_logins_total", "Login attempts by result.", []string{"result"}, nil)
	descRelayed      = prometheus.NewDesc("messager_messages_relayed_total", "Messages queued on their target's session.", nil, nil)
	descDropped      = prometheus.NewDesc("messager_messages_dropped_total", "Relayed messages lost with the queue of a session closed before they were written (too slow, write failed).", nil, nil)
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
	st := &c.s.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, float64(c.s.Online()))
	c.s.mu.Lock()
	pending := len(c.s.pending)
	c.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descUnauthorised, prometheus.GaugeValue, float64(pending))
	counter(descLogins, st.LoginsOK.Load(), "ok")
	counter(descLogins, st.LoginsFailed.Load(), "failed")
	counter(descLogins, st.LoginsRefused.Load(), "refused")
	counter(descRelayed, st.Relayed.Load())
	counter(descDropped, st.Dropped.Load())
	counter(descNotOnline, st.NotOnline.Load())
	counter(descBytes, st.BytesIn.Load(), "in")
	counter(descBytes, st.BytesOut.Load(), "out")
	ch <- prometheus.MustNewConstMetric(descQueueHigh, prometheus.GaugeValue, float64(st.QueueHighWater.Load()))
	for r := closeReason(1); r < numReasons; r++ {
		counter(descCloses, st.Closes[r].Load(), r.String())
	}
}
