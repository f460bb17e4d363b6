// Package cluster makes several messager servers act as one, over NATS:
// an embedded nats-server with routes between the nodes (or an existing
// NATS system), a directory of which user is on which node, and batched
// streams of relayed messages between nodes. It stands in front of one
// node's relay engine as its server.Cluster: the engine asks it where a
// target is, and tells it of logins and group changes here.
//
// Each node has a subject of its own, "<prefix>.n.<node id>", on which it
// receives every record other nodes send it, in one ordered stream per
// sender: messages, logins and logouts, group joins and parts (see
// wire.go). Nodes announce themselves on "<prefix>.hb" every heartbeat;
// a node not heard from for the peer timeout is gone, and its users with
// it. Operators' requests go to every node on "<prefix>.ask".
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
)

// Defaults of Config.
const (
	DefaultHeartbeat   = time.Second
	DefaultPeerTimeout = 3 * time.Second
	// DefaultAskTimeout bounds how long an operator's request waits for
	// the other nodes' answers.
	DefaultAskTimeout = 2 * time.Second
	// maxLinkQueue is the most bytes waiting for one other node; past it
	// messages for that node are refused (the sender gets CNT), so a
	// slow or unreachable node costs a bounded amount of memory.
	maxLinkQueue = 16 << 20
	// maxBatch is the most bytes of records in one NATS message, well
	// within NATS's default payload limit of 1 MiB.
	maxBatch = 256 << 10
)

// Config configures a node's part in a cluster.
type Config struct {
	// Name is the cluster's name; nodes of one cluster share it, and it
	// is the root of the subjects.
	Name string
	// NodeName names this node in logs and operators' listings.
	NodeName string
	// Connect opens a connection to the NATS system; the node opens one
	// for its subscriptions and one per other node for what it sends
	// there, so a slow node never holds up the others.
	Connect func(name string, opts ...nats.Option) (*nats.Conn, error)
	// Heartbeat is how often the node announces itself; a node not
	// heard from for PeerTimeout is gone.
	Heartbeat, PeerTimeout time.Duration
	// AskTimeout bounds an operator's request to the other nodes.
	AskTimeout time.Duration
	// Logger receives the node's logs.
	Logger *slog.Logger
}

// Node is this server's part in a cluster. It is the server's Router and
// Cluster; Attach it to the server before the server takes connections.
type Node struct {
	cfg    Config
	id     string
	prefix string
	log    *slog.Logger
	clock  hlc
	dir    directory

	srv   *server.Server
	local *server.Registry
	in    *server.Inbound // only the subscription's goroutine uses it

	nc   *nats.Conn // subscriptions, heartbeats, requests
	subs []*nats.Subscription

	// claimsMu guards claims, and orders the O and F records this node
	// sends: a new node's snapshot of claims and every later change are
	// sent under it. Lock order: a group's lock, claimsMu, peersMu, a
	// link's lock.
	claimsMu sync.Mutex
	claims   map[string]claim // this node's sessions, by user

	peersMu sync.RWMutex
	peers   map[string]*peer // other nodes, by id

	askMu     sync.RWMutex
	askAnswer func(req []byte) []byte

	usersDigest atomic.Pointer[string]
	digestOf    *users.Table // the table usersDigest is of; the beat's own
	stop        chan struct{}
	wg          sync.WaitGroup
	closed      atomic.Bool
}

// claim is a session here and the stamp of its login.
type claim struct {
	sess  *server.Session
	stamp int64
}

// version is the protocol version of the claim's session.
func (c claim) version() int { return c.sess.Version() }

