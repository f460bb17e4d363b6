package server

import (
	"slices"
	"sync"

	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/protocol"
)

// GroupMode says which groups users may use.
type GroupMode uint8

// Group modes.
const (
	// GroupsOpen: any group may be joined, and is made by its first
	// member; listed groups admit only their users.
	GroupsOpen GroupMode = iota
	// GroupsListed: only the operator's listed groups exist.
	GroupsListed
	// GroupsOff: no groups.
	GroupsOff
)

// group is a conversation among online users. Membership belongs to
// sessions: a member is always online, and a group with no members is
// gone unless the operator lists it.
type group struct {
	key  string // protocol.GroupKey of the name
	name string // as written when the group was made (or listed)
	// mu guards members and gone. It is held across the fan-out of a
	// group message, so all members see the group's messages in one
	// order; it is taken after the table's and the sessions' stateMu,
	// and before any queue lock.
	mu      sync.Mutex
	members []*Session
	gone    bool // removed from the table: a JOIN makes a fresh group
	// remote are the members on other nodes of a cluster, by name, with
	// the node each is on; nodes are those nodes, each once, for
	// forwarding the group's messages. Also guarded by mu.
	remote map[string]Forwarder
	nodes  []groupNode
}

// groupTable holds the groups that exist now.
type groupTable struct {
	mu    sync.Mutex // guards byKey; taken before any group's mu
	byKey map[string]*group
}

// get returns the group with key, making it if needed, locked.
func (t *groupTable) get(key, name string) *group {
	for {
		t.mu.Lock()
		g := t.byKey[key]
		if g == nil {
			g = &group{key: key, name: name}
			t.byKey[key] = g
		}
		t.mu.Unlock()
		g.mu.Lock()
		if !g.gone {
			return g
		}
		g.mu.Unlock()
	}
}

// find returns the group with key, or nil.
func (t *groupTable) find(key string) *group {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[key]
}

// dropIfEmpty removes g when it has no members and is not listed.
func (t *groupTable) dropIfEmpty(g *group, listed *groups.Table) {
	if _, ok := listed.Lookup(g.name); ok {
		return
	}
	t.mu.Lock()
	g.mu.Lock()
	if g.sizeLocked() == 0 && !g.gone {
		g.gone = true
		delete(t.byKey, g.key)
	}
	g.mu.Unlock()
	t.mu.Unlock()
}

// all returns the groups that exist now.
func (t *groupTable) all() []*group {
	t.mu.Lock()
	defer t.mu.Unlock()
	gs := make([]*group, 0, len(t.byKey))
	for _, g := range t.byKey {
		gs = append(gs, g)
	}
	return gs
}

// snapshot returns every group with its member count.
func (t *groupTable) snapshot() map[string]int {
	gs := t.all()
	out := make(map[string]int, len(gs))
	for _, g := range gs {
		g.mu.Lock()
		out[g.name] = g.sizeLocked()
		g.mu.Unlock()
	}
	return out
}

