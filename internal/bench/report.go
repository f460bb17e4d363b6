package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the outcome of a run. Its JSON form is the machine-readable
// output of "messager bench --json"; durations are in seconds, latencies
// in microseconds, sizes in bytes.
type Report struct {
	Mode   string `json:"mode"`
	Server string `json:"server"`
	// ServerStarted is set when the bench started the server itself.
	ServerStarted bool `json:"server_started"`
	// CheapHashes is set when the bench users' password hashes are cheap,
	// so logins cost the server less than real ones.
	CheapHashes bool   `json:"cheap_password_hashes"`
	Certificate string `json:"certificate"`

	Pairs    int     `json:"pairs,omitempty"`
	Size     int     `json:"size"`
	Window   int     `json:"window,omitempty"`
	Rate     float64 `json:"rate,omitempty"`
	Warmup   float64 `json:"warmup_s,omitempty"`
	Duration float64 `json:"duration_s,omitempty"`

	// Counts over the whole run, warmup and drain included: every message
	// sent is delivered, answered with CNT, or lost.
	Sent       uint64   `json:"sent"`
	Delivered  uint64   `json:"delivered"`
	CNT        uint64   `json:"cnt"`
	Lost       uint64   `json:"lost"`
	OutOfOrder uint64   `json:"out_of_order"`
	Errors     uint64   `json:"errors"`
	ErrorList  []string `json:"error_samples,omitempty"`

	// Figures over the measured interval only (after warmup).
	MeasuredDelivered uint64  `json:"measured_delivered"`
	MsgsPerSec        float64 `json:"msgs_per_s"`
	MBPerSec          float64 `json:"mb_per_s"`
	Latency           Latency `json:"latency"`
	// ScheduleLag is how late the open loop sent, against its schedule.
	ScheduleLag *Latency `json:"schedule_lag,omitempty"`

	Bench       BenchUsage   `json:"bench"`
	ServerUsage *ServerUsage `json:"server_usage,omitempty"`

	Idle *IdleReport `json:"idle,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// BenchUsage is what the bench process itself spent in the measured
// interval.
type BenchUsage struct {
	CPUSeconds float64 `json:"cpu_s"`
	// Utilization is CPU time over wall time times GOMAXPROCS: near 1 the
	// bench, not the server, may be the limit.
	Utilization float64 `json:"utilization"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Saturated   bool    `json:"saturated"`
	// MsgsPerWrite and MsgsPerRead are the messages per write call of a
	// sender and per read of a receiver, over the whole run: how well the
	// bench (and the server) batch.
	MsgsPerWrite float64 `json:"msgs_per_write,omitempty"`
	MsgsPerRead  float64 `json:"msgs_per_read,omitempty"`
	// CPUs the bench is pinned to, and the share of their time other
	// processes took in the measured interval; set only when the bench
	// and the server are pinned to different CPUs.
	CPUs        []int   `json:"cpus,omitempty"`
	OthersShare float64 `json:"others_share,omitempty"`
}

// ServerUsage is what the server process spent, from /proc.
type ServerUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerMsg is server CPU per delivered message in the measured
	// interval, in microseconds.
	CPUPerMsg float64 `json:"cpu_per_msg_us"`
	// PeakRSS is VmHWM (peak resident memory); RSS is VmRSS at the end.
	PeakRSS uint64 `json:"peak_rss"`
	RSS     uint64 `json:"rss"`
	// CPUs the server is pinned to, and the share of their time other
	// processes took in the measured interval (see BenchUsage).
	CPUs        []int   `json:"cpus,omitempty"`
	OthersShare float64 `json:"others_share,omitempty"`
}

