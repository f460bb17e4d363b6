package server

import (
	"bytes"
	"strings"

	"github.com/messager/messager/internal/protocol"
)

// Cluster is the rest of a cluster as one node's server sees it: a Router
// that knows which users are online on other nodes, and the hooks through
// which it learns of this node's logins and group changes. The server
// knows nothing of how the nodes talk.
type Cluster interface {
	Router
	// RemoteNames calls f with the name of every user online on another
	// node; f is quick and takes no lock.
	RemoteNames(f func(name string))
	// LoggedIn is told of every session registered here (a replacement
	// too), LoggedOut of every session that was its user's session here
	// when it ended. They are called with no server lock held, possibly
	// out of order for two sessions of one user: the session says which.
	// They must not block.
	LoggedIn(s *Session)
	LoggedOut(s *Session)
	// Joined and Parted are told when a session here joins or leaves a
	// group. They are called with the group's lock held, in the group's
	// order: they must not block, nor call back into the server.
	Joined(group, user string)
	Parted(group, user string)
}

// groupNode is one node that members of a group are on, and how many.
type groupNode struct {
	via     Forwarder
	members int
}

// sizeLocked is how many members g has, here and on other nodes; g.mu
// is held.
func (g *group) sizeLocked() int { return len(g.members) + len(g.remote) }

// forwardLocked hands a group message to every other node that members
// of g are on, under g's lock so each node gets the group's messages in
// this node's order.
func (g *group) forwardLocked(sender, text []byte) {
	for _, n := range g.nodes {
		n.via.ForwardGroup(g.name, sender, text)
	}
}

// addRemoteLocked records user as a member on the node behind via.
func (g *group) addRemoteLocked(user string, via Forwarder) {
	if g.remote == nil {
		g.remote = make(map[string]Forwarder)
	}
	g.remote[user] = via
	for i := range g.nodes {
		if g.nodes[i].via == via {
			g.nodes[i].members++
			return
		}
	}
	g.nodes = append(g.nodes, groupNode{via: via, members: 1})
}

// removeRemoteLocked takes user, a member on another node, out of g.
func (g *group) removeRemoteLocked(user string) {
	via, ok := g.remote[user]
	if !ok {
		return
	}
	delete(g.remote, user)
	for i := range g.nodes {
		if g.nodes[i].via == via {
			if g.nodes[i].members--; g.nodes[i].members == 0 {
				g.nodes = append(g.nodes[:i], g.nodes[i+1:]...)
			}
			return
		}
	}
}

// RemoteChanged tells the server that name came online or went offline
// on another node, for its watchers.
func (s *Server) RemoteChanged(name string) {
	if !s.cfg.NoPresence {
		s.presence.noteChange(name)
	}
}

// EndElsewhere ends the session because its user logged in on another
// node since: END <logged in elsewhere>.
func (s *Session) EndElsewhere() { s.close(reasonReplaced) }

// Version is the protocol version the session speaks.
func (s *Session) Version() int { return s.version }

// RemoteJoin records that user, on the node behind via, joined the group
// name, and tells the members here. A member already known on that node
// changes nothing; one known on another node has moved, silently.
func (s *Server) RemoteJoin(name, user string, via Forwarder) {
	if s.cfg.Groups == GroupsOff || !protocol.ValidGroupString(name) {
		return
	}
	g := s.groups.get(protocol.GroupKey(name), name)
	old, known := g.remote[user]
	if known && old == via {
		g.mu.Unlock()
		return
	}
	g.removeRemoteLocked(user)
	g.addRemoteLocked(user, via)
	var slow []*Session
	if !known {
		slow = g.tellLocked(protocol.AppendJoin(nil, g.name, user), nil)
	}
	g.mu.Unlock()
	closeSlow(slow)
}

// RemotePart records that user, on the node behind via, left the group
// name, and tells the members here.
func (s *Server) RemotePart(name, user string, via Forwarder) {
	g := s.groups.find(protocol.GroupKey(name))
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.remote[user] != via {
		g.mu.Unlock()
		return
	}
	g.removeRemoteLocked(user)
	slow := g.tellLocked(protocol.AppendPart(nil, g.name, user), nil)
	empty := g.sizeLocked() == 0
	g.mu.Unlock()
	closeSlow(slow)
	if empty {
		s.groups.dropIfEmpty(g, s.listed.Load())
	}
}

// NodeGone forgets every group member on the node behind via, telling
// the members here that they left: the node stopped or can no longer be
// reached.
func (s *Server) NodeGone(via Forwarder) {
	for _, g := range s.groups.all() {
		g.mu.Lock()
		var gone []string
		for user, v := range g.remote {
			if v == via {
				gone = append(gone, user)
			}
		}
		var slow []*Session
		for _, user := range gone {
			g.removeRemoteLocked(user)
			slow = append(slow, g.tellLocked(protocol.AppendPart(nil, g.name, user), nil)...)
		}
		empty := g.sizeLocked() == 0
		g.mu.Unlock()
		closeSlow(slow)
		if empty && len(gone) > 0 {
			s.groups.dropIfEmpty(g, s.listed.Load())
		}
	}
}

