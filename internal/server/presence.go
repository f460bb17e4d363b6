package server

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// presence tracks who watches whom and tells watchers, off the readers'
// path, when a watched user comes online or goes offline. Changes are
// coalesced: the registry marks a name changed (cheaply, from any login
// or logout), and once per interval one goroutine compares each changed
// name's state with what it last told, and queues PRESENCE lines on the
// watchers of those whose state differs. A flap within one interval is
// no change; a replaced session is no change at all (the registry does
// not report it).
type presence struct {
	srv      *Server
	interval time.Duration
	seed     maphash.Seed
	shards   [presenceShards]presenceShard

	mu      sync.Mutex          // guards changed and answered
	changed map[string]struct{} // names whose state may have changed
	// answered are the states WATCH answers gave since the last round:
	// the round tells such a watcher again if the state has changed
	// since, even when the change is no change to what was last told to
	// everyone (the user came and went within the round).
	answered []watchAnswer
	wake     chan struct{} // a change is waiting (capacity 1)

	// told is each name's state as last told to its watchers (true:
	// online); only the run goroutine touches it. Offline names are left
	// out, so it holds about as many names as are online.
	told map[string]bool
}

const presenceShards = 64

type presenceShard struct {
	mu     sync.Mutex           // guards byName and the sets in it
	byName map[string]*watchers // watched name -> its watchers
}

// watchAnswer is one name's state as a WATCH answer told it to s.
type watchAnswer struct {
	s      *Session
	name   string
	online bool
}

// noteAnswers records the states a WATCH answer gave s.
func (p *presence) noteAnswers(s *Session, on, off []string) {
	if len(on)+len(off) == 0 {
		return
	}
	p.mu.Lock()
	for _, n := range on {
		p.answered = append(p.answered, watchAnswer{s, n, true})
	}
	for _, n := range off {
		p.answered = append(p.answered, watchAnswer{s, n, false})
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// watchers is the set of sessions watching one name. Its name is the one
// copy of the string that every watch list of it shares.
type watchers struct {
	name     string
	sessions map[*Session]struct{}
}

func newPresence(srv *Server, interval time.Duration) *presence {
	p := &presence{
		srv:      srv,
		interval: interval,
		seed:     maphash.MakeSeed(),
		changed:  make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
		told:     make(map[string]bool),
	}
	for i := range p.shards {
		p.shards[i].byName = make(map[string]*watchers)
	}
	return p
}

func (p *presence) shard(name []byte) *presenceShard {
	return &p.shards[maphash.Bytes(p.seed, name)%presenceShards]
}

// noteChange is the registry's hook: name came online or went offline.
func (p *presence) noteChange(name string) {
	p.mu.Lock()
	p.changed[name] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// watch adds names (a WATCH line's) to s's watch list and returns the
// names it added or already had, and those that did not fit.
func (p *presence) watch(s *Session, names []byte, limit int) (added, full [][]byte) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.left {
		return nil, nil
	}
	for name, rest := protocol.NextName(names); len(name) > 0; name, rest = protocol.NextName(rest) {
		if slices.Contains(s.watching, string(name)) {
			added = append(added, name)
			continue
		}
		if len(s.watching) >= limit {
			full = append(full, name)
			continue
		}
		sh := p.shard(name)
		sh.mu.Lock()
		w := sh.byName[string(name)]
		if w == nil {
			w = &watchers{name: string(name), sessions: make(map[*Session]struct{}, 1)}
			sh.byName[w.name] = w
		}
		w.sessions[s] = struct{}{}
		sh.mu.Unlock()
		s.watching = append(s.watching, w.name)
		added = append(added, name)
	}
	return added, full
}

// unwatchNames takes names (an UNWATCH line's) off s's watch list; all
// takes every name off.
func (p *presence) unwatchNames(s *Session, names []byte, all bool) {
	s.stateMu.Lock()
	var gone []string
	if all {
		gone, s.watching = s.watching, nil
	} else {
		for name, rest := protocol.NextName(names); len(name) > 0; name, rest = protocol.NextName(rest) {
			if i := slices.Index(s.watching, string(name)); i >= 0 {
				gone = append(gone, s.watching[i])
				s.watching = slices.Delete(s.watching, i, i+1)
			}
		}
	}
	s.stateMu.Unlock()
	p.unwatch(s, gone)
}

// unwatch removes s from the watchers of names.
func (p *presence) unwatch(s *Session, names []string) {
	for _, name := range names {
		sh := p.shard([]byte(name))
		sh.mu.Lock()
		if w := sh.byName[name]; w != nil {
			delete(w.sessions, s)
			if len(w.sessions) == 0 {
				delete(sh.byName, name)
			}
		}
		sh.mu.Unlock()
	}
}

// replace makes next the watcher of names in old's place.
func (p *presence) replace(old, next *Session, names []string) {
	for _, name := range names {
		sh := p.shard([]byte(name))
		sh.mu.Lock()
		if w := sh.byName[name]; w != nil {
			delete(w.sessions, old)
			w.sessions[next] = struct{}{}
		}
		sh.mu.Unlock()
	}
}

// watchEntries reports how many (watcher, name) pairs there are.
func (p *presence) watchEntries() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for _, w := range sh.byName {
			n += len(w.sessions)
		}
		sh.mu.Unlock()
	}
	return n
}

