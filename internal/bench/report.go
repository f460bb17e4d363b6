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
	// Transport is how the sessions reached the server: "tls" (the line
	// protocol) or "ws" (the web client's WebSocket).
	Transport string `json:"transport,omitempty"`
	// ServerB is the second node the receivers logged in to, and how its
	// certificate was checked; empty for a run against one server.
	ServerB      string `json:"server_b,omitempty"`
	CertificateB string `json:"certificate_b,omitempty"`

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

	Idle     *IdleReport     `json:"idle,omitempty"`
	Group    *GroupReport    `json:"group,omitempty"`
	Presence *PresenceReport `json:"presence,omitempty"`

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

// ServerUsage is what the server process spent, from /proc. For a run
// against two nodes (Config.ServerB) with both processes known, the
// figures are both nodes' together (CPU and memory summed) and Nodes
// has each one's.
type ServerUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerMsg is server CPU per delivered message in the measured
	// interval, in microseconds.
	CPUPerMsg float64 `json:"cpu_per_msg_us"`
	// PeakRSS is VmHWM (peak resident memory); RSS is VmRSS at the end.
	PeakRSS uint64 `json:"peak_rss"`
	RSS     uint64 `json:"rss"`
	// Nodes are each node's figures, in the order server, server B.
	Nodes []NodeUsage `json:"nodes,omitempty"`
	// CPUs the server is pinned to, and the share of their time other
	// processes took in the measured interval (see BenchUsage).
	CPUs        []int   `json:"cpus,omitempty"`
	OthersShare float64 `json:"others_share,omitempty"`
}

// NodeUsage is what one node of a two-node run spent; CPUPerMsg divides
// its CPU by all the deliveries, so the nodes' figures add up.
type NodeUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	CPUPerMsg  float64 `json:"cpu_per_msg_us"`
	PeakRSS    uint64  `json:"peak_rss"`
	RSS        uint64  `json:"rss"`
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