// New connects a node to the NATS system. It does not receive anything
// until Attach.
func New(cfg Config) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("cluster: no cluster name")
	}
	if cfg.Connect == nil {
		return nil, errors.New("cluster: no way to connect to NATS")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.PeerTimeout <= 0 {
		cfg.PeerTimeout = DefaultPeerTimeout
	}
	if cfg.PeerTimeout < 2*cfg.Heartbeat {
		return nil, fmt.Errorf("cluster: the peer timeout (%v) must be at least two heartbeats (%v)", cfg.PeerTimeout, cfg.Heartbeat)
	}
	if cfg.AskTimeout <= 0 {
		cfg.AskTimeout = DefaultAskTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var idBytes [idLen / 2]byte
	_, _ = rand.Read(idBytes[:])
	n := &Node{
		cfg:    cfg,
		id:     hex.EncodeToString(idBytes[:]),
		prefix: "messager." + subjectToken(cfg.Name),
		claims: make(map[string]claim),
		peers:  make(map[string]*peer),
		stop:   make(chan struct{}),
	}
	if n.cfg.NodeName == "" {
		n.cfg.NodeName = n.id
	}
	n.log = cfg.Logger.With("node", n.cfg.NodeName)
	n.dir.init()
	nc, err := cfg.Connect(n.cfg.NodeName, nats.NoEcho())
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nc = nc
	return n, nil
}

// subjectToken makes s safe as one token of a NATS subject.
func subjectToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == '.' || r == '*' || r == '>' || r > '~' {
			return '_'
		}
		return r
	}, s)
}

// ID is this node's id, new at every start.
func (n *Node) ID() string { return n.id }

// Attach makes srv this node's server and starts taking part: it
// subscribes, announces the node, and starts the heartbeat and the
// check for nodes gone.
func (n *Node) Attach(srv *server.Server) error {
	n.srv = srv
	n.local = srv.Local()
	n.in = srv.NewInbound()
	sub, err := n.nc.Subscribe(n.inbox(n.id), n.receive)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	// What other nodes relay must not be dropped for a burst: the
	// handler is quick, so the bound only matters for a stalled node.
	_ = sub.SetPendingLimits(-1, 256<<20)
	hb, err := n.nc.Subscribe(n.prefix+".hb", n.heartbeat)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	ask, err := n.nc.Subscribe(n.prefix+".ask", n.answer)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	bye, err := n.nc.Subscribe(n.prefix+".bye", n.bye)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	n.subs = []*nats.Subscription{sub, hb, ask, bye}
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	n.beat()
	n.wg.Add(1)
	go n.loop()
	return nil
}

func (n *Node) inbox(id string) string { return n.prefix + ".n." + id }

// SetUsersDigest sets the digest of this node's user table, which the
// heartbeat carries so that nodes can warn of tables that differ.
func (n *Node) SetUsersDigest(d string) { n.usersDigest.Store(&d) }

// loop sends the heartbeat and forgets nodes not heard from.
func (n *Node) loop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.beat()
			n.expire()
		}
	}
}

// beat announces this node: "<id> <users digest> <node name>". The
// digest is made again only when the server's table has changed (a
// reload), not at every beat.
func (n *Node) beat() {
	if t := n.srv.Users(); t != n.digestOf {
		n.digestOf = t
		n.SetUsersDigest(t.Digest())
	}
	msg := n.id + " " + *n.usersDigest.Load() + " " + n.cfg.NodeName
	if err := n.nc.Publish(n.prefix+".hb", []byte(msg)); err != nil && !n.closed.Load() {
		n.log.Warn("cluster heartbeat failed", "err", err)
	}
}

// heartbeat handles another node's heartbeat.
func (n *Node) heartbeat(m *nats.Msg) {
	f := strings.SplitN(string(m.Data), " ", 3)
	if len(f) != 3 || !validID([]byte(f[0])) || f[0] == n.id {
		return
	}
	p := n.peer(f[0], false)
	if p == nil {
		return
	}
	p.seen.Store(time.Now().UnixNano())
	p.mu.Lock()
	nameChanged, digestChanged := p.name != f[2], p.digest != f[1]
	p.name, p.digest = f[2], f[1]
	p.mu.Unlock()
	if nameChanged {
		n.log.Info("cluster node joined", "peer", f[2], "id", f[0])
	}
	if mine := *n.usersDigest.Load(); digestChanged && f[1] != mine {
		n.log.Warn("user table differs from another node's: keep user.csv the same on every node", "peer", f[2], "digest", mine, "peer_digest", f[1])
	}
}