// Memberships calls f for every member here of every group, with the
// group's lock held, so that what f records of a group is in order with
// the Joined and Parted hooks of that group: a new node is told the
// memberships here once, then every change. f must not block.
func (s *Server) Memberships(f func(group, user string)) {
	for _, g := range s.groups.all() {
		g.mu.Lock()
		for _, m := range g.members {
			f(g.name, m.name)
		}
		g.mu.Unlock()
	}
}

// Inbound delivers to the sessions here what another node relays. One
// goroutine uses it: Relay or Group for each message of what arrived,
// then Flush.
type Inbound struct {
	srv *Server
	delivery
	cacheName []byte
	cache     *Session
	lost      int64
}

// NewInbound returns an Inbound for one stream of relayed messages.
func (s *Server) NewInbound() *Inbound {
	return &Inbound{srv: s, delivery: delivery{stats: &s.stats}}
}

// Relay queues a message on its target's session here. False means the
// target is not online here (any more); the message is counted as
// dropped, as one lost with the queue of a session that ended.
func (in *Inbound) Relay(target, sender, text []byte) bool {
	if in.runGroup != nil {
		in.endRun()
	}
	t := in.cache
	if t == nil || t.q.closed.Load() || !bytes.Equal(in.cacheName, target) {
		in.release()
		t = in.srv.local.Lookup(target)
		in.cache = t
		in.cacheName = append(in.cacheName[:0], target...)
	}
	if t != nil && in.queueRelay(t, target, sender, text) {
		return true
	}
	in.cache = nil
	in.lost++
	return false
}

// Group queues a message of the group name on every member here.
func (in *Inbound) Group(name, sender, text []byte) {
	var keyBuf [1 + protocol.MaxGroupLen]byte
	g := in.srv.groups.find(string(protocol.AppendGroupKey(keyBuf[:0], name)))
	if g == nil {
		return
	}
	in.queueGroup(g, nil, sender, text)
}

// Flush ends a batch: it wakes the writers of the sessions given
// messages and publishes the counters.
func (in *Inbound) Flush() {
	in.finish()
	if in.lost > 0 {
		in.srv.stats.Dropped.Add(in.lost)
		in.lost = 0
	}
}

// HandOverTo gives up old's groups and watch list because its user
// logged in again, with version 2, on the node behind via: in the groups
// here old becomes a member on that node, silently (nobody here sees the
// user leave), and old's watches end. It returns the groups and the
// watched names, for the new session to take over with TakeOver. Close
// old after it.
func (s *Server) HandOverTo(old *Session, via Forwarder) (groupNames, watching []string) {
	old.stateMu.Lock()
	if old.left {
		old.stateMu.Unlock()
		return nil, nil
	}
	old.left = true
	gs, ws := old.groups, old.watching
	old.groups, old.watching = nil, nil
	old.stateMu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		if g.removeLocked(old) {
			g.removeRemoteLocked(old.name)
			g.addRemoteLocked(old.name, via)
			groupNames = append(groupNames, g.name)
		}
		g.mu.Unlock()
	}
	s.presence.unwatch(old, ws)
	return groupNames, watchedNames(ws)
}

// TakeOver gives sess, a version-2 session that replaced one of its user
// on another node, that session's groups and watch list, silently, as
// HandOverTo gave them up. It reports false, doing nothing, when sess
// cannot take them (version 1, or already ended); the groups must then
// be left (see Cluster).
func (s *Server) TakeOver(sess *Session, groupNames, watching []string) bool {
	if sess.version < 2 || s.cfg.Groups == GroupsOff && len(groupNames) > 0 {
		return false
	}
	sess.stateMu.Lock()
	if sess.left {
		sess.stateMu.Unlock()
		return false
	}
	for _, name := range groupNames {
		if !protocol.ValidGroupString(name) {
			continue
		}
		key := protocol.GroupKey(name)
		if sess.groupOfLocked([]byte(key)) != nil {
			continue
		}
		g := s.groups.get(key, name)
		g.removeRemoteLocked(sess.name)
		g.members = append(g.members, sess)
		if c := s.cfg.Cluster; c != nil {
			c.Joined(g.name, sess.name)
		}
		g.mu.Unlock()
		sess.groups = append(sess.groups, g)
	}
	sess.stateMu.Unlock()
	if !s.cfg.NoPresence && len(watching) > 0 {
		s.presence.watch(sess, []byte(strings.Join(watching, " ")), max(s.cfg.MaxWatch, len(watching)))
	}
	return true
}
