package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
)

// target is the server a run talks to.
type target struct {
	addr    string
	dial    *dialer
	pid     int  // 0 when unknown: no server CPU or memory figures
	started bool // the bench started it
	// recv logs in the receivers and group members: dial, or the second
	// node's dialer; pidB is that node's process (0: unknown or none).
	recv *dialer
	pidB int
}

// pids are the server processes whose CPU and memory count: one, both
// nodes, or none.
func (t *target) pids() []int {
	var pids []int
	for _, p := range []int{t.pid, t.pidB} {
		if p != 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// Run performs one bench run as cfg describes and returns its report.
// Without cfg.Server it starts a server of its own first and stops it at
// the end.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &Report{
		Mode:     cfg.mode(),
		Pairs:    cfg.Pairs,
		Size:     cfg.Size,
		Window:   cfg.Window,
		Rate:     cfg.Rate,
		Warmup:   cfg.Warmup.Seconds(),
		Duration: cfg.Duration.Seconds(),
	}
	switch rep.Mode {
	case ModeIdle:
		rep.Pairs, rep.Window, rep.Rate, rep.Warmup, rep.Duration = 0, 0, 0, 0, 0
	case ModeGroup:
		rep.Pairs = 0
	}
	for i, pid := range []int{cfg.ServerPID, cfg.ServerPIDB} {
		if pid == 0 {
			continue
		}
		if _, err := readProc(pid); err != nil {
			return nil, fmt.Errorf("%s %d: %w", []string{"--server-pid", "--server-pid-b"}[i], pid, err)
		}
	}
	// Before any child starts, so that it inherits the higher limit too.
	fileLimit, limitErr := raiseFileLimit()
	if limitErr != nil {
		rep.Warnings = append(rep.Warnings, limitErr.Error())
	}

	t := &target{addr: cfg.Server, pid: cfg.ServerPID}
	tlsInfo := cfg.TLS
	if cfg.Server == "" {
		child, err := startOwnServer(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer child.stop()
		t.addr, t.pid, t.started = child.addr, child.pid, true
		tlsInfo = TLS{Fingerprint: child.fingerprint}
		rep.CheapHashes = true
	}
	tlsCfg, err := tlsInfo.config(t.addr)
	if err != nil {
		return nil, err
	}
	ws := cfg.Transport == TransportWS
	t.dial = &dialer{addr: t.addr, tls: tlsCfg, ws: ws}
	t.recv = t.dial
	rep.Server, rep.ServerStarted, rep.Certificate = t.addr, t.started, tlsInfo.verification()
	rep.Transport = cfg.Transport
	if cfg.ServerB != "" {
		tlsB := cfg.TLSB
		if tlsB == (TLS{}) {
			tlsB = cfg.TLS
		}
		cfgB, err := tlsB.config(cfg.ServerB)
		if err != nil {
			return nil, err
		}
		t.recv = &dialer{addr: cfg.ServerB, tls: cfgB, ws: ws}
		t.pidB = cfg.ServerPIDB
		rep.ServerB, rep.CertificateB = cfg.ServerB, tlsB.verification()
	}

	switch rep.Mode {
	case ModeIdle:
		err = runIdle(ctx, &cfg, t, rep, fileLimit)
	case ModeGroup:
		err = runGroup(ctx, &cfg, t, rep)
	case ModePresence:
		err = runPresence(ctx, &cfg, t, rep, fileLimit)
	default:
		err = runLoad(ctx, &cfg, t, rep)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// startOwnServer writes a user file and starts "messager serve" in a
// temporary directory that goes away with the child.
func startOwnServer(ctx context.Context, cfg *Config) (*child, error) {
	exe := cfg.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the messager binary to start a server: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "messager-bench-")
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	usersFile := filepath.Join(dir, "user.csv")
	if err := writeUsersFile(usersFile, UserNames(*cfg), cfg.Password); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"serve",
		"--listen", "127.0.0.1:0",
		"--users", usersFile,
		"--cert", filepath.Join(dir, "cert.pem"),
		"--key", filepath.Join(dir, "key.pem"),
		"--log-format", "json",
	}
	args = append(args, ownServerLimits(cfg)...)
	args = append(args, cfg.ServeArgs...)
	c, err := startChild(ctx, exe, args, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// ownServerLimits returns the serve flags that lift a server's default
// limits where the run needs more: a group of more than the default
// members, a watch list longer than the default. Flags given with
// --serve-arg win, since they come later.
func ownServerLimits(cfg *Config) []string {
	var args []string
	if n := cfg.GroupSize + cfg.Senders; cfg.GroupSize > 0 && n > server.DefaultMaxMembers {
		args = append(args, "--max-members", strconv.Itoa(n))
	}
	if cfg.Presence && cfg.Watch > server.DefaultMaxWatch {
		args = append(args, "--max-watch", strconv.Itoa(cfg.Watch))
	}
	return args
}

// WriteUsers writes a user file for the bench users of a run as cfg
// describes (see UserNames; Pairs is at least 1), all with cfg.Password
// (DefaultPassword when empty) and cheap hashes, so that an operator can
// start a server of their own for the bench. It returns how many users it
// wrote.
func WriteUsers(path string, cfg Config) (int, error) {
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = DefaultUserPrefix
	}
	if cfg.Password == "" {
		cfg.Password = DefaultPassword
	}
	cfg.Pairs = max(cfg.Pairs, 1)
	cfg = cfg.withNameDefaults()
	names := UserNames(cfg)
	if cfg.Size == 0 {
		cfg.Size = DefaultSize
	}
	if !protocol.ValidPassword([]byte(cfg.Password)) {
		return 0, errors.New("--password must be 1 to 128 bytes without spaces or control characters")
	}
	if err := cfg.validateNames(); err != nil {
		return 0, err
	}
	return len(names), writeUsersFile(path, names, cfg.Password)
}

// writeUsersFile writes names with one cheap hash of password: the same
// hash for every user, since hashing thousands of times would only slow
// the bench down, and these accounts are throw-away.
func writeUsersFile(path string, names []string, password string) error {
	hash, err := users.HashWithParams([]byte(password), users.CheapParams)
	if err != nil {
		return fmt.Errorf("hash bench password: %w", err)
	}
	var b strings.Builder
	b.Grow(len(names) * (len(hash) + 16))
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(',')
		b.WriteString(hash)
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write bench users: %w", err)
	}
	_, err = io.WriteString(f, b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write bench users: %w", err), os.Remove(path))
	}
	return nil
}
