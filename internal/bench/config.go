// Package bench is the load generator behind "messager bench": it logs in
// pairs of bench users, relays messages through a server as fast as a
// window allows (closed loop) or at a fixed rate (open loop), fans messages
// out to the members of one group, holds many idle sessions, or drives a
// churn of logins and logouts past sessions that watch them, and reports
// throughput, latency, losses and what the server spent on it.
//
// Each message's text carries a sequence number and its send time, so the
// receiving side measures latency and order without any shared state
// beyond a few counters; senders and receivers run in the same process.
package bench

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Defaults of a run.
const (
	DefaultPairs      = 10
	DefaultSize       = 100
	DefaultWindow     = 64
	DefaultDuration   = 10 * time.Second
	DefaultWarmup     = time.Second
	DefaultDrain      = 2 * time.Second
	DefaultUserPrefix = "b-"
	DefaultHold       = time.Second
	DefaultProbes     = 1000
	DefaultSenders    = 1
	DefaultWatch      = 100
	DefaultChurn      = 500
	// DefaultSettleWait bounds each wait of a presence run for the
	// server's liveness round, after which its memory is read: a little
	// over the server's default CHECK interval.
	DefaultSettleWait = 70 * time.Second
	// DefaultPassword is the password of bench users in a user file
	// written by WriteUsers when none is given.
	DefaultPassword = "bench-password"
)

// Config describes one bench run.
type Config struct {
	// Server is the host:port of a running server. Empty: the bench starts
	// a server of its own as a child process.
	Server string
	// ServerPID is the process id of a running server on this machine,
	// for its CPU time and memory; 0 when unknown.
	ServerPID int
	// TLS says how to check the certificate of a running server. A server
	// the bench starts is always pinned by fingerprint.
	TLS TLS
	// Transport is how sessions reach the server: TransportTLS, the line
	// protocol over TLS (the default), or TransportWS, the web client's
	// WebSocket on the same port.
	Transport string

	// ServerB is a second running server, another node of a cluster:
	// when set, the receivers of a 1:1 load and the members of a group
	// log in to it, the senders to Server, so every message crosses
	// from one node to the other. ServerPIDB is its process, whose CPU
	// counts with Server's; TLSB checks its certificate (zero: as TLS,
	// for nodes that share a certificate or an authority).
	ServerB    string
	ServerPIDB int
	TLSB       TLS
	// UserPrefix starts every bench user name; Password is theirs.
	UserPrefix string
	Password   string

	// Pairs of sender and receiver sessions, each sending Size-byte
	// messages for Duration after Warmup, then waiting up to Drain for
	// messages in flight.
	Pairs    int
	Size     int
	Duration time.Duration
	Warmup   time.Duration
	Drain    time.Duration
	// Window is the most un-acknowledged messages per sender (closed
	// loop); Rate, when set, is the total messages per second over all
	// senders instead (open loop).
	Window int
	Rate   float64

	// Sessions, when set, selects the idle mode: that many idle sessions,
	// held for Hold, while Probes messages go to random ones. In the
	// presence mode it is the number of watching sessions.
	Sessions int
	Hold     time.Duration
	Probes   int

	// Version2 makes the 1:1 load's sessions say HELLO 2 before they log
	// in, so the relay of version-2 sessions can be measured; the group
	// and presence modes always use version 2.
	Version2 bool

	// GroupSize, when set, selects the group mode: GroupSize members of
	// one group receive what Senders sessions (DefaultSenders when zero),
	// members too, send to it, Window messages in flight per sender.
	GroupSize int
	Senders   int

	// Presence selects the presence mode: Sessions sessions each watch
	// Watch names among ChurnUsers users (ten times Churn when zero), of
	// which Churn a second log in and Churn log out, while Pairs pairs
	// relay in a closed loop, first without the churn, then with it.
	Presence   bool
	Watch      int
	Churn      int
	ChurnUsers int
	// SettleWait bounds each wait for the server's liveness round before
	// its memory is read (DefaultSettleWait when zero).
	SettleWait time.Duration

	// Executable is the messager binary started as the server when Server
	// is empty; ServeArgs are extra flags for its serve command.
	Executable string
	ServeArgs  []string

	// Progress receives a live progress line once a second; nil for none.
	Progress io.Writer
}

// Mode names of a report.
const (
	ModeClosedLoop = "closed-loop"
	ModeOpenLoop   = "open-loop"
	ModeIdle       = "idle"
	ModeGroup      = "group"
	ModePresence   = "presence"
)

