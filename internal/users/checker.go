package users

import (
	"context"
	"crypto/rand"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// Checker verifies passwords with bounded parallelism. Each argon2id check
// holds its memory (19 MiB with DefaultParams) for the whole check, so a
// burst of logins must queue for a slot rather than all run at once. One
// Checker is meant to be shared by every session of a server.
type Checker struct {
	slots chan struct{}
	// padded, if set, is told of each extra argon2id check Verify spends
	// on a failed login; tests use it to see the padding happen.
	padded func(Params)
	// floor is the least a failed check costs.
	floor Params
}

// NewChecker returns a Checker that runs at most parallel checks at once;
// parallel <= 0 means one per CPU.
func NewChecker(parallel int) *Checker {
	if parallel <= 0 {
		parallel = runtime.NumCPU()
	}
	return &Checker{slots: make(chan struct{}, parallel), floor: DefaultParams}
}

// WithFloor sets the least a failed check costs, DefaultParams unless
// set; it returns c. A server whose users all have cheaper hashes (a test
// server with CheapParams) sets it to theirs.
func (c *Checker) WithFloor(p Params) *Checker {
	c.floor = p
	return c
}

// dummySalt stands in for the salt of an unknown user.
var dummySalt = func() []byte {
	s := make([]byte, saltLen)
	rand.Read(s)
	return s
}()

// Verify reports whether password is the password of user name in t. The
// error is non-nil only when ctx ends first, while waiting for a slot.
//
// A failed check never costs less than an argon2id check with
// DefaultParams, whatever the stored credential, so that the time of a
// wrong answer does not tell a plain password or a cheap hash from a
// strong one:
//
//   - An unknown user costs an argon2id check with the parameters most
//     users of t have (DefaultParams if none has an argon2id hash), so
//     that it takes about as long as a known user.
//   - When the stored check cost less than DefaultParams (a plain
//     password, any bcrypt hash, an argon2id hash with less memory×passes)
//     and failed, Verify spends the difference on a dummy argon2id check:
//     DefaultParams in full after a plain password or bcrypt hash, the
//     missing memory×passes after a cheaper argon2id hash.
//
// Still observable: a failed check of a credential costlier than
// DefaultParams takes longer, and so shows that the user exists and has
// such a hash (bcrypt at its usual cost 10, which is padded on top of its
// own time, or stronger argon2id parameters); padding reaches the default
// cost rather than exactly it (a plain or cheap bcrypt check adds its own
// time); lanes are not counted, so a hash with p>1 may fail sooner on an
// idle machine; and a successful check is not padded, as the answer tells
// as much.
func (c *Checker) Verify(ctx context.Context, t *Table, name string, password []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e := t.lookup(name)
	if e != nil && e.cred.kind == kindPlain && e.cred.verify(password) {
		// Right and cheap: no need to wait for a slot. A wrong plain
		// password waits for one below, to pay for the padding.
		return true, nil
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.slots }()
	var ok bool
	var spent uint64 // memory×passes of argon2id work done so far
	switch {
	case e == nil:
		p := t.unknownParams()
		argon2.IDKey(password, dummySalt, p.Time, p.Memory, p.Threads, keyLen)
		spent = cost(p)
	case e.cred.kind == kindPlain:
		// Checked, and wrong, above.
	default:
		ok = e.cred.verify(password)
		if e.cred.kind == kindArgon2id {
			spent = cost(e.cred.params)
		}
		// A bcrypt check counts as none: how it compares with argon2id
		// depends on the machine, so it is padded in full.
	}
	if !ok {
		if p, short := padding(spent, c.floor); short {
			if c.padded != nil {
				c.padded(p)
			}
			argon2.IDKey(password, dummySalt, p.Time, p.Memory, p.Threads, keyLen)
		}
	}
	return ok, nil
}

// unknownParams are the parameters an unknown user of t costs.
func (t *Table) unknownParams() Params {
	if t == nil || t.dummy == (Params{}) {
		// The zero Table, documented as empty, has no parameters set.
		return DefaultParams
	}
	return t.dummy
}

// padding returns the argon2id parameters of the dummy check that brings
// spent, in memory×passes, up to one check with floor (DefaultParams
// unless the Checker was told otherwise), and whether one is needed. It
// uses the floor's passes and one lane, so it never holds more memory than
// a check with the floor.
func padding(spent uint64, floor Params) (Params, bool) {
	d := floor
	want := cost(d)
	if spent >= want {
		return Params{}, false
	}
	m := (want - spent + uint64(d.Time) - 1) / uint64(d.Time)
	return Params{Memory: max(uint32(m), 8), Time: d.Time, Threads: 1}, true
}
