// Package operator is the glue between a running server and its
// operator: it implements the admin socket's Controller over the server,
// the ban file and the invites, stands behind the server as its ban list
// and as the maker of accounts for sign-up, and keeps the ban file in
// step with disk. The relay engine applies what this package decides;
// the files are this package's.
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/admin"
	"github.com/messager/messager/internal/bans"
	"github.com/messager/messager/internal/filewatch"
	"github.com/messager/messager/internal/invites"
	"github.com/messager/messager/internal/reload"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
)

// Config says where the operator's files are.
type Config struct {
	UsersFile   string
	BansFile    string
	InvitesFile string
	Reloader    *reload.Reloader
	Logger      *slog.Logger
	// Now is the clock (ban expiry); nil means time.Now.
	Now func() time.Time
	// Watch tunes the watch of the ban file.
	Watch filewatch.Options
}

// Operator acts on one server for its operator.
type Operator struct {
	srv     *server.Server
	cfg     Config
	bans    atomic.Pointer[bans.Table]
	invites *invites.Store
	peers   Peers // the other nodes of a cluster, if any; set once at start
}

// New loads the ban file and the invites and applies the bans to srv.
func New(srv *server.Server, cfg Config) (*Operator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = srv.Logger()
	}
	o := &Operator{srv: srv, cfg: cfg}
	t, err := bans.Load(cfg.BansFile)
	if err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	o.bans.Store(t)
	o.invites, err = invites.Open(cfg.InvitesFile, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("load invites: %w", err)
	}
	srv.SetBans(o)
	return o, nil
}

// UserBanned is the server's ban list: user is banned now.
func (o *Operator) UserBanned(user string) bool {
	_, ok := o.bans.Load().User(user, o.cfg.Now())
	return ok
}

// AddrBanned is the server's ban list: the address is banned now.
func (o *Operator) AddrBanned(a netip.Addr) bool {
	_, ok := o.bans.Load().Addr(a, o.cfg.Now())
	return ok
}

// ReloadBans loads the ban file again and applies it: sessions it bans
// are ended. It returns how many bans are in force and how many sessions
// it ended.
func (o *Operator) ReloadBans() (active, ended int, err error) {
	t, err := bans.Load(o.cfg.BansFile)
	if err != nil {
		return 0, 0, fmt.Errorf("reload bans: %w", err)
	}
	o.bans.Store(t)
	if ended = o.srv.SetBans(o); ended > 0 {
		o.cfg.Logger.Info("bans ended sessions", "sessions", ended)
	}
	return len(t.Active(o.cfg.Now())), ended, nil
}

// Watch reloads the ban file when it changes on disk, until ctx ends.
func (o *Operator) Watch(ctx context.Context) error {
	opts := o.cfg.Watch
	opts.OnError = func(err error) { o.cfg.Logger.Warn("watching bans file", "err", err) }
	return filewatch.Watch(ctx, o.cfg.BansFile, opts, func() {
		if _, _, err := o.ReloadBans(); err != nil {
			o.cfg.Logger.Error("bans file changed but is not valid; keeping the old bans", "err", err)
		}
	})
}

// Create makes an account for sign-up (server.Accounts): the invite, if
// any, is used up first (atomically: of two sign-ups racing for its last
// use, one wins), then the user is added to the user file through the
// same locked, atomic edit as 'messager user add', and the server's table
// reloaded. A name taken in the meantime costs the invite its use; the
// name is checked against the table first, so that takes a race.
func (o *Operator) Create(name string, password []byte, invite string) error {
	if o.srv.Users().HasFold(name) {
		return server.ErrNameTaken
	}
	if invite != "" {
		if _, err := o.invites.Use(invite); errors.Is(err, invites.ErrUnknown) {
			return server.ErrInvalidInvite
		} else if err != nil {
			return err
		}
	}
	if err := users.Add(o.cfg.UsersFile, name, password); err != nil {
		if errors.Is(err, users.ErrNameTaken) {
			return server.ErrNameTaken
		}
		return err
	}
	return o.cfg.Reloader.Users()
}

// The admin socket's Controller.

var _ admin.Controller = (*Operator)(nil)

// Sessions lists the sessions online.
func (o *Operator) Sessions(user string) []admin.Session {
	out := o.localSessions(user)
	for _, a := range o.askPeers(peerRequest{Op: "sessions", User: user}) {
		out = append(out, a.Sessions...)
	}
	if o.peers != nil {
		slices.SortFunc(out, func(a, b admin.Session) int { return strings.Compare(a.User, b.User) })
	}
	return out
}

// localSessions describes the sessions on this node.
func (o *Operator) localSessions(user string) []admin.Session {
	infos := o.srv.SessionInfos(user)
	out := make([]admin.Session, len(infos))
	for i, s := range infos {
		out[i] = admin.Session{User: s.User, Remote: s.Remote, Since: s.Since, Version: s.Version, QueuedBytes: s.QueuedBytes, Groups: s.Groups}
		if out[i].Groups == nil {
			out[i].Groups = []string{}
		}
		if o.peers != nil {
			out[i].Node = o.peers.Name()
		}
	}
	return out
}