// bye handles another node's leaving.
func (n *Node) bye(m *nats.Msg) {
	n.peersMu.RLock()
	p := n.peers[string(m.Data)]
	n.peersMu.RUnlock()
	if p != nil {
		n.forget(p, "left")
	}
}

// expire forgets the nodes not heard from for the peer timeout.
func (n *Node) expire() {
	limit := time.Now().Add(-n.cfg.PeerTimeout).UnixNano()
	n.peersMu.RLock()
	var gone []*peer
	for _, p := range n.peers {
		if p.seen.Load() < limit {
			gone = append(gone, p)
		}
	}
	n.peersMu.RUnlock()
	for _, p := range gone {
		n.forget(p, "not heard from")
	}
}

// peer returns the other node with id, making it (and sending it this
// node's state) if it is new. asked says the new node asked for the
// state, so it is sent without asking back.
func (n *Node) peer(id string, asked bool) *peer {
	n.peersMu.RLock()
	p := n.peers[id]
	n.peersMu.RUnlock()
	if p != nil || n.closed.Load() {
		return p
	}
	n.peersMu.Lock()
	if p = n.peers[id]; p != nil {
		n.peersMu.Unlock()
		return p
	}
	p = newPeer(n, id)
	p.seen.Store(time.Now().UnixNano())
	p.fresh.Store(asked)
	n.peers[id] = p
	n.peersMu.Unlock()
	nc, err := n.cfg.Connect(n.cfg.NodeName+" to "+id, nats.NoEcho())
	if err != nil {
		n.log.Warn("cluster: cannot open a connection for another node", "id", id, "err", err)
	} else {
		p.link.start(nc)
	}
	kind := byte(recHello)
	if asked {
		kind = recState
	}
	n.sendState(p, kind)
	return p
}

// sendState sends p this node's whole state: every session here and
// every group membership, between kind (H or S) and E. Changes made
// meanwhile go to p as well, in order with the state (claims under
// claimsMu, memberships under each group's lock), so p ends up with the
// state as it is.
func (n *Node) sendState(p *peer, kind byte) {
	p.link.control(func(b []byte) []byte { return append(b, kind, '\n') })
	n.claimsMu.Lock()
	for name, c := range n.claims {
		p.link.control(func(b []byte) []byte { return appendOnline(b, name, c.stamp, c.version()) })
	}
	n.claimsMu.Unlock()
	n.srv.Memberships(func(group, user string) {
		p.link.control(func(b []byte) []byte { return appendMember(b, recJoin, group, user) })
	})
	p.link.control(func(b []byte) []byte { return append(b, recEnd, '\n') })
}

// forget drops another node: its users are offline here, its group
// members gone, its link closed. A node that comes back is new again.
func (n *Node) forget(p *peer, why string) {
	n.peersMu.Lock()
	if n.peers[p.id] != p {
		n.peersMu.Unlock()
		return
	}
	delete(n.peers, p.id)
	p.gone.Store(true)
	n.peersMu.Unlock()
	p.mu.Lock()
	name := p.name
	p.mu.Unlock()
	n.log.Warn("cluster node gone: its users are offline here", "peer", name, "id", p.id, "why", why)
	p.link.close()
	n.sweep(p, -1)
	n.srv.NodeGone(p.link)
}

// sweep forgets p's users and memberships not restated since epoch
// (all of them for -1).
func (n *Node) sweep(p *peer, epoch int64) {
	p.mu.Lock()
	var users []string
	for name, c := range p.claims {
		if c.epoch != epoch {
			users = append(users, name)
			delete(p.claims, name)
		}
	}
	var parts [][2]string
	for m, e := range p.members {
		if e != epoch {
			parts = append(parts, m)
			delete(p.members, m)
		}
	}
	p.mu.Unlock()
	for _, name := range users {
		if n.dir.remove(name, p, 0) {
			n.srv.RemoteChanged(name)
		}
	}
	if epoch >= 0 {
		for _, m := range parts {
			n.srv.RemotePart(m[0], m[1], p.link)
		}
	}
}