// IdleReport is the outcome of the idle-sessions mode.
type IdleReport struct {
	Requested int    `json:"requested"`
	Opened    int    `json:"opened"`
	Stopped   string `json:"stopped,omitempty"`
	// FileLimit is the bench's own open-file limit.
	FileLimit     uint64  `json:"open_file_limit"`
	SourceAddrs   int     `json:"source_addresses"`
	LoginSeconds  float64 `json:"login_s"`
	RSSBefore     uint64  `json:"server_rss_before,omitempty"`
	RSSAfter      uint64  `json:"server_rss_after,omitempty"`
	PerSession    float64 `json:"server_bytes_per_session,omitempty"`
	ProbesSent    uint64  `json:"probes_sent"`
	ProbesRelayed uint64  `json:"probes_relayed"`
	ProbesCNT     uint64  `json:"probes_cnt"`
	ProbeLatency  Latency `json:"probe_latency"`
	HoldSeconds   float64 `json:"hold_s"`
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	server := r.Server
	if r.ServerStarted {
		server += " (started by the bench; bench users have cheap password hashes)"
	} else if r.CheapHashes {
		server += " (bench users have cheap password hashes)"
	}
	p("server        %s, certificate %s\n", server, r.Certificate)
	switch r.Mode {
	case ModeIdle:
		r.writeIdle(p)
	default:
		r.writeLoad(p)
	}
	if s := r.ServerUsage; s != nil {
		if r.Mode != ModeIdle {
			p("server cpu    %.3f µs per delivered message (%.2f s in the measured interval, pid %d)\n", s.CPUPerMsg, s.CPUSeconds, s.PID)
		}
		p("server memory peak %s, now %s\n", bytesText(s.PeakRSS), bytesText(s.RSS))
	} else {
		p("server cpu    not measured (pass --server-pid for a server on this machine)\n")
	}
	p("bench cpu     %.0f%% of %d core(s) (%.2f s)", 100*r.Bench.Utilization, r.Bench.GOMAXPROCS, r.Bench.CPUSeconds)
	if r.Bench.MsgsPerWrite > 0 {
		p(", %.1f messages per write, %.1f per read", r.Bench.MsgsPerWrite, r.Bench.MsgsPerRead)
	}
	p("\n")
	for _, warn := range r.Warnings {
		p("warning: %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeLoad(p func(string, ...any)) {
	loop := fmt.Sprintf("window %d", r.Window)
	if r.Mode == ModeOpenLoop {
		loop = fmt.Sprintf("rate %s msgs/s", countText(uint64(r.Rate)))
	}
	p("run           %s, %d pairs, %d-byte messages, %s, %s after %s warmup\n",
		r.Mode, r.Pairs, r.Size, loop, secondsText(r.Duration), secondsText(r.Warmup))
	p("delivered     %s msgs/s, %.1f MB/s (%s messages measured)\n", countText(uint64(r.MsgsPerSec)), r.MBPerSec, countText(r.MeasuredDelivered))
	p("latency       %s\n", latencyText(r.Latency))
	if r.ScheduleLag != nil {
		p("send lag      %s (how late the bench sent against its schedule)\n", latencyText(*r.ScheduleLag))
	}
	p("messages      sent %s, delivered %s, CNT %d, lost %d, out of order %d, errors %d\n",
		countText(r.Sent), countText(r.Delivered), r.CNT, r.Lost, r.OutOfOrder, r.Errors)
	for _, e := range r.ErrorList {
		p("error: %s\n", e)
	}
}

func (r *Report) writeIdle(p func(string, ...any)) {
	s := r.Idle
	p("sessions      %s of %s idle sessions opened in %s from %d source address(es) (open-file limit %d)\n",
		countText(uint64(s.Opened)), countText(uint64(s.Requested)), secondsText(s.LoginSeconds), s.SourceAddrs, s.FileLimit)
	if s.Stopped != "" {
		p("stopped       %s\n", s.Stopped)
	}
	if s.RSSAfter > 0 {
		p("server memory %s before, %s after: %s per session\n", bytesText(s.RSSBefore), bytesText(s.RSSAfter), bytesText(uint64(max(s.PerSession, 0))))
	}
	p("probes        %d sent to random idle sessions, %d relayed, %d CNT\n", s.ProbesSent, s.ProbesRelayed, s.ProbesCNT)
	p("latency       %s\n", latencyText(s.ProbeLatency))
	p("errors        %d\n", r.Errors)
	for _, e := range r.ErrorList {
		p("error: %s\n", e)
	}
}

func latencyText(l Latency) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		usText(l.P50), usText(l.P90), usText(l.P99), usText(l.P999), usText(l.Max))
}

// usText writes microseconds with a unit that keeps three digits.
func usText(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func secondsText(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// countText writes n with thousands separators.
func countText(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
