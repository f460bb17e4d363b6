package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeController is a Controller over a few maps, for the tests: what it
// was asked is in calls, one line per call, arguments in order.
type fakeController struct {
	mu       sync.Mutex
	now      time.Time
	sessions []Session
	bans     []Ban
	invites  []Invite
	groups   []Group
	reload   Reload
	fail     error // returned by every method that can fail, when set
	panicky  bool  // Groups panics
	calls    []string
	nextID   int
}

func newFakeController() *fakeController {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &fakeController{
		now: now,
		sessions: []Session{
			{User: "alice", Remote: "192.0.2.1:50000", Since: now.Add(-time.Hour), Version: 2, QueuedBytes: 10, Groups: []string{"#ops", "#team"}},
			{User: "bob", Remote: "[2001:db8::1]:50001", Since: now.Add(-time.Minute), Version: 1},
		},
		groups: []Group{{Name: "#ops", Members: 1, Listed: true}, {Name: "#team", Members: 1}},
		reload: Reload{Users: 2, Groups: 1, Bans: 0, Fingerprint: "sha256:abcd", Errors: []string{"groups.csv: line 3: bad"}},
	}
}

func (f *fakeController) called(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls so far and forgets them.
func (f *fakeController) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeController) Sessions(user string) []Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("sessions %q", user)
	var out []Session
	for _, s := range f.sessions {
		if user == "" || s.User == user {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeController) online(user string) int {
	n := 0
	for _, s := range f.sessions {
		if s.User == user {
			n++
		}
	}
	return n
}

func (f *fakeController) Kick(user, reason string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("kick %q %q", user, reason)
	if f.fail != nil {
		return false, f.fail
	}
	n := f.online(user)
	f.sessions = slices.DeleteFunc(f.sessions, func(s Session) bool { return s.User == user })
	return n > 0, nil
}

func (f *fakeController) Ban(target string, d time.Duration, reason string) (Ban, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("ban %q %v %q", target, d, reason)
	if f.fail != nil {
		return Ban{}, f.fail
	}
	_, user, _ := ParseTarget(target)
	b := Ban{Target: target, User: user, Created: f.now, Reason: reason}
	if d > 0 {
		b.Until = f.now.Add(d)
	}
	if b.User {
		b.Sessions = f.online(target)
	}
	f.bans = slices.DeleteFunc(f.bans, func(x Ban) bool { return x.Target == target })
	f.bans = append(f.bans, b)
	return b, nil
}

func (f *fakeController) Unban(target string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("unban %q", target)
	if f.fail != nil {
		return false, f.fail
	}
	n := len(f.bans)
	f.bans = slices.DeleteFunc(f.bans, func(x Ban) bool { return x.Target == target })
	return len(f.bans) < n, nil
}

func (f *fakeController) Bans() []Ban {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("bans")
	return slices.Clone(f.bans)
}

func (f *fakeController) Notice(to, text string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("notice %q %q", to, text)
	if f.fail != nil {
		return 0, f.fail
	}
	switch {
	case to == "":
		return len(f.sessions), nil
	case strings.HasPrefix(to, "#"):
		for _, g := range f.groups {
			if g.Name == to {
				return g.Members, nil
			}
		}
		return 0, errors.New("no such group")
	}
	return f.online(to), nil
}

func (f *fakeController) Invite(uses int, ttl time.Duration) (string, Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("invite %d %v", uses, ttl)
	if f.fail != nil {
		return "", Invite{}, f.fail
	}
	f.nextID++
	inv := Invite{ID: fmt.Sprintf("inv%d", f.nextID), Uses: uses, Expires: f.now.Add(ttl), Created: f.now}
	f.invites = append(f.invites, inv)
	return fmt.Sprintf("SECRET-TOKEN-%d", f.nextID), inv, nil
}

func (f *fakeController) Invites() []Invite {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("invites")
	return slices.Clone(f.invites)
}

func (f *fakeController) Uninvite(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("uninvite %q", id)
	if f.fail != nil {
		return f.fail
	}
	n := len(f.invites)
	f.invites = slices.DeleteFunc(f.invites, func(i Invite) bool { return i.ID == id })
	if len(f.invites) == n {
		return fmt.Errorf("no invite %q", id)
	}
	return nil
}

func (f *fakeController) Reload() Reload {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("reload")
	return f.reload
}

func (f *fakeController) Groups() []Group {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("groups")
	if f.panicky {
		panic("groups are broken")
	}
	return slices.Clone(f.groups)
}
