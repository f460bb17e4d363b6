package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// groupRun is the group mode: GroupSize members and Senders senders, all
// version-2 sessions, join one group; the senders send to it and every
// other member gets each message. The senders are members too (only
// members may send to a group) and, when there are several, get each
// other's messages, which count as deliveries like the members' do.
type groupRun struct {
	cfg   *Config
	group string
	// relayPrefix starts every message a member gets: "RELAY <group> ";
	// senderPrefix starts every sender's name.
	relayPrefix, senderPrefix []byte

	mu       sync.Mutex
	sessions []*session
}

// runGroup logs in and joins the members (on the second node, when the
// run has one), then the senders, and runs the
// fan-out load through the group. It is one of the run modes; the others
// live beside it.
func runGroup(ctx context.Context, cfg *Config, t *target, rep *Report) error {
	g := &groupRun{
		cfg:          cfg,
		group:        groupName(cfg.UserPrefix),
		relayPrefix:  []byte("RELAY " + groupName(cfg.UserPrefix) + " "),
		senderPrefix: []byte(cfg.UserPrefix + "s-"),
	}
	defer g.closeAll()
	members := make([]*session, cfg.GroupSize)
	err := loginAll(ctx, cfg.GroupSize, func(ctx context.Context, i int) error {
		s, err := g.join(ctx, t.recv, memberName(cfg.UserPrefix, i))
		members[i] = s
		return err
	})
	senders := make([]*session, cfg.Senders)
	if err == nil {
		// After every member, so that the first message reaches them all.
		err = loginAll(ctx, cfg.Senders, func(ctx context.Context, i int) error {
			s, err := g.join(ctx, t.dial, senderName(cfg.UserPrefix, i))
			senders[i] = s
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("log in and join the group: %w", err)
	}

	f := &Fanout{
		Mode:       ModeGroup,
		Size:       cfg.Size,
		Window:     cfg.Window,
		Warmup:     cfg.Warmup,
		Duration:   cfg.Duration,
		Drain:      cfg.Drain,
		ServerPIDs: t.pids(),
		Progress:   cfg.Progress,
		Close:      g.closeAll,
	}
	for j, s := range senders {
		f.Senders = append(f.Senders, FanoutSender{
			Name:   "sender " + s.user,
			Conn:   s.conn,
			Prefix: fmt.Appendf(nil, "MSG %s %s ", g.group, s.user),
			Suffix: []byte("\r\n"),
		})
		f.Receivers = append(f.Receivers, FanoutReceiver{Name: "sender " + s.user, Self: j, Read: g.reader(s)})
	}
	for _, s := range members {
		f.Receivers = append(f.Receivers, FanoutReceiver{Name: "member " + s.user, Self: -1, Read: g.reader(s)})
	}
	if err := f.run(ctx, rep); err != nil {
		return err
	}
	rep.Group.Members = cfg.GroupSize
	return nil
}

// join logs name in with HELLO 2, checks that the server's groups are big
// enough for the run, and joins the group: it returns once the server
// has answered the JOIN (and so counts the session a member).
func (g *groupRun) join(ctx context.Context, d *dialer, name string) (*session, error) {
	s, err := d.login(ctx, name, g.cfg.Password, loginOptions{busy: true, version2: true})
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.sessions = append(g.sessions, s)
	g.mu.Unlock()
	need := g.cfg.GroupSize + g.cfg.Senders
	switch f := s.features; {
	case f.Groups == 0:
		return nil, fmt.Errorf("%s: the server does not offer groups (serve --groups open)", name)
	case f.Members < need:
		return nil, fmt.Errorf("%s: the server's groups hold at most %d members and this run needs %d (serve --max-members %d)", name, f.Members, need, need)
	}
	_ = s.conn.SetDeadline(time.Now().Add(loginTimeout))
	if _, err := s.conn.Write(protocol.AppendJoinQuery(nil, g.group)); err != nil {
		return nil, fmt.Errorf("%s: join %s: %w", name, g.group, err)
	}
	joined := false
	for {
		raw, err := s.reader.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("%s: join %s: %w", name, g.group, err)
		}
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: join %s: malformed line from the server", name, g.group)
		}
		switch {
		case sl.Kind == protocol.KindFail:
			return nil, fmt.Errorf("%s: join %s: FAIL %s <%s>", name, g.group, sl.Verb, sl.Reason)
		case sl.Kind == protocol.KindEnd:
			return nil, fmt.Errorf("%s: join %s: server closed the session: END <%s>", name, g.group, sl.Reason)
		case sl.Kind == protocol.KindJoin && string(sl.User) == name:
			joined = true
		case sl.Kind == protocol.KindWho && joined:
			// The answer's second line: the session is a member now.
			_ = s.conn.SetDeadline(time.Time{})
			return s, nil
		}
		// Other members joining, CHECK: keep waiting.
	}
}

// reader returns the read loop of a member or sender: every RELAY of the
// group is handed on with its sender's index, read from the name.
func (g *groupRun) reader(s *session) func(*Deliveries) error {
	return func(d *Deliveries) error {
		rd := s.reader
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
				// Fast path: nearly every line is a RELAY to the group
				// from a bench sender.
				if rest, ok := bytes.CutPrefix(raw, g.relayPrefix); ok {
					if j, text, ok := cutSenderIndex(rest, g.senderPrefix); ok {
						d.Deliver(j, text)
						continue
					}
				}
				g.other(d, s, raw)
			}
			d.Flush()
			if err != nil {
				return err
			}
			err = rd.Fill()
		}
	}
}

// cutSenderIndex reads "<prefix>NNNN " from the start of b: the index of
// a bench sender (NNNN minus one), and what follows the space.
func cutSenderIndex(b, prefix []byte) (int, []byte, bool) {
	rest, ok := bytes.CutPrefix(b, prefix)
	if !ok {
		return 0, nil, false
	}
	n := 0
	for i, c := range rest {
		switch {
		case c >= '0' && c <= '9' && i < 9:
			n = n*10 + int(c-'0')
		case c == ' ' && i > 0 && n > 0:
			return n - 1, rest[i+1:], true
		default:
			return 0, nil, false
		}
	}
	return 0, nil, false
}

// other handles a line that is not a message to the group.
func (g *groupRun) other(d *Deliveries, s *session, raw []byte) {
	sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
	switch {
	case err != nil:
		d.Errorf("%s: malformed line from the server", s.user)
	case sl.Kind == protocol.KindRelay:
		d.Errorf("%s: a message that is not from the group's senders", s.user)
	case sl.Kind == protocol.KindEnd:
		d.Errorf("%s: server closed the session: END <%s>", s.user, sl.Reason)
	case sl.Kind == protocol.KindFail:
		d.Errorf("%s: FAIL %s %s <%s>", s.user, sl.Verb, sl.Subject, sl.Reason)
	case sl.Kind == protocol.KindCNT:
		d.Errorf("%s: unexpected CNT", s.user)
	}
	// JOIN, PART, WHO and CHECK are the group's and the server's
	// housekeeping.
}

// closeAll closes every session, a bounded number at a time.
func (g *groupRun) closeAll() {
	g.mu.Lock()
	sessions := g.sessions
	g.sessions = nil
	g.mu.Unlock()
	closeSessions(sessions)
}

// closeSessions closes sessions, a bounded number at a time.
func closeSessions(sessions []*session) {
	sem := make(chan struct{}, closeConcurrency)
	var wg sync.WaitGroup
	for _, s := range sessions {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); s.close() }()
	}
	wg.Wait()
}