// receive handles one batch of records from another node.
func (n *Node) receive(m *nats.Msg) {
	id, recs, ok := batchHeader(m.Data)
	if !ok || string(id) == n.id {
		return
	}
	asked := len(recs) > 0 && recs[0] == recHello
	p := n.peer(string(id), asked)
	if p == nil {
		return
	}
	p.seen.Store(time.Now().UnixNano())
	for len(recs) > 0 {
		var line []byte
		if i := bytes.IndexByte(recs, '\n'); i >= 0 {
			line, recs = recs[:i], recs[i+1:]
		} else {
			line, recs = recs, nil
		}
		r, ok := parseRecord(line)
		if !ok {
			n.in.Flush()
			n.log.Warn("cluster: malformed record from another node", "id", p.id, "len", len(line))
			continue
		}
		n.handle(p, &r)
	}
	n.in.Flush()
}

// handle applies one record from p.
func (n *Node) handle(p *peer, r *record) {
	switch r.kind {
	case recRelay:
		n.in.Relay(r.a, r.b, r.text)
	case recGroup:
		n.in.Group(r.a, r.b, r.text)
	case recOnline:
		n.in.Flush()
		n.claimed(p, string(r.a), r.stamp, r.version)
	case recHand:
		n.in.Flush()
		n.takeOver(p, string(r.a), r.stamp, splitList(r.b), splitList(r.text))
	case recOff:
		n.in.Flush()
		name := string(r.a)
		p.mu.Lock()
		if c, ok := p.claims[name]; ok && c.stamp == r.stamp {
			delete(p.claims, name)
		}
		p.mu.Unlock()
		if n.dir.remove(name, p, r.stamp) {
			n.srv.RemoteChanged(name)
		}
	case recJoin:
		n.in.Flush()
		p.mu.Lock()
		p.members[[2]string{string(r.a), string(r.b)}] = p.epoch
		p.mu.Unlock()
		n.srv.RemoteJoin(string(r.a), string(r.b), p.link)
		if p.gone.Load() {
			n.srv.RemotePart(string(r.a), string(r.b), p.link)
		}
	case recPart:
		n.in.Flush()
		m := [2]string{string(r.a), string(r.b)}
		p.mu.Lock()
		_, was := p.members[m]
		delete(p.members, m)
		p.mu.Unlock()
		if was {
			n.srv.RemotePart(m[0], m[1], p.link)
		}
	case recHello, recState:
		n.in.Flush()
		p.mu.Lock()
		p.epoch++
		p.mu.Unlock()
		if r.kind == recHello && !p.fresh.CompareAndSwap(true, false) {
			// A node that starts over with us (after a partition, say)
			// wants our state again; one that we just met has it.
			n.sendState(p, recState)
		}
	case recEnd:
		n.in.Flush()
		p.mu.Lock()
		epoch := p.epoch
		p.mu.Unlock()
		n.sweep(p, epoch)
	}
}

// claimed handles another node's login of name at stamp: the latest
// login of a user stays, on whichever node; an older session here ends.
// A version-2 login takes the older session's groups and watch list
// over, silently, as on one node.
func (n *Node) claimed(p *peer, name string, stamp int64, version int) {
	n.clock.observe(stamp)
	p.mu.Lock()
	p.claims[name] = peerClaim{stamp: stamp, epoch: p.epoch}
	p.mu.Unlock()
	var end *server.Session
	n.claimsMu.Lock()
	if c, ok := n.claims[name]; ok {
		if !later(stamp, p.id, c.stamp, n.id) {
			n.claimsMu.Unlock()
			return // ours is the later login; p ends its own
		}
		end = c.sess
	}
	added := n.dir.set(name, p, stamp)
	n.claimsMu.Unlock()
	if end != nil {
		if version >= 2 {
			groups, watches := n.srv.HandOverTo(end, p.link)
			if len(groups)+len(watches) > 0 {
				p.link.control(func(b []byte) []byte { return appendHandOver(b, name, stamp, groups, watches) })
			}
		}
		end.EndElsewhere()
	}
	if p.gone.Load() {
		// Forgotten while this record was handled: its sweep may have
		// run before the entry was made.
		n.dir.remove(name, p, 0)
	}
	if added {
		n.srv.RemoteChanged(name)
	}
}

