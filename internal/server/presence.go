package server

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
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
//
// Memory is per watch entry: one slot in the watched name's set (a
// pointer and a 4-byte stamp) and one pointer in the watcher's list.
// Nothing is kept per entry for WATCH answers beyond the stamp, so a
// burst of WATCH lines from thousands of sessions leaves no garbage
// proportional to it.
type presence struct {
	srv      *Server
	interval time.Duration
	seed     maphash.Seed
	shards   [presenceShards]presenceShard

	// round numbers the rounds, from 1; a WATCH answer is stamped with
	// the round it falls in. The run goroutine moves it on, under mu.
	round atomic.Uint32

	mu      sync.Mutex          // guards changed and spare
	changed map[string]struct{} // names whose state may have changed
	spare   map[string]struct{} // the last round's, emptied, for the next
	wake    chan struct{}       // a change is waiting (capacity 1)

	// told is each name's state as last told to its watchers (true:
	// online); only the run goroutine touches it. Offline names are left
	// out, so it holds about as many names as are online.
	told map[string]bool
	// news and buf are the run goroutine's, kept between rounds: what
	// each watcher is told in the round, and the lines being formatted.
	news []presenceNews
	buf  []byte
	// pause is the round's rest after each presencePace watchers
	// (0: none); a round of 10,000 watchers takes about 80 of them.
	pause time.Duration
}

const presenceShards = 64

type presenceShard struct {
	mu     sync.Mutex           // guards byName and the watchers in it
	byName map[string]*watchers // watched name -> its watchers
}

// watchers is the set of sessions watching one name. Its name is the one
// copy of the string; the watch lists point at the set itself.
type watchers struct {
	name string
	// sessions holds each watcher's stamp: 0, or the state a WATCH
	// answer (or since then, a round) told that watcher, and when.
	sessions map[*Session]watchStamp
	// answered is the last round in which a watcher of the name was
	// answered; rounds long after it need not look at the stamps.
	answered uint32
}

// watchStamp is a watcher's own view of a name: the round in which it
// was last told the state separately from the other watchers (a WATCH
// answer), and that state, as round<<1 | online. 0 is none: the watcher
// knows what every watcher was last told.
type watchStamp uint32

func stampOf(round uint32, online bool) watchStamp {
	st := watchStamp(round << 1)
	if online {
		st |= 1
	}
	return st
}

func (st watchStamp) round() uint32 { return uint32(st) >> 1 }
func (st watchStamp) online() bool  { return st&1 == 1 }

// recent reports whether a stamp still speaks for its watcher in the
// round numbered round: stamped in it or the one before. An answer can
// be stamped just after a round began and its name's change noted in the
// round before, so the round after must still compare with the stamp.
func (st watchStamp) recent(round uint32) bool {
	return st != 0 && st.round()+1 >= round
}

func newPresence(srv *Server, interval time.Duration) *presence {
	p := &presence{
		srv:      srv,
		interval: interval,
		seed:     maphash.MakeSeed(),
		changed:  make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
		told:     make(map[string]bool),
		pause:    time.Millisecond,
	}
	p.round.Store(1)
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
	p.poke()
}

func (p *presence) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// watch adds names (a WATCH line's) to s's watch list and returns the
// names it added or already had, and those that did not fit.
func (p *presence) watch(s *Session, names []byte, limit int) (added []*watchers, full [][]byte) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.left {
		return nil, nil
	}
	count := 0
	for name, rest := protocol.NextName(names); len(name) > 0; name, rest = protocol.NextName(rest) {
		count++
	}
	// The list grows by what the line may add, not by doubling: it is
	// kept for the session's life, and most are filled by a few lines.
	if n := len(s.watching) + min(count, max(limit-len(s.watching), 0)); n > cap(s.watching) {
		s.watching = append(make([]*watchers, 0, n), s.watching...)
	}
	for name, rest := protocol.NextName(names); len(name) > 0; name, rest = protocol.NextName(rest) {
		if i := slices.IndexFunc(s.watching, func(w *watchers) bool { return w.name == string(name) }); i >= 0 {
			added = append(added, s.watching[i])
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
			w = &watchers{name: string(name), sessions: make(map[*Session]watchStamp, 1)}
			sh.byName[w.name] = w
		}
		w.sessions[s] = 0
		sh.mu.Unlock()
		s.watching = append(s.watching, w)
		added = append(added, w)
	}
	return added, full
}

