package server

import (
	"hash/maphash"
	"sync"
)

// Router answers, for a message's target, where the target is online: a
// session of this server, somewhere else (another node, through a
// Forwarder), or nowhere. The local Registry is the Router of a single
// node; a cluster stands a Router of its own in front of it.
//
// Route is on the relay's hot path: it must not allocate, must not block
// on the network, and is never called while the relay holds a session's
// queue lock.
type Router interface {
	Route(name []byte) Route
}

// Route is a Router's answer. At most one field is set; neither means the
// target is not online.
type Route struct {
	// Local is the target's session on this server.
	Local *Session
	// Remote forwards the message to the node the target is on.
	Remote Forwarder
}

// Forwarder takes messages for users who are online on another node, as
// a DERP server's packet forwarder does: one Forwarder per node. Its
// methods must not block on the network: they queue the message and
// report whether they could.
type Forwarder interface {
	// Forward takes a message for target.
	Forward(target, sender, text []byte) bool
	// ForwardGroup takes a message of a group with members on the node.
	ForwardGroup(group string, sender, text []byte) bool
}

// registryShards spreads names over independently locked maps, so that
// lookups by many senders never serialise on one lock.
const registryShards = 64

// Registry is who is online on this server: one session per user. It is
// the Router of a single node, and what counting and listing use.
type Registry struct {
	seed   maphash.Seed
	shards [registryShards]registryShard
	// onChange, if set, is told when a user comes online or goes offline
	// (not when a session is replaced). It is called with no lock held.
	onChange func(name string)
	// onLogin and onLogout, if set, are told of every session registered
	// and of every session unregistered while still its user's; they are
	// called with no lock held.
	onLogin, onLogout func(s *Session)
}

type registryShard struct {
	mu       sync.RWMutex        // guards sessions
	sessions map[string]*Session // by user name
	_        [40]byte            // keep shards on separate cache lines
}

func newRegistry() *Registry {
	r := &Registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].sessions = make(map[string]*Session)
	}
	return r
}

func (r *Registry) shard(name []byte) *registryShard {
	return &r.shards[maphash.Bytes(r.seed, name)%registryShards]
}

// Route answers from the local sessions only.
func (r *Registry) Route(name []byte) Route { return Route{Local: r.Lookup(name)} }

// Lookup returns the session name is logged in as, or nil.
func (r *Registry) Lookup(name []byte) *Session {
	sh := r.shard(name)
	sh.mu.RLock()
	s := sh.sessions[string(name)]
	sh.mu.RUnlock()
	return s
}

// register makes s the session of its user and returns the session it
// replaces, if any.
func (r *Registry) register(s *Session) (replaced *Session) {
	sh := r.shard([]byte(s.name))
	sh.mu.Lock()
	old := sh.sessions[s.name]
	sh.sessions[s.name] = s
	sh.mu.Unlock()
	if old == nil && r.onChange != nil {
		r.onChange(s.name)
	}
	if r.onLogin != nil {
		r.onLogin(s)
	}
	return old
}

// unregister removes s, if it is still the session of its user.
func (r *Registry) unregister(s *Session) {
	sh := r.shard([]byte(s.name))
	sh.mu.Lock()
	gone := sh.sessions[s.name] == s
	if gone {
		delete(sh.sessions, s.name)
	}
	sh.mu.Unlock()
	if gone && r.onChange != nil {
		r.onChange(s.name)
	}
	if gone && r.onLogout != nil {
		r.onLogout(s)
	}
}

// Len reports how many users are online.
func (r *Registry) Len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		n += len(sh.sessions)
		sh.mu.RUnlock()
	}
	return n
}

// Sessions returns a snapshot of every online session.
func (r *Registry) Sessions() []*Session {
	var all []*Session
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.sessions {
			all = append(all, s)
		}
		sh.mu.RUnlock()
	}
	return all
}

// Names calls f with the name of every user online, shard by shard, with
// the shard's lock held for reading: f must be quick and take no lock.
func (r *Registry) Names(f func(name string)) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for name := range sh.sessions {
			f(name)
		}
		sh.mu.RUnlock()
	}
}
