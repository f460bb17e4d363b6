// Package admin is the operator's channel to a running server: a local
// Unix socket, as Prosody's admin socket is. There is no network listener
// and no login on it: whoever can connect to the socket is the operator,
// so access is the socket's file permissions (mode 0600 in a directory
// only the server's user can write).
//
// The server side (Listen) answers requests by calling a Controller, which
// the server implements; the client side (Dial) offers the same actions as
// typed methods. Both speak the protocol described in protocol.go: one
// JSON request per line, one JSON response per line.
package admin

import (
	"path/filepath"
	"time"
)

// SocketName is the name of the admin socket beside the user file.
const SocketName = "messager.sock"

// DefaultSocketPath returns where the server listens and the admin
// command connects unless told otherwise: messager.sock in the directory
// of the user file.
func DefaultSocketPath(usersFile string) string {
	return filepath.Join(filepath.Dir(usersFile), SocketName)
}

// Controller is what the server can do for an operator. The admin server
// checks every argument before it calls a method (names are valid, ban
// targets are canonical, durations are not negative, texts are valid
// lines), and calls one method at a time: a Controller need not guard
// against concurrent admin requests, only against its own server.
//
// An error a method returns is sent to the operator as its text.
type Controller interface {
	// Sessions describes the sessions online: every session when user is
	// "", else only user's.
	Sessions(user string) []Session
	// Kick ends user's session, telling it reason (which may be "").
	// It reports false, without an error, when the user is not online.
	Kick(user, reason string) (bool, error)
	// Ban bans target for d (0: until unbanned), and ends the sessions it
	// now refuses. target is canonical, as ParseTarget returns it: a user
	// name ("user:" and the name for one that looks like an address), an
	// address, or a network ADDRESS/BITS. Banning a target already banned
	// replaces that ban.
	Ban(target string, d time.Duration, reason string) (Ban, error)
	// Unban lifts the ban on target, canonical as for Ban. It reports
	// false, without an error, when target was not banned.
	Unban(target string) (bool, error)
	// Bans lists the bans in force.
	Bans() []Ban
	// Notice sends text from the server to every session when to is "",
	// to a user, or to the members of a #group. It returns how many
	// sessions it was queued for.
	Notice(to, text string) (int, error)
	// Invite makes an invite that lets uses sign-ups happen within ttl.
	// The token is what a new user presents; it is shown once, to the
	// operator, and never again (Invites lists IDs, not tokens).
	Invite(uses int, ttl time.Duration) (token string, inv Invite, err error)
	// Invites lists the invites that can still be used.
	Invites() []Invite
	// Uninvite withdraws the invite with this ID.
	Uninvite(id string) error
	// Reload reloads the server's files (users, groups, bans, the
	// certificate) as a SIGHUP would, and says what it found.
	Reload() Reload
	// Groups lists the groups: those in use and those listed by the
	// operator.
	Groups() []Group
}

// Session describes one session online.
type Session struct {
	// User is the user logged in.
	User string `json:"user"`
	// Remote is the address the session connects from.
	Remote string `json:"remote"`
	// Since is when the session logged in.
	Since time.Time `json:"since"`
	// Version is the protocol version the session speaks.
	Version int `json:"version"`
	// QueuedBytes is how much is waiting to be written to the session.
	QueuedBytes int `json:"queued_bytes"`
	// Groups are the groups the session is in, sorted.
	Groups []string `json:"groups"`
	// Node is the cluster node the session is on ("" on a server that
	// is not part of a cluster).
	Node string `json:"node,omitempty"`
}

// Ban is a user or an address barred from logging in.
type Ban struct {
	// Target is the user name, or the address or network in canonical
	// form (ADDRESS, or ADDRESS/BITS for a network).
	Target string `json:"target"`
	// User tells a user's ban from an address's.
	User bool `json:"user"`
	// Until is when the ban ends; zero for a ban without end.
	Until time.Time `json:"until,omitzero"`
	// Created is when the ban was made.
	Created time.Time `json:"created"`
	// Reason is what the operator gave, maybe "".
	Reason string `json:"reason"`
	// Sessions is how many sessions the ban ended when it was made.
	Sessions int `json:"sessions"`
}

// Invite describes an invite, without its token.
type Invite struct {
	// ID names the invite to the operator (Uninvite); it is not the
	// token and does not let anyone sign up.
	ID string `json:"id"`
	// Uses is how many sign-ups the invite still allows.
	Uses int `json:"uses"`
	// Expires is when the invite stops working.
	Expires time.Time `json:"expires"`
	// Created is when the invite was made.
	Created time.Time `json:"created"`
}

// Reload is what a reload found.
type Reload struct {
	// Users is the number of users now known.
	Users int `json:"users"`
	// Groups is the number of groups now listed.
	Groups int `json:"groups"`
	// Bans is the number of bans now in force.
	Bans int `json:"bans"`
	// Fingerprint is the certificate's fingerprint now in use.
	Fingerprint string `json:"fingerprint"`
	// Errors are the files that could not be reloaded, and why; what
	// failed to reload is left as it was.
	Errors []string `json:"errors"`
}

// Group describes one group.
type Group struct {
	// Name is the group's name, '#' included.
	Name string `json:"name"`
	// Members is the number of sessions in the group.
	Members int `json:"members"`
	// Listed tells a group from the groups file from one made by use.
	Listed bool `json:"listed"`
}
