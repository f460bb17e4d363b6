// Package bench is the load generator behind "messager bench": it logs in
// pairs of bench users, relays messages through a server as fast as a
// window allows (closed loop) or at a fixed rate (open loop), or holds many
// idle sessions, and reports throughput, latency, losses and what the
// server spent on it.
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
	// held for Hold, while Probes messages go to random ones.
	Sessions int
	Hold     time.Duration
	Probes   int

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
)

func (c *Config) mode() string {
	switch {
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
	if c.UserPrefix == "" {
		c.UserPrefix = DefaultUserPrefix
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.Probes == 0 {
		c.Probes = DefaultProbes
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
	}
	// The longest name must be valid, and the MSG line must fit.
	longest := []string{senderName(c.UserPrefix, c.Pairs-1), receiverName(c.UserPrefix, c.Pairs-1)}
	if c.Sessions > 0 {
		longest = append(longest, idleName(c.UserPrefix, c.Sessions-1))
	}
	for _, name := range longest {
		if !protocol.ValidNameString(name) {
			return fmt.Errorf("bench user name %q is not a valid user name: use a shorter --user-prefix of A-Z a-z 0-9 _ . -", name)
		}
	}
	if n := protocol.MsgLen(longest[0], longest[1], string(padding[:c.Size])); n > protocol.MaxLine {
		return fmt.Errorf("--size %d makes a %d-byte line, over the protocol's %d", c.Size, n, protocol.MaxLine)
	}
	return nil
}

// Bench user names: sender i sends only to receiver i; idle sessions have
// names of their own.
func senderName(prefix string, i int) string   { return fmt.Sprintf("%ss-%04d", prefix, i+1) }
func receiverName(prefix string, i int) string { return fmt.Sprintf("%sr-%04d", prefix, i+1) }
func idleName(prefix string, i int) string     { return fmt.Sprintf("%si-%06d", prefix, i+1) }

// UserNames returns the names of the bench users a run of pairs pairs and
// sessions idle sessions logs in as. The idle mode also uses the first
// sender to send its probe messages.
func UserNames(prefix string, pairs, sessions int) []string {
	pairs = max(pairs, 1)
	names := make([]string, 0, 2*pairs+sessions)
	for i := range pairs {
		names = append(names, senderName(prefix, i), receiverName(prefix, i))
	}
	for i := range sessions {
		names = append(names, idleName(prefix, i))
	}
	return names
}