// run tells watchers of changes until done is closed.
func (p *presence) run(done <-chan struct{}) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	pending := false
	for {
		select {
		case <-done:
			return
		case <-p.wake:
			pending = true
		case <-t.C:
			if pending {
				pending = false
				p.flush()
			}
		}
	}
}

// presenceNews is what one watcher is told in one round.
type presenceNews struct{ on, off []string }

// flush handles the changes since the last round.
func (p *presence) flush() {
	p.mu.Lock()
	changed := p.changed
	p.changed = make(map[string]struct{}, len(changed))
	answered := p.answered
	p.answered = nil
	p.mu.Unlock()
	news := make(map[*Session]*presenceNews)
	add := func(s *Session, name string, online bool) {
		n := news[s]
		if n == nil {
			n = &presenceNews{}
			news[s] = n
		}
		if online {
			n.on = append(n.on, name)
		} else {
			n.off = append(n.off, name)
		}
	}
	// What WATCH answers told within the round is not told again.
	var given map[watchAnswer]bool
	if len(answered) > 0 {
		given = make(map[watchAnswer]bool, len(answered))
		for _, a := range answered {
			given[a] = true
		}
	}
	for name := range changed {
		online := p.srv.online([]byte(name))
		if online == p.told[name] {
			continue // a flap within the round, or nothing new
		}
		if online {
			p.told[name] = true
		} else {
			delete(p.told, name)
		}
		sh := p.shard([]byte(name))
		sh.mu.Lock()
		if w := sh.byName[name]; w != nil {
			for s := range w.sessions {
				if !given[watchAnswer{s, w.name, online}] {
					add(s, w.name, online)
				}
			}
		}
		sh.mu.Unlock()
	}
	// A watcher answered within the round is told again if the state it
	// was given is no longer true and the changes above did not say so.
	for _, a := range answered {
		online := p.srv.online([]byte(a.name))
		if online == a.online || p.toldInRound(news[a.s], a.name, online) {
			continue
		}
		add(a.s, a.name, online)
	}
	var buf []byte
	for s, n := range news {
		if s.q.closed.Load() {
			continue
		}
		buf = appendPresenceLines(buf[:0], true, n.on)
		buf = appendPresenceLines(buf, false, n.off)
		s.enqueueBytes(buf)
	}
}

// toldInRound reports whether n already tells name's state as online.
func (p *presence) toldInRound(n *presenceNews, name string, online bool) bool {
	if n == nil {
		return false
	}
	list := n.off
	if online {
		list = n.on
	}
	return slices.Contains(list, name)
}

// appendPresenceLines appends PRESENCE lines for names, a bounded number
// of names a line so every line stays well within the line limit.
func appendPresenceLines(dst []byte, on bool, names []string) []byte {
	slices.Sort(names)
	for len(names) > 0 {
		n := min(len(names), protocol.MaxWhoNames)
		dst = protocol.AppendPresence(dst, on, names[:n])
		names = names[n:]
	}
	return dst
}

