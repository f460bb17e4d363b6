package invites

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// Store is the invites file of one server, or of one admin command. It is
// safe for concurrent use. Its changes go to the file at once, under the
// file's lock, so several stores on one file, in one process or in many,
// see each other's changes when they make their own; List sees them after
// Reload.
type Store struct {
	path string
	now  func() time.Time

	mu  sync.Mutex // held across a whole change, file lock included
	tab *table     // the file as last read or written
}

// Open reads the invites file at path into a new Store. A missing file is
// an empty store; the file is made by the first Create. now is the clock
// that decides expiry and creation times; nil means time.Now.
func Open(path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the file again, for List to see invites that another
// process made or removed. Create, Use and Remove do not need it: they
// read the file under its lock before they change it. On error the store
// keeps what it had.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Edits replace the file atomically, so a read without the lock sees
	// one version or the next, never a part.
	t, err := file.Load(s.path)
	if err != nil {
		return err
	}
	s.tab = t
	return nil
}

// List returns the invites that can still be used, oldest first, as the
// store last read or wrote the file.
func (s *Store) List() []Invite {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := []Invite{}
	for _, e := range s.tab.sorted {
		if e.inv.Valid(now) {
			out = append(out, e.inv)
		}
	}
	return out
}

// Create makes an invite good for uses sign-ups (1 to MaxUses) during ttl
// (up to MaxTTL), writes it to the file and returns its token, which is
// shown to the operator once and never stored. Created is now to the
// second, rounded down; Expires is now plus ttl, rounded up to the second.
func (s *Store) Create(uses int, ttl time.Duration) (token string, inv Invite, err error) {
	if uses < 1 || uses > MaxUses {
		return "", Invite{}, fmt.Errorf("invalid number of uses %d: want 1 to %d", uses, MaxUses)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", Invite{}, fmt.Errorf("invalid lifetime %v: want more than 0 and at most %v (%d days)", ttl, MaxTTL, MaxTTL/(24*time.Hour))
	}
	var secret [TokenBytes]byte
	rand.Read(secret[:]) // never fails; it crashes the program instead
	token = base64.RawURLEncoding.EncodeToString(secret[:])
	hash := hashToken(token)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	inv = Invite{Uses: uses, Created: now.Truncate(time.Second), Expires: ceilSecond(now.Add(ttl))}
	err = s.edit(now, func(t *table, lines []linefile.Line) ([]linefile.Line, error) {
		// 32 bits make a clash rare among an operator's invites, not
		// impossible; draw again until the ID is free.
		for {
			var b [idLen / 2]byte
			rand.Read(b[:])
			inv.ID = hex.EncodeToString(b[:])
			if t.byID[inv.ID] == nil {
				break
			}
		}
		if t.byHash[hash] != nil {
			// 144 random bits do not repeat; this is a broken generator.
			return nil, errors.New("create invite: the new token's hash is in the file already")
		}
		e := &entry{inv: inv, hash: hash}
		return linefile.Append(lines, e.format()), nil
	})
	if err != nil {
		return "", Invite{}, err
	}
	return token, inv, nil
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if d := t.Truncate(time.Second); d.Before(t) {
		return d.Add(time.Second)
	}
	return t
}

// Remove deletes the invite with id from the file, whether it can still
// be used or not. An ID that is not in the file is an error that matches
// ErrUnknown.
func (s *Store) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.edit(s.now(), func(t *table, lines []linefile.Line) ([]linefile.Line, error) {
		e := t.byID[id]
		if e == nil {
			return nil, errUnknownID(id)
		}
		lines[e.line-1].Drop = true
		return lines, nil
	})
}

// Use spends one use of the invite whose token is token and returns the
// invite as it is left: Uses is the number of uses still left, and an
// invite with none left is gone from the file. The use is counted in the
// file before Use returns, so a sign-up that follows cannot be replayed
// with the same use, even across a restart.
//
// A token that names no invite, or one that expired, is ErrUnknown;
// callers answer it as one case. Any other error (the file cannot be read,
// locked, parsed or written) means that nothing was spent and the sign-up
// should fail as an error of the server's, not of the invite.
//
// Each call reads the file under its lock, so a token fresh from an admin
// command in another process works at once; sign-ups are throttled, which
// keeps the cost of that read small.
func (s *Store) Use(token string) (Invite, error) {
	// No invite has a token that the protocol cannot carry: refuse those
	// without touching the file.
	if !protocol.ValidInvite([]byte(token)) {
		return Invite{}, ErrUnknown
	}
	// The lookup is a map keyed by the token's hash, which is not a
	// constant-time comparison, and need not be: what its timing could
	// leak is how much of the hash of a guess matches a stored hash, and
	// SHA-256 turns that into nothing about the token. A token is 144
	// random bits, too many to guess.
	hash := hashToken(token)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var inv Invite
	err := s.edit(now, func(t *table, lines []linefile.Line) ([]linefile.Line, error) {
		e := t.byHash[hash]
		if e == nil || !e.inv.Valid(now) {
			return nil, ErrUnknown
		}
		inv = e.inv
		inv.Uses--
		l := &lines[e.line-1]
		if inv.Uses == 0 {
			l.Drop = true
		} else {
			l.Text = (&entry{inv: inv, hash: e.hash}).format()
		}
		return lines, nil
	})
	if err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// edit reads the file under its lock, runs change on it and writes the
// result back atomically, so that changes from any number of stores and
// processes apply one after the other and none is lost. It also drops the
// lines of invites that expired before now: they can never be used again.
// Lines that change leaves alone are written back exactly as they were,
// comments included. When change fails nothing is written. On success the
// store takes the file it wrote as its new reading. The caller holds s.mu.
func (s *Store) edit(now time.Time, change func(*table, []linefile.Line) ([]linefile.Line, error)) error {
	written, err := file.Edit(s.path, func(t *table, lines []linefile.Line) ([]linefile.Line, bool, error) {
		for _, e := range t.sorted {
			if !now.Before(e.inv.Expires) {
				lines[e.line-1].Drop = true
			}
		}
		lines, err := change(t, lines)
		return lines, true, err
	})
	if err != nil {
		return err
	}
	s.tab = written
	return nil
}