func (c *Config) mode() string {
	switch {
	case c.GroupSize > 0:
		return ModeGroup
	case c.Presence:
		return ModePresence
	case c.Sessions > 0:
		return ModeIdle
	case c.Rate > 0:
		return ModeOpenLoop
	}
	return ModeClosedLoop
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.Pairs == 0 {
		c.Pairs = DefaultPairs
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Window == 0 && c.Rate == 0 {
		c.Window = DefaultWindow
	}
	if c.Transport == "" {
		c.Transport = TransportTLS
	}
	if c.UserPrefix == "" {
		c.UserPrefix = DefaultUserPrefix
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.Probes == 0 {
		c.Probes = DefaultProbes
	}
	if c.GroupSize > 0 && c.Senders == 0 {
		c.Senders = DefaultSenders
	}
	if c.Presence {
		if c.Watch == 0 {
			c.Watch = DefaultWatch
		}
		if c.Churn == 0 {
			c.Churn = DefaultChurn
		}
		if c.ChurnUsers == 0 {
			c.ChurnUsers = 10 * c.Churn
		}
		if c.SettleWait == 0 {
			c.SettleWait = DefaultSettleWait
		}
	}
	return c
}

// Check reports whether the config, with defaults filled in, describes a
// run; its errors name the command-line flags at fault.
func (c Config) Check() error {
	c = c.withDefaults()
	return c.validate()
}

// validate checks a config after withDefaults.
func (c *Config) validate() error {
	switch {
	case c.Pairs < 1:
		return errors.New("--pairs must be at least 1")
	case c.Size < MinSize || c.Size > MaxSize:
		return fmt.Errorf("--size must be between %d and %d bytes (each message carries a sequence number and a timestamp)", MinSize, MaxSize)
	case c.Duration <= 0:
		return errors.New("--duration must be positive")
	case c.Warmup < 0 || c.Drain < 0 || c.Hold < 0:
		return errors.New("--warmup, --drain and --hold must not be negative")
	case c.Window < 0 || c.Rate < 0:
		return errors.New("--window and --rate must not be negative")
	case c.Window > 0 && c.Rate > 0:
		return errors.New("--window and --rate exclude each other: a closed loop or an open one")
	case c.Sessions < 0 || c.Probes < 0:
		return errors.New("--sessions and --probes must not be negative")
	case !protocol.ValidPassword([]byte(c.Password)):
		return errors.New("--password must be 1 to 128 bytes without spaces or control characters")
	case c.ServerPID != 0 && c.Server == "":
		return errors.New("--server-pid needs --server: a server the bench starts is measured anyway")
	case c.Transport != TransportTLS && c.Transport != TransportWS:
		return fmt.Errorf("--transport must be %s or %s, not %q", TransportTLS, TransportWS, c.Transport)
	}
	if err := c.validateServerB(); err != nil {
		return err
	}
	if err := c.validateGroup(); err != nil {
		return err
	}
	if err := c.validatePresence(); err != nil {
		return err
	}
	return c.validateNames()
}

func (c *Config) validateServerB() error {
	switch {
	case c.ServerB == "" && (c.ServerPIDB != 0 || c.TLSB != TLS{}):
		return errors.New("--server-pid-b and --fingerprint-b go with --server-b")
	case c.ServerB == "":
		return nil
	case c.Server == "":
		return errors.New("--server-b needs --server: the bench starts one server, not a cluster")
	case c.Sessions > 0 || c.Presence:
		return errors.New("--server-b is for the 1:1 and group loads: receivers on one node, senders on the other")
	case c.ServerPIDB != 0 && c.ServerPID == 0:
		return errors.New("--server-pid-b goes with --server-pid: the CPU of both nodes counts together")
	}
	return nil
}

func (c *Config) validateGroup() error {
	switch {
	case c.GroupSize < 0 || c.Senders < 0:
		return errors.New("--group-size and --senders must not be negative")
	case c.GroupSize == 0 && c.Senders > 0:
		return errors.New("--senders is for a group run (--group-size N)")
	case c.GroupSize == 0:
		return nil
	case c.Sessions > 0 || c.Presence:
		return errors.New("--group-size excludes --sessions and --presence: one kind of run at a time")
	case c.Rate > 0:
		return errors.New("--rate is for pairs: a group run keeps --window messages in flight per sender")
	}
	return nil
}

func (c *Config) validatePresence() error {
	if !c.Presence {
		if c.Watch != 0 || c.Churn != 0 || c.ChurnUsers != 0 {
			return errors.New("--watch, --churn and --churn-users are for a presence run (--presence)")
		}
		return nil
	}
	switch {
	case c.Sessions < 1:
		return errors.New("--presence needs --sessions N: the sessions that watch")
	case c.Rate > 0:
		return errors.New("--rate is for pairs alone: a presence run measures the closed-loop relay rate with and without the churn")
	case c.Churn < 1:
		return errors.New("--churn must be at least 1 login and 1 logout a second")
	case c.ChurnUsers < 2:
		return errors.New("--churn-users must be at least 2")
	case c.Watch < 1 || c.Watch > c.ChurnUsers:
		return fmt.Errorf("--watch must be from 1 to --churn-users (%d): each session watches that many different users", c.ChurnUsers)
	case c.SettleWait < 0:
		return errors.New("the settle wait must not be negative")
	}
	return nil
}

// validateNames checks that every bench user name of the run is a valid
// name and that the longest message line fits the protocol.
func (c *Config) validateNames() error {
	longest := []string{senderName(c.UserPrefix, max(c.Pairs, c.Senders)-1), receiverName(c.UserPrefix, c.Pairs-1)}
	if c.Sessions > 0 {
		longest = append(longest, idleName(c.UserPrefix, c.Sessions-1))
	}
	if c.GroupSize > 0 {
		longest = append(longest, memberName(c.UserPrefix, c.GroupSize-1))
		if g := groupName(c.UserPrefix); !protocol.ValidGroupString(g) {
			return fmt.Errorf("bench group name %q is not a valid group name: use a shorter --user-prefix of A-Z a-z 0-9 _ . -", g)
		}
	}
	if c.ChurnUsers > 0 {
		longest = append(longest, churnName(c.UserPrefix, c.ChurnUsers-1))
	}
	for _, name := range longest {
		if !protocol.ValidNameString(name) {
			return fmt.Errorf("bench user name %q is not a valid user name: use a shorter --user-prefix of A-Z a-z 0-9 _ . -", name)
		}
	}
	text := string(padding[:c.Size])
	if n := protocol.MsgLen(longest[0], longest[1], text); n > protocol.MaxLine {
		return fmt.Errorf("--size %d makes a %d-byte line, over the protocol's %d", c.Size, n, protocol.MaxLine)
	}
	if c.GroupSize > 0 {
		if n := protocol.MsgLen(groupName(c.UserPrefix), longest[0], text); n > protocol.MaxLine {
			return fmt.Errorf("--size %d makes a %d-byte line, over the protocol's %d", c.Size, n, protocol.MaxLine)
		}
	}
	return nil
}

// Bench user names: sender i sends only to receiver i (or, in a group
// run, to the group); idle and watching sessions, group members and
// churning users have names of their own. Numbers are fixed-width, so
// that a receiver can read a sender's index from its name.
func senderName(prefix string, i int) string   { return fmt.Sprintf("%ss-%04d", prefix, i+1) }
func receiverName(prefix string, i int) string { return fmt.Sprintf("%sr-%04d", prefix, i+1) }
func idleName(prefix string, i int) string     { return fmt.Sprintf("%si-%06d", prefix, i+1) }
func memberName(prefix string, i int) string   { return fmt.Sprintf("%sm-%04d", prefix, i+1) }
func churnName(prefix string, i int) string    { return fmt.Sprintf("%sc-%06d", prefix, i+1) }

// groupName is the group of a group run; the prefix keeps runs with
// different prefixes apart on a shared server.
func groupName(prefix string) string { return "#" + prefix + "group" }

// withNameDefaults fills the fields that decide the bench user names.
func (c Config) withNameDefaults() Config {
	if c.UserPrefix == "" {
		c.UserPrefix = DefaultUserPrefix
	}
	if c.Presence && c.ChurnUsers == 0 {
		churn := c.Churn
		if churn == 0 {
			churn = DefaultChurn
		}
		c.ChurnUsers = 10 * churn
	}
	return c
}

// UserNames returns the names of the bench users a run as cfg describes
// logs in as, whatever its mode: the pairs' senders and receivers (at
// least as many senders as a group run has), Sessions idle or watching
// sessions, GroupSize group members and ChurnUsers churning users (those
// of a presence run's defaults when Presence is set). The idle mode also
// uses the first sender to send its probe messages.
func UserNames(cfg Config) []string {
	cfg = cfg.withNameDefaults()
	pairs := max(cfg.Pairs, 1)
	senders := max(pairs, cfg.Senders)
	names := make([]string, 0, senders+pairs+cfg.Sessions+cfg.GroupSize+cfg.ChurnUsers)
	for i := range senders {
		names = append(names, senderName(cfg.UserPrefix, i))
		if i < pairs {
			names = append(names, receiverName(cfg.UserPrefix, i))
		}
	}
	for i := range cfg.Sessions {
		names = append(names, idleName(cfg.UserPrefix, i))
	}
	for i := range cfg.GroupSize {
		names = append(names, memberName(cfg.UserPrefix, i))
	}
	for i := range cfg.ChurnUsers {
		names = append(names, churnName(cfg.UserPrefix, i))
	}
	return names
}