// Kick ends user's session.
func (o *Operator) Kick(user, _ string) (bool, error) {
	if o.srv.Kick(user) {
		return true, nil
	}
	for _, a := range o.askPeers(peerRequest{Op: "kick", User: user}) {
		if a.Done {
			return true, nil
		}
	}
	return false, nil
}

// Ban bans target (a user, or an address or prefix) for d (0: for good),
// writing it to the ban file, and ends the sessions it bans.
func (o *Operator) Ban(target string, d time.Duration, reason string) (admin.Ban, error) {
	res, err := o.localBan(target, d, reason)
	if err != nil {
		return res, err
	}
	// Every node writes the ban to its own file too, so the files stay
	// the same, and ends the sessions it refuses.
	for _, a := range o.askPeers(peerRequest{Op: "ban", Target: target, Seconds: d.Seconds(), Reason: reason}) {
		res.Sessions += a.Count
	}
	return res, nil
}

func (o *Operator) localBan(target string, d time.Duration, reason string) (admin.Ban, error) {
	b, err := bans.ParseTarget(target)
	if err != nil {
		return admin.Ban{}, err
	}
	now := o.cfg.Now()
	b.Created, b.Reason = now, reason
	if d > 0 {
		b.Until = now.Add(d)
	}
	if err := bans.Add(o.cfg.BansFile, b); err != nil {
		return admin.Ban{}, err
	}
	_, ended, err := o.ReloadBans()
	if err != nil {
		return admin.Ban{}, err
	}
	res := toAdminBan(b)
	res.Sessions = ended
	return res, nil
}

// Unban lifts the ban of target.
func (o *Operator) Unban(target string) (bool, error) {
	ok, err := o.localUnban(target)
	if err != nil {
		return ok, err
	}
	for _, a := range o.askPeers(peerRequest{Op: "unban", Target: target}) {
		ok = ok || a.Done
	}
	return ok, nil
}

func (o *Operator) localUnban(target string) (bool, error) {
	b, err := bans.ParseTarget(target)
	if err != nil {
		return false, err
	}
	ok, err := bans.Remove(o.cfg.BansFile, b.Target)
	if err != nil || !ok {
		return ok, err
	}
	_, _, err = o.ReloadBans()
	return true, err
}

// Bans lists the bans in force.
func (o *Operator) Bans() []admin.Ban {
	active := o.bans.Load().Active(o.cfg.Now())
	out := make([]admin.Ban, len(active))
	for i, b := range active {
		out[i] = toAdminBan(b)
	}
	return out
}

func toAdminBan(b bans.Ban) admin.Ban {
	return admin.Ban{Target: b.Target, User: b.User, Until: b.Until, Created: b.Created, Reason: b.Reason}
}

// Notice sends the operator's text.
func (o *Operator) Notice(to, text string) (int, error) {
	n, err := o.srv.Notice(to, text)
	if err != nil {
		return n, err
	}
	for _, a := range o.askPeers(peerRequest{Op: "notice", To: to, Text: text}) {
		n += a.Count
	}
	return n, nil
}

// Invite makes an invite; the token is shown once, only its hash kept.
func (o *Operator) Invite(uses int, ttl time.Duration) (string, admin.Invite, error) {
	token, inv, err := o.invites.Create(uses, ttl)
	if err != nil {
		return "", admin.Invite{}, err
	}
	return token, toAdminInvite(inv), nil
}

// Invites lists the invites still usable.
func (o *Operator) Invites() []admin.Invite {
	_ = o.invites.Reload()
	list := o.invites.List()
	out := make([]admin.Invite, len(list))
	for i, inv := range list {
		out[i] = toAdminInvite(inv)
	}
	return out
}

func toAdminInvite(inv invites.Invite) admin.Invite {
	return admin.Invite{ID: inv.ID, Uses: inv.Uses, Expires: inv.Expires, Created: inv.Created}
}

// Uninvite withdraws an invite.
func (o *Operator) Uninvite(id string) error { return o.invites.Remove(id) }

// Reload does what SIGHUP does and reports it.
func (o *Operator) Reload() admin.Reload {
	res := o.cfg.Reloader.All()
	out := admin.Reload{Users: res.Users, Groups: res.Groups, Fingerprint: res.Fingerprint, Errors: []string{}}
	for _, err := range []error{res.UsersErr, res.GroupsErr, res.CertErr} {
		if err != nil {
			out.Errors = append(out.Errors, err.Error())
		}
	}
	n, _, err := o.ReloadBans()
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
		o.cfg.Logger.Error("reload failed; keeping the old bans", "err", err)
	}
	out.Bans = n
	if err := o.invites.Reload(); err != nil {
		out.Errors = append(out.Errors, err.Error())
	}
	return out
}

// Groups lists the groups that exist and the listed ones.
func (o *Operator) Groups() []admin.Group {
	live := o.srv.Groups()
	listed := o.srv.GroupList()
	seen := make(map[string]bool)
	var out []admin.Group
	for name, n := range live {
		_, isListed := listed.Lookup(name)
		out = append(out, admin.Group{Name: name, Members: n, Listed: isListed})
		seen[name] = true
	}
	for _, g := range listed.Groups() {
		if !seen[g.Name] {
			out = append(out, admin.Group{Name: g.Name, Listed: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []admin.Group{}
	}
	return out
}