// stampAnswers records that s was just told the states of ws by a WATCH
// answer (online[i] for ws[i]), already queued, and has the next round
// check them: a state that changed since the answer was computed is told
// again, and one that did not is not told twice.
func (p *presence) stampAnswers(s *Session, ws []*watchers, online []bool) {
	if len(ws) == 0 {
		return
	}
	round := p.round.Load()
	for i, w := range ws {
		sh := p.shard([]byte(w.name))
		sh.mu.Lock()
		if _, ok := w.sessions[s]; ok {
			w.sessions[s] = stampOf(round, online[i])
			w.answered = round
		}
		sh.mu.Unlock()
	}
	p.mu.Lock()
	for _, w := range ws {
		p.changed[w.name] = struct{}{}
	}
	p.mu.Unlock()
	p.poke()
}

// unwatchNames takes names (an UNWATCH line's) off s's watch list; all
// takes every name off.
func (p *presence) unwatchNames(s *Session, names []byte, all bool) {
	s.stateMu.Lock()
	var gone []*watchers
	if all {
		gone, s.watching = s.watching, nil
	} else {
		for name, rest := protocol.NextName(names); len(name) > 0; name, rest = protocol.NextName(rest) {
			if i := slices.IndexFunc(s.watching, func(w *watchers) bool { return w.name == string(name) }); i >= 0 {
				gone = append(gone, s.watching[i])
				s.watching = slices.Delete(s.watching, i, i+1)
			}
		}
	}
	s.stateMu.Unlock()
	p.unwatch(s, gone)
}

// unwatch removes s from the watchers of ws.
func (p *presence) unwatch(s *Session, ws []*watchers) {
	for _, w := range ws {
		sh := p.shard([]byte(w.name))
		sh.mu.Lock()
		delete(w.sessions, s)
		if len(w.sessions) == 0 && sh.byName[w.name] == w {
			delete(sh.byName, w.name)
		}
		sh.mu.Unlock()
	}
}

// replace makes next the watcher of ws in old's place, with what old was
// told.
func (p *presence) replace(old, next *Session, ws []*watchers) {
	for _, w := range ws {
		sh := p.shard([]byte(w.name))
		sh.mu.Lock()
		if st, ok := w.sessions[old]; ok {
			delete(w.sessions, old)
			w.sessions[next] = st
		}
		sh.mu.Unlock()
	}
}

// watchedNames returns the names of a watch list.
func watchedNames(ws []*watchers) []string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.name
	}
	return names
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
type presenceNews struct {
	s       *Session
	on, off []string
}

// newsFor returns the news of s in the round numbered round, adding an
// entry the first time s is told something in it. A session points at
// its entry (newsRound, newsAt), so a round with thousands of watchers
// looks none up in a map, and the entries, kept from round to round,
// allocate nothing once grown. Only the run goroutine calls it.
func (p *presence) newsFor(s *Session, round uint32) *presenceNews {
	if s.newsRound == round {
		return &p.news[s.newsAt]
	}
	s.newsRound, s.newsAt = round, int32(len(p.news))
	if len(p.news) < cap(p.news) {
		p.news = p.news[:len(p.news)+1]
		n := &p.news[len(p.news)-1]
		n.s, n.on, n.off = s, n.on[:0], n.off[:0]
		return n
	}
	p.news = append(p.news, presenceNews{s: s})
	return &p.news[len(p.news)-1]
}