// takeOver gives the session here of name at stamp the groups and
// watches an older session of its user on p gave up. When no such
// session can take them (it ended, or speaks version 1), the user leaves
// those groups everywhere, as its older session's end would have told.
func (n *Node) takeOver(p *peer, name string, stamp int64, groups, watches []string) {
	n.claimsMu.Lock()
	c, ok := n.claims[name]
	n.claimsMu.Unlock()
	if ok && c.stamp == stamp && n.srv.TakeOver(c.sess, groups, watches) {
		return
	}
	for _, g := range groups {
		// The J moves the member to this node everywhere, silently, so
		// that the P then removes it wherever it was known.
		n.eachPeer(func(q *peer) {
			q.link.control(func(b []byte) []byte {
				return appendMember(appendMember(b, recJoin, g, name), recPart, g, name)
			})
		})
		n.srv.RemotePart(g, name, p.link)
	}
}

// later reports whether the login (stamp a, node idA) is later than
// (stamp b, node idB).
func later(a int64, idA string, b int64, idB string) bool {
	if a != b {
		return a > b
	}
	return idA > idB
}

// Route answers where name is online: here, on another node, or nowhere.
func (n *Node) Route(name []byte) server.Route {
	if n.local == nil {
		return server.Route{}
	}
	if s := n.local.Lookup(name); s != nil {
		return server.Route{Local: s}
	}
	if p := n.dir.lookup(name); p != nil {
		return server.Route{Remote: p.link}
	}
	return server.Route{}
}

// RemoteNames calls f with every user online on other nodes.
func (n *Node) RemoteNames(f func(name string)) { n.dir.names(f) }

// LoggedIn tells the other nodes of a login here.
func (n *Node) LoggedIn(s *server.Session) {
	name := s.Name()
	n.claimsMu.Lock()
	stamp := n.clock.next()
	n.claims[name] = claim{sess: s, stamp: stamp}
	version := s.Version()
	n.eachPeer(func(p *peer) {
		p.link.control(func(b []byte) []byte { return appendOnline(b, name, stamp, version) })
	})
	n.claimsMu.Unlock()
}

// LoggedOut tells the other nodes that a session here ended.
func (n *Node) LoggedOut(s *server.Session) {
	name := s.Name()
	n.claimsMu.Lock()
	if c, ok := n.claims[name]; ok && c.sess == s {
		delete(n.claims, name)
		n.eachPeer(func(p *peer) {
			p.link.control(func(b []byte) []byte { return appendStamped(b, recOff, name, c.stamp) })
		})
	}
	n.claimsMu.Unlock()
}

// Joined tells the other nodes that user, here, joined group.
func (n *Node) Joined(group, user string) {
	n.eachPeer(func(p *peer) {
		p.link.control(func(b []byte) []byte { return appendMember(b, recJoin, group, user) })
	})
}

// Parted tells the other nodes that user, here, left group.
func (n *Node) Parted(group, user string) {
	n.eachPeer(func(p *peer) {
		p.link.control(func(b []byte) []byte { return appendMember(b, recPart, group, user) })
	})
}

func (n *Node) eachPeer(f func(p *peer)) {
	n.peersMu.RLock()
	for _, p := range n.peers {
		f(p)
	}
	n.peersMu.RUnlock()
}

// Peer describes another node, for operators.
type Peer struct {
	ID, Name, UsersDigest string
	Users                 int
	LastSeen              time.Time
}