// sessionWatch handles WATCH: the current state of the names added, and
// FAIL for those over the limit.
func sessionWatch(s *Session, q *protocol.Query) closeReason {
	if s.srv.cfg.NoPresence {
		for name, rest := protocol.NextName(q.Names); len(name) > 0; name, rest = protocol.NextName(rest) {
			s.fail(protocol.KindWatch, name, protocol.ReasonNotEnabled)
		}
		return reasonNone
	}
	added, full := s.srv.presence.watch(s, q.Names, s.srv.cfg.MaxWatch)
	var on, off []string
	for _, name := range added {
		if s.srv.online(name) {
			on = append(on, string(name))
		} else {
			off = append(off, string(name))
		}
	}
	s.srv.presence.noteAnswers(s, on, off)
	s.scratch = appendPresenceLines(s.scratch[:0], true, on)
	s.scratch = appendPresenceLines(s.scratch, false, off)
	for _, name := range full {
		s.scratch = protocol.AppendFail(s.scratch, protocol.KindWatch.String(), string(name), protocol.ReasonWatchListFull)
	}
	if len(s.scratch) > 0 {
		s.enqueueBytes(s.scratch)
	}
	return reasonNone
}

// sessionUnwatch handles UNWATCH, which has no answer.
func sessionUnwatch(s *Session, q *protocol.Query) closeReason {
	if !s.srv.cfg.NoPresence {
		s.srv.presence.unwatchNames(s, q.Names, q.All)
	}
	return reasonNone
}

// WHO rate limit: a burst of whoBurst, then one a second.
const whoBurst = 5

// sessionWho handles WHO <mask>.
func sessionWho(s *Session, q *protocol.Query) closeReason {
	srv := s.srv
	if srv.cfg.NoPresence {
		s.fail(protocol.KindWho, q.Mask, protocol.ReasonNotEnabled)
		return reasonNone
	}
	now := srv.cfg.Now()
	s.whoTokens = min(whoBurst, s.whoTokens+now.Sub(s.whoAt).Seconds())
	s.whoAt = now
	if s.whoTokens < 1 {
		s.fail(protocol.KindWho, q.Mask, protocol.ReasonSlowDown)
		return reasonNone
	}
	s.whoTokens--
	var first smallestNames
	count := 0
	mask := q.Mask
	switch {
	case mask[0] == '#':
		if srv.cfg.Groups == GroupsOff {
			s.fail(protocol.KindWho, q.Mask, protocol.ReasonNotEnabled)
			return reasonNone
		}
		if g := srv.groups.find(protocol.GroupKey(string(mask))); g != nil {
			g.mu.Lock()
			for _, m := range g.members {
				first.add(m.name)
			}
			for name := range g.remote {
				first.add(name)
			}
			count = g.sizeLocked()
			g.mu.Unlock()
		}
	case mask[len(mask)-1] == '*':
		prefix := string(mask[:len(mask)-1])
		match := func(name string) {
			if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
				first.add(name)
				count++
			}
		}
		srv.local.Names(match)
		if c := srv.cfg.Cluster; c != nil {
			c.RemoteNames(match)
		}
	default:
		if srv.online(mask) {
			first.add(string(mask))
			count = 1
		}
	}
	s.scratch = protocol.AppendWho(s.scratch[:0], string(mask), count, first.names)
	s.enqueueBytes(s.scratch)
	return reasonNone
}

// smallestNames keeps the first protocol.MaxWhoNames names in sorted
// order of those added, without holding them all.
type smallestNames struct{ names []string }

func (f *smallestNames) add(name string) {
	if len(f.names) == protocol.MaxWhoNames && name >= f.names[len(f.names)-1] {
		return
	}
	i, _ := slices.BinarySearch(f.names, name)
	if len(f.names) == protocol.MaxWhoNames {
		f.names = f.names[:len(f.names)-1]
	}
	f.names = slices.Insert(f.names, i, name)
}
