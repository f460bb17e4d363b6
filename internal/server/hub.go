package server

import (
	"hash/maphash"
	"sync"
)

// Directory routes by name: it knows which session each online user has.
// The hub below is the single-node directory; a cluster directory can stand
// behind the same interface and route names held by other nodes.
type Directory interface {
	// Lookup returns the session name is logged in as, or nil.
	Lookup(name []byte) *session
	// Register makes s the session of its user and returns the session it
	// replaces, if any.
	Register(s *session) (replaced *session)
	// Unregister removes s, if it is still the session of its user.
	Unregister(s *session)
	// Len reports how many users are online.
	Len() int
	// Sessions returns a snapshot of every online session.
	Sessions() []*session
}

// hubShards spreads names over independently locked maps, so that lookups
// by many senders never serialise on one lock.
const hubShards = 64

// hub is the local Directory.
type hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
}

type hubShard struct {
	mu       sync.RWMutex
	sessions map[string]*session
	_        [40]byte // keep shards on separate cache lines
}

func newHub() *hub {
	h := &hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].sessions = make(map[string]*session)
	}
	return h
}

func (h *hub) shard(name []byte) *hubShard {
	return &h.shards[maphash.Bytes(h.seed, name)%hubShards]
}

func (h *hub) Lookup(name []byte) *session {
	sh := h.shard(name)
	sh.mu.RLock()
	s := sh.sessions[string(name)]
	sh.mu.RUnlock()
	return s
}

func (h *hub) Register(s *session) *session {
	sh := h.shard([]byte(s.name))
	sh.mu.Lock()
	old := sh.sessions[s.name]
	sh.sessions[s.name] = s
	sh.mu.Unlock()
	return old
}

func (h *hub) Unregister(s *session) {
	sh := h.shard([]byte(s.name))
	sh.mu.Lock()
	if sh.sessions[s.name] == s {
		delete(sh.sessions, s.name)
	}
	sh.mu.Unlock()
}

func (h *hub) Len() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.sessions)
		sh.mu.RUnlock()
	}
	return n
}

func (h *hub) Sessions() []*session {
	var all []*session
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for _, s := range sh.sessions {
			all = append(all, s)
		}
		sh.mu.RUnlock()
	}
	return all
}