// GroupReport is the outcome of a fan-out run: the group mode, or a
// reference load of the same shape against another server. In such a
// run the report's sent counts messages, while delivered, lost,
// measured_delivered and msgs_per_s count deliveries (a message times
// the receivers that got it) and server_usage.cpu_per_msg_us is per
// delivery.
type GroupReport struct {
	// Members is the group's size without its senders (group mode).
	Members int `json:"members,omitempty"`
	Senders int `json:"senders"`
	// Receivers are the connections that receive messages: the members,
	// and in a group of several senders the senders too (each gets the
	// others' messages). Recipients is how many get each message.
	Receivers  int `json:"receivers"`
	Recipients int `json:"recipients_per_message"`
	// Expected is what every message sent times its recipients makes.
	Expected     uint64 `json:"expected_deliveries"`
	MessagesDone uint64 `json:"messages_done"`
	// Rates over the measured interval: messages done (their last
	// recipient has them) and deliveries, a second.
	MessagesPerSec   float64 `json:"messages_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	// CPUPerDelivery is the server's CPU per delivery, in microseconds.
	CPUPerDelivery float64 `json:"cpu_per_delivery_us,omitempty"`
	// Receivers that missed messages, and the most one missed.
	ReceiversWithLoss int    `json:"receivers_with_loss"`
	MostLostByOne     uint64 `json:"most_lost_by_one"`
	// Receivers that got a message of a sender after a later one of it.
	ReceiversOutOfOrder int `json:"receivers_out_of_order"`
	// OrderCompared receivers got every sender's messages, all of them;
	// OrderDiffers of them saw another order than the most of them did.
	OrderCompared int `json:"order_compared"`
	OrderDiffers  int `json:"order_differs"`
}

// PresenceReport is the outcome of the presence mode. Its relay figures
// are also the report's own: msgs_per_s and latency are the relay's with
// the churn running.
type PresenceReport struct {
	// Sessions watch Watch names each, WatchEntries in all, among
	// ChurnUsers users of which Churn a second were to log in and as many
	// log out.
	Sessions     int     `json:"sessions"`
	Watch        int     `json:"watch_per_session"`
	WatchEntries int     `json:"watch_entries"`
	ChurnUsers   int     `json:"churn_users"`
	Churn        int     `json:"churn_per_s"`
	LoginSeconds float64 `json:"login_s"`

	// Logins and logouts completed in the measured interval, a second;
	// ChurnFailed changes that failed; ChurnLag how late changes started
	// against the timetable.
	Logins        uint64  `json:"logins"`
	Logouts       uint64  `json:"logouts"`
	LoginsPerSec  float64 `json:"logins_per_s"`
	LogoutsPerSec float64 `json:"logouts_per_s"`
	ChurnFailed   uint64  `json:"churn_failed"`
	ChurnLag      Latency `json:"churn_lag"`

	// PRESENCE lines received in the measured interval and the names
	// they carried (one per watcher told of one change), a second.
	Lines       uint64  `json:"presence_lines"`
	Names       uint64  `json:"presence_names"`
	LinesPerSec float64 `json:"presence_lines_per_s"`
	NamesPerSec float64 `json:"presence_names_per_s"`
	// Delay is from a change (AUTH or END written) to the PRESENCE line
	// at each watcher, for the changes made in the measured interval.
	Delay Latency `json:"delay"`

	// The continuous check: Samples rounds over every watcher, each
	// checking the names whose state had settled at least 1.5 s before.
	Samples             int     `json:"samples"`
	EntriesChecked      uint64  `json:"entries_checked"`
	EntriesWrong        uint64  `json:"entries_wrong"`
	WatcherSamplesWrong uint64  `json:"watcher_samples_wrong"`
	WatchersEverWrong   int     `json:"watchers_ever_wrong"`
	CorrectShare        float64 `json:"correct_share"`
	// The final check, 1.5 s after the last change: watchers right about
	// every name they watch.
	FinalCorrect int     `json:"final_correct"`
	FinalShare   float64 `json:"final_share"`

	// Server memory before the watches, with them (after a short burst
	// of churn, so that the server has had the logins that make it
	// settle), and after the churn phase, each read after a liveness
	// round of the server (MemorySettled when all three were); the
	// differences per watch entry.
	RSSBefore          uint64  `json:"server_rss_before,omitempty"`
	RSSWatched         uint64  `json:"server_rss_watched,omitempty"`
	RSSAfter           uint64  `json:"server_rss_after,omitempty"`
	BytesPerEntry      float64 `json:"server_bytes_per_watch_entry,omitempty"`
	BytesPerEntryAfter float64 `json:"server_bytes_per_watch_entry_after_churn,omitempty"`
	MemorySettled      bool    `json:"memory_settled"`

	// The relay without the churn and with it, and their ratio.
	Quiet      PresencePhase `json:"quiet"`
	Churned    PresencePhase `json:"churn"`
	RelayRatio float64       `json:"relay_ratio"`
	// ChurnServerCPU estimates the server's CPU, in cores, that went to
	// the churn and the presence lines rather than the relay.
	ChurnServerCPU float64 `json:"churn_server_cpu,omitempty"`
	// ServerBoundRatio estimates the ratio the server's CPU alone would
	// allow (see the notes on reading the figures): the share of the
	// server's cores the churn left for the relay. Zero when the server
	// and the bench are not pinned apart.
	ServerBoundRatio float64 `json:"server_bound_relay_ratio,omitempty"`
}

// PresencePhase is what one phase of a presence run measured.
type PresencePhase struct {
	Seconds         float64 `json:"seconds"`
	RelayMsgsPerSec float64 `json:"relay_msgs_per_s"`
	// ServerCPU and BenchCPU are CPU seconds a second: cores busy.
	ServerCPU float64 `json:"server_cpu"`
	BenchCPU  float64 `json:"bench_cpu"`
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
	if r.Transport == TransportWS {
		server += " over WebSocket"
	}
	p("server        %s, certificate %s\n", server, r.Certificate)
	if r.ServerB != "" {
		p("server b      %s (receivers), certificate %s\n", r.ServerB, r.CertificateB)
	}
	switch {
	case r.Mode == ModeIdle:
		r.writeIdle(p)
	case r.Group != nil:
		r.writeGroup(p)
	case r.Presence != nil:
		r.writePresence(p)
	default:
		r.writeLoad(p)
	}
	if s := r.ServerUsage; s != nil {
		switch {
		case r.Group != nil:
			p("server cpu    %.3f µs per delivery (%.2f s in the measured interval, pid %d)\n", s.CPUPerMsg, s.CPUSeconds, s.PID)
		case r.Presence != nil:
			p("server cpu    %.2f cores without churn, %.2f with it (pid %d)\n", r.Presence.Quiet.ServerCPU, r.Presence.Churned.ServerCPU, s.PID)
		case r.Mode != ModeIdle:
			p("server cpu    %.3f µs per delivered message (%.2f s in the measured interval, pid %d)\n", s.CPUPerMsg, s.CPUSeconds, s.PID)
		}
		for i, n := range s.Nodes {
			p("  node %c      %.3f µs (%.2f s, pid %d), memory peak %s\n", 'a'+i, n.CPUPerMsg, n.CPUSeconds, n.PID, bytesText(n.PeakRSS))
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

func (r *Report) writeGroup(p func(string, ...any)) {
	g := r.Group
	who := fmt.Sprintf("%d receivers", g.Receivers)
	if g.Members > 0 {
		who = fmt.Sprintf("%d members and %d sender(s)", g.Members, g.Senders)
	}
	p("run           %s, %s, %d-byte messages, window %d per sender, %s after %s warmup\n",
		r.Mode, who, r.Size, r.Window, secondsText(r.Duration), secondsText(r.Warmup))
	p("delivered     %s deliveries/s, %s messages/s to %d recipients each, %.1f MB/s (%s deliveries measured)\n",
		countText(uint64(g.DeliveriesPerSec)), countText(uint64(g.MessagesPerSec)), g.Recipients, r.MBPerSec, countText(r.MeasuredDelivered))
	p("latency       %s (at every recipient)\n", latencyText(r.Latency))
	p("messages      sent %s, delivered %s of %s deliveries, lost %d (at %d receivers), out of order %d, errors %d\n",
		countText(r.Sent), countText(r.Delivered), countText(g.Expected), r.Lost, g.ReceiversWithLoss, r.OutOfOrder, r.Errors)
	p("order         the same at %d of %d receivers that got every message\n", g.OrderCompared-g.OrderDiffers, g.OrderCompared)
	for _, e := range r.ErrorList {
		p("error: %s\n", e)
	}
}

func (r *Report) writePresence(p func(string, ...any)) {
	s := r.Presence
	p("run           presence, %s sessions watching %d names each (%s entries) among %s users, churn %d logins and %d logouts/s, %d relay pairs, %s per phase after %s warmup\n",
		countText(uint64(s.Sessions)), s.Watch, countText(uint64(s.WatchEntries)), countText(uint64(s.ChurnUsers)), s.Churn, s.Churn, r.Pairs, secondsText(r.Duration), secondsText(r.Warmup))
	p("churn         %.0f logins/s, %.0f logouts/s done, %d failed, start lag %s\n", s.LoginsPerSec, s.LogoutsPerSec, s.ChurnFailed, latencyText(s.ChurnLag))
	p("presence      %s lines/s carrying %s names/s\n", countText(uint64(s.LinesPerSec)), countText(uint64(s.NamesPerSec)))
	p("delay         %s (change to PRESENCE at each watcher)\n", latencyText(s.Delay))
	p("correct       %.2f%% of watchers right in every check (%d checks, %s of %s entries wrong); %s of %s right %s after the churn\n",
		100*s.CorrectShare, s.Samples, countText(s.EntriesWrong), countText(s.EntriesChecked), countText(uint64(s.FinalCorrect)), countText(uint64(s.Sessions)), presenceDeadline)
	if s.RSSWatched > 0 {
		settled := ""
		if !s.MemorySettled {
			settled = " (not settled)"
		}
		p("server memory %s before the watches, %s with them, %s after the churn: %.1f bytes per watch entry (%.1f after the churn)%s\n",
			bytesText(s.RSSBefore), bytesText(s.RSSWatched), bytesText(s.RSSAfter), s.BytesPerEntry, s.BytesPerEntryAfter, settled)
	}
	p("relay         %s msgs/s without churn, %s with it: %.2f×", countText(uint64(s.Quiet.RelayMsgsPerSec)), countText(uint64(s.Churned.RelayMsgsPerSec)), s.RelayRatio)
	if s.ServerBoundRatio > 0 {
		p(" (the churn took about %.2f of the server's cores; its CPU alone would allow about %.2f×)", s.ChurnServerCPU, s.ServerBoundRatio)
	}
	p("\n")
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