// memberNames returns the names of g's members, sorted; g.mu is held.
func (g *group) memberNamesLocked() []string {
	names := make([]string, len(g.members), g.sizeLocked())
	for i, m := range g.members {
		names[i] = m.name
	}
	for name := range g.remote {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// removeLocked takes s out of the members; g.mu is held.
func (g *group) removeLocked(s *Session) bool {
	for i, m := range g.members {
		if m == s {
			last := len(g.members) - 1
			g.members[i] = g.members[last]
			g.members[last] = nil
			g.members = g.members[:last]
			return true
		}
	}
	return false
}

// tellLocked queues line on every member but skip; g.mu is held. Members
// found too slow are closed once the lock is let go, by the caller.
func (g *group) tellLocked(line []byte, skip *Session) (slow []*Session) {
	for _, m := range g.members {
		if m == skip {
			continue
		}
		m.q.mu.Lock()
		queued, _, _, tooSlow := m.q.appendBytesLocked(line)
		m.q.mu.Unlock()
		switch {
		case queued:
			m.nudge()
		case tooSlow:
			slow = append(slow, m)
		}
	}
	return slow
}

func closeSlow(slow []*Session) {
	for _, m := range slow {
		m.finishClose(reasonTooSlow)
	}
}

// groupOf returns the group s is in whose key is key, or nil; s.stateMu
// is held.
func (s *Session) groupOfLocked(key []byte) *group {
	for _, g := range s.groups {
		if g.key == string(key) {
			return g
		}
	}
	return nil
}

// fail answers a well-formed version-2 query that cannot be granted.
func (s *Session) fail(verb protocol.Kind, subject []byte, reason string) {
	s.scratch = protocol.AppendFail(s.scratch[:0], verb.String(), string(subject), reason)
	s.enqueueBytes(s.scratch)
}

// sessionJoin handles JOIN #group.
func sessionJoin(s *Session, q *protocol.Query) closeReason {
	srv := s.srv
	if srv.cfg.Groups == GroupsOff {
		s.fail(protocol.KindJoin, q.Group, protocol.ReasonNotEnabled)
		return reasonNone
	}
	var keyBuf [1 + protocol.MaxGroupLen]byte
	key := protocol.AppendGroupKey(keyBuf[:0], q.Group)
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.left {
		return reasonNone
	}
	if g := s.groupOfLocked(key); g != nil {
		// Already a member: answered again, and nobody is told.
		g.mu.Lock()
		names := g.memberNamesLocked()
		g.mu.Unlock()
		s.answerJoin(g.name, names)
		return reasonNone
	}
	listed := srv.listed.Load()
	entry, isListed := listed.Lookup(string(q.Group))
	switch {
	case isListed && !listed.Allowed(entry.Name, s.name):
		s.fail(protocol.KindJoin, q.Group, protocol.ReasonNotAllowed)
		return reasonNone
	case !isListed && srv.cfg.Groups == GroupsListed:
		s.fail(protocol.KindJoin, q.Group, protocol.ReasonNoSuchGroup)
		return reasonNone
	case len(s.groups) >= srv.cfg.MaxGroups:
		s.fail(protocol.KindJoin, q.Group, protocol.ReasonTooManyGroups)
		return reasonNone
	}
	name := string(q.Group)
	if isListed {
		name = entry.Name
	}
	g := srv.groups.get(string(key), name)
	if g.sizeLocked() >= srv.cfg.MaxMembers {
		g.mu.Unlock()
		s.fail(protocol.KindJoin, q.Group, protocol.ReasonGroupFull)
		return reasonNone
	}
	g.members = append(g.members, s)
	if c := srv.cfg.Cluster; c != nil {
		c.Joined(g.name, s.name)
	}
	line := protocol.AppendJoin(nil, g.name, s.name)
	slow := g.tellLocked(line, s)
	names := g.memberNamesLocked()
	g.mu.Unlock()
	closeSlow(slow)
	s.groups = append(s.groups, g)
	s.answerJoin(g.name, names)
	return reasonNone
}

// answerJoin tells a joiner it is in, and who else is.
func (s *Session) answerJoin(group string, names []string) {
	s.scratch = protocol.AppendJoin(s.scratch[:0], group, s.name)
	s.scratch = protocol.AppendWho(s.scratch, group, len(names), names[:min(len(names), protocol.MaxWhoNames)])
	s.enqueueBytes(s.scratch)
}

// sessionPart handles PART #group.
func sessionPart(s *Session, q *protocol.Query) closeReason {
	if s.srv.cfg.Groups == GroupsOff {
		s.fail(protocol.KindPart, q.Group, protocol.ReasonNotEnabled)
		return reasonNone
	}
	var keyBuf [1 + protocol.MaxGroupLen]byte
	key := protocol.AppendGroupKey(keyBuf[:0], q.Group)
	s.stateMu.Lock()
	g := s.groupOfLocked(key)
	if g != nil {
		s.groups = slices.DeleteFunc(s.groups, func(x *group) bool { return x == g })
	}
	s.stateMu.Unlock()
	if g == nil {
		s.fail(protocol.KindPart, q.Group, protocol.ReasonNotMember)
		return reasonNone
	}
	s.leaveGroup(g, true)
	return reasonNone
}

// leaveGroup takes s out of g and tells the other members (and s itself,
// when it asked to leave).
func (s *Session) leaveGroup(g *group, tellSelf bool) {
	line := protocol.AppendPart(nil, g.name, s.name)
	g.mu.Lock()
	if g.removeLocked(s) {
		if c := s.srv.cfg.Cluster; c != nil {
			c.Parted(g.name, s.name)
		}
	}
	slow := g.tellLocked(line, s)
	empty := g.sizeLocked() == 0
	g.mu.Unlock()
	closeSlow(slow)
	// An emptied group is gone before the leaver is told: once it has
	// its PART, a JOIN of the name makes the group anew.
	if empty {
		s.srv.groups.dropIfEmpty(g, s.srv.listed.Load())
	}
	if tellSelf {
		s.enqueueBytes(line)
	}
}

// sessionGroupMsg handles MSG #group: the message goes to every other
// member, with the rest of the sender's run of messages to the group in
// this read, under the group's lock so all see one order (see
// delivery.endRun). A member that is too slow is closed once the read is
// handled; nobody else waits.
func sessionGroupMsg(s *Session, q *protocol.Query) closeReason {
	if string(q.Sender) != s.name {
		return reasonProtocol // impersonation
	}
	if s.srv.cfg.Groups == GroupsOff {
		s.fail(protocol.KindGroupMsg, q.Target, protocol.ReasonNotEnabled)
		return reasonNone
	}
	var keyBuf [1 + protocol.MaxGroupLen]byte
	key := protocol.AppendGroupKey(keyBuf[:0], q.Target)
	s.stateMu.Lock()
	g := s.groupOfLocked(key)
	s.stateMu.Unlock()
	if g == nil {
		s.fail(protocol.KindGroupMsg, q.Target, protocol.ReasonNotMember)
		return reasonNone
	}
	s.queueGroup(g, s, q.Sender, q.Text)
	if s.srv.cfg.Cluster != nil {
		// Other nodes are sent each message at once, in the sender's
		// order; the members here get the run when it ends.
		g.mu.Lock()
		g.forwardLocked(q.Sender, q.Text)
		g.mu.Unlock()
	}
	return reasonNone
}

// leaveAll ends the session's version-2 state when its reader is done:
// the other members of its groups are told it left, and its watch list
// is dropped. A session whose state was handed over has nothing left.
func (s *Session) leaveAll() {
	s.stateMu.Lock()
	if s.left {
		s.stateMu.Unlock()
		return
	}
	s.left = true
	gs, ws := s.groups, s.watching
	s.groups, s.watching = nil, nil
	s.stateMu.Unlock()
	for _, g := range gs {
		s.leaveGroup(g, false)
	}
	s.srv.presence.unwatch(s, ws)
}

// handOver gives the session that replaces old, a version-2 login of the
// same user, old's groups and watch list, silently: nobody sees the user
// leave or come back. next has not started reading yet.
func (s *Server) handOver(old, next *Session) {
	old.stateMu.Lock()
	if old.left {
		old.stateMu.Unlock()
		return
	}
	old.left = true
	gs, ws := old.groups, old.watching
	old.groups, old.watching = nil, nil
	old.stateMu.Unlock()

	next.stateMu.Lock()
	next.groups, next.watching = gs, ws
	next.stateMu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		for i, m := range g.members {
			if m == old {
				g.members[i] = next
			}
		}
		g.mu.Unlock()
	}
	s.presence.replace(old, next, ws)
}