// Peers lists the other nodes this node knows, by name.
func (n *Node) Peers() []Peer {
	var out []Peer
	n.eachPeer(func(p *peer) {
		p.mu.Lock()
		out = append(out, Peer{ID: p.id, Name: p.name, UsersDigest: p.digest, Users: len(p.claims), LastSeen: time.Unix(0, p.seen.Load())})
		p.mu.Unlock()
	})
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// HandleAsk sets what answers other nodes' operator requests.
func (n *Node) HandleAsk(f func(req []byte) []byte) {
	n.askMu.Lock()
	n.askAnswer = f
	n.askMu.Unlock()
}

func (n *Node) answer(m *nats.Msg) {
	n.askMu.RLock()
	f := n.askAnswer
	n.askMu.RUnlock()
	if f == nil || m.Reply == "" {
		return
	}
	_ = m.Respond(f(m.Data))
}

// Ask sends an operator's request to every other node and returns the
// answers that come within the ask timeout (or until ctx ends), and how
// many nodes were asked.
func (n *Node) Ask(ctx context.Context, req []byte) (answers [][]byte, asked int, err error) {
	n.peersMu.RLock()
	asked = len(n.peers)
	n.peersMu.RUnlock()
	if asked == 0 {
		return nil, 0, nil
	}
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, asked, fmt.Errorf("cluster: ask: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := n.nc.PublishRequest(n.prefix+".ask", inbox, req); err != nil {
		return nil, asked, fmt.Errorf("cluster: ask: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AskTimeout)
	defer cancel()
	for len(answers) < asked {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // the nodes that did not answer in time are left out
		}
		answers = append(answers, m.Data)
	}
	return answers, asked, nil
}

// Close leaves the cluster: the other nodes are told at once (they
// forget this node's users now rather than at the peer timeout), what is
// queued for them is sent, and the connections close. Call it after the
// server has shut down, so every session's end has been told.
func (n *Node) Close() {
	if n.closed.Swap(true) {
		return
	}
	close(n.stop)
	n.peersMu.Lock()
	peers := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, p)
	}
	n.peersMu.Unlock()
	for _, p := range peers {
		p.link.close()
	}
	n.wg.Wait() // the heartbeat, and the links sending what was left
	_ = n.nc.Publish(n.prefix+".bye", []byte(n.id))
	_ = n.nc.Drain()
}

// hlc is a hybrid logical clock: wall-clock nanoseconds, but never
// behind a stamp seen from another node, and strictly increasing.
type hlc struct{ last atomic.Int64 }

func (c *hlc) next() int64 {
	for {
		last := c.last.Load()
		now := max(time.Now().UnixNano(), last+1)
		if c.last.CompareAndSwap(last, now) {
			return now
		}
	}
}

func (c *hlc) observe(stamp int64) {
	for {
		last := c.last.Load()
		if stamp <= last || c.last.CompareAndSwap(last, stamp) {
			return
		}
	}
}

// directory is where users on other nodes are: the latest login of each
// user known here. It is read on the relay's hot path, so it is sharded
// and read-locked.
type directory struct {
	seed   maphash.Seed
	shards [dirShards]dirShard
}

const dirShards = 64

type dirShard struct {
	mu sync.RWMutex // guards m
	m  map[string]dirEntry
	_  [40]byte // keep shards on separate cache lines
}

type dirEntry struct {
	peer  *peer
	stamp int64
}

func (d *directory) init() {
	d.seed = maphash.MakeSeed()
	for i := range d.shards {
		d.shards[i].m = make(map[string]dirEntry)
	}
}

func (d *directory) shard(name []byte) *dirShard {
	return &d.shards[maphash.Bytes(d.seed, name)%dirShards]
}

func (d *directory) lookup(name []byte) *peer {
	sh := d.shard(name)
	sh.mu.RLock()
	e := sh.m[string(name)]
	sh.mu.RUnlock()
	return e.peer
}

// set records name on p at stamp unless a later login is known; it
// reports whether name was not in the directory before.
func (d *directory) set(name string, p *peer, stamp int64) (added bool) {
	sh := d.shard([]byte(name))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[name]
	if ok && later(e.stamp, e.peer.id, stamp, p.id) {
		return false
	}
	sh.m[name] = dirEntry{peer: p, stamp: stamp}
	return !ok
}

// remove forgets name if it is on p (at stamp, unless stamp is 0); it
// reports whether it did.
func (d *directory) remove(name string, p *peer, stamp int64) bool {
	sh := d.shard([]byte(name))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[name]
	if !ok || e.peer != p || (stamp != 0 && e.stamp != stamp) {
		return false
	}
	delete(sh.m, name)
	return true
}

func (d *directory) names(f func(string)) {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		for name := range sh.m {
			f(name)
		}
		sh.mu.RUnlock()
	}
}