// flush handles the changes since the last round.
func (p *presence) flush() {
	p.mu.Lock()
	changed := p.changed
	p.changed, p.spare = p.spare, nil
	if p.changed == nil {
		p.changed = make(map[string]struct{}, len(changed))
	}
	round := p.round.Load()
	p.round.Store(round + 1)
	p.mu.Unlock()
	add := func(s *Session, name string, online bool) {
		n := p.newsFor(s, round)
		if online {
			n.on = append(n.on, name)
		} else {
			n.off = append(n.off, name)
		}
	}
	for name := range changed {
		online := p.srv.online([]byte(name))
		differs := online != p.told[name]
		if online {
			p.told[name] = true
		} else {
			delete(p.told, name)
		}
		sh := p.shard([]byte(name))
		sh.mu.Lock()
		w := sh.byName[name]
		if w == nil || !differs && w.answered+1 < round {
			// Nobody watches, or a flap within the round with no WATCH
			// answer since the round before.
			sh.mu.Unlock()
			continue
		}
		for s, st := range w.sessions {
			switch {
			case st.recent(round):
				// This watcher was answered on its own: compare with
				// what it was told, and remember what it is told now.
				if st.online() != online {
					add(s, w.name, online)
					w.sessions[s] = stampOf(round, online)
				}
			case differs:
				add(s, w.name, online)
			}
		}
		sh.mu.Unlock()
	}
	clear(changed)
	p.mu.Lock()
	p.spare = changed
	p.mu.Unlock()
	for i := range p.news {
		n := &p.news[i]
		if !n.s.q.closed.Load() {
			p.buf = appendPresenceLines(p.buf[:0], true, n.on)
			p.buf = appendPresenceLines(p.buf, false, n.off)
			n.s.enqueueBytes(p.buf)
		}
		n.s = nil // the session may end; the entry must not keep it
		if p.pause > 0 && i%presencePace == presencePace-1 {
			// Each watcher queued wakes a writer. Thousands woken at
			// once would line up ahead of every other goroutine, and the
			// relay's readers and writers would wait behind them for
			// the whole round: let each share run first.
			time.Sleep(p.pause)
		}
	}
	p.news = p.news[:0]
}

// presencePace is how many watchers a round queues on before it pauses.
const presencePace = 128

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
// FAIL for those over the limit. The work runs on a goroutine of its own
// while the reader waits for it: growing the watch sets goes deeper than
// the stack a reader waits on, and the runtime never halves a waiting
// reader's stack again (it uses more than a quarter of it), so every
// session that once sent WATCH would keep a doubled stack, about 34 bytes
// per watch entry at 100 entries. A WATCH line is rare; the goroutine
// costs a microsecond.
func sessionWatch(s *Session, q *protocol.Query) closeReason {
	query := *q
	done := make(chan struct{})
	go func() {
		defer close(done)
		handleWatch(s, &query)
	}()
	<-done
	return reasonNone
}

// handleWatch is sessionWatch's work, on its own goroutine; the reader
// waits, so the session's reader-local state is this goroutine's until
// it returns.
func handleWatch(s *Session, q *protocol.Query) {
	if s.srv.cfg.NoPresence {
		for name, rest := protocol.NextName(q.Names); len(name) > 0; name, rest = protocol.NextName(rest) {
			s.fail(protocol.KindWatch, name, protocol.ReasonNotEnabled)
		}
		return
	}
	added, full := s.srv.presence.watch(s, q.Names, s.srv.cfg.MaxWatch)
	var on, off []string
	states := make([]bool, len(added))
	for i, w := range added {
		states[i] = s.srv.online([]byte(w.name))
		if states[i] {
			on = append(on, w.name)
		} else {
			off = append(off, w.name)
		}
	}
	s.scratch = appendPresenceLines(s.scratch[:0], true, on)
	s.scratch = appendPresenceLines(s.scratch, false, off)
	for _, name := range full {
		s.scratch = protocol.AppendFail(s.scratch, protocol.KindWatch.String(), string(name), protocol.ReasonWatchListFull)
	}
	if len(s.scratch) > 0 {
		s.enqueueBytes(s.scratch)
	}
	// Stamped after the answer is queued: a round that tells a newer
	// state then queues it after the answer, never before.
	s.srv.presence.stampAnswers(s, added, states)
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
