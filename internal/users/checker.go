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
}

// NewChecker returns a Checker that runs at most parallel checks at once;
// parallel <= 0 means one per CPU.
func NewChecker(parallel int) *Checker {
	if parallel <= 0 {
		parallel = runtime.NumCPU()
	}
	return &Checker{slots: make(chan struct{}, parallel)}
}

// dummySalt stands in for the salt of an unknown user.
var dummySalt = func() []byte {
	s := make([]byte, saltLen)
	rand.Read(s)
	return s
}()

// Verify reports whether password is the password of user name in t. An
// unknown user costs an argon2id check with the parameters most users of t
// have (DefaultParams if none has an argon2id hash), so that the answer
// takes about as long as for a known user. The error is non-nil
// only when ctx ends first, while waiting for a slot.
func (c *Checker) Verify(ctx context.Context, t *Table, name string, password []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e := t.lookup(name)
	if e != nil && e.cred.kind == kindPlain {
		// Cheap: no need to wait for a slot.
		return e.cred.verify(password), nil
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.slots }()
	if e == nil {
		p := DefaultParams
		if t != nil {
			p = t.dummy
		}
		argon2.IDKey(password, dummySalt, p.Time, p.Memory, p.Threads, keyLen)
		return false, nil
	}
	return e.cred.verify(password), nil
}
