package server

import (
	"errors"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// What operators can do to a running server: see its sessions, end one,
// ban users and addresses, and send notices. The operator's channel (a
// local socket) and the ban file are the glue's; the engine applies them.

// SessionInfo describes one session, for operators.
type SessionInfo struct {
	User        string
	Remote      string
	Since       time.Time
	Version     int
	QueuedBytes int
	Groups      []string
}

// SessionInfos describes the sessions online, of user only when it is not
// empty, sorted by user.
func (s *Server) SessionInfos(user string) []SessionInfo {
	var sessions []*Session
	if user != "" {
		if sess := s.local.Lookup([]byte(user)); sess != nil {
			sessions = append(sessions, sess)
		}
	} else {
		sessions = s.local.Sessions()
	}
	out := make([]SessionInfo, 0, len(sessions))
	for _, sess := range sessions {
		info := SessionInfo{User: sess.name, Remote: sess.remote, Since: sess.since, Version: sess.version}
		sess.q.mu.Lock()
		info.QueuedBytes = sess.q.sizeLocked()
		sess.q.mu.Unlock()
		sess.stateMu.Lock()
		for _, g := range sess.groups {
			info.Groups = append(info.Groups, g.name)
		}
		sess.stateMu.Unlock()
		sort.Strings(info.Groups)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// Kick ends user's session with END <kicked>. It reports whether the user
// was online.
func (s *Server) Kick(user string) bool {
	sess := s.local.Lookup([]byte(user))
	if sess == nil {
		return false
	}
	sess.close(reasonKicked)
	return true
}

// BanList says who is banned now. The glue implements it over the ban
// file; the server asks it at every login and when the list changes.
type BanList interface {
	// UserBanned reports whether user is banned now.
	UserBanned(user string) bool
	// AddrBanned reports whether the address is banned now.
	AddrBanned(addr netip.Addr) bool
}

// SetBans replaces the ban list and ends, with END <banned>, the sessions
// it bans. It returns how many it ended.
func (s *Server) SetBans(b BanList) int {
	s.bans.Store(&b)
	n := 0
	for _, sess := range s.local.Sessions() {
		if b != nil && (b.UserBanned(sess.name) || b.AddrBanned(parseAddr(sess.addr))) {
			sess.close(reasonBanned)
			n++
		}
	}
	return n
}

func (s *Server) banList() BanList {
	if p := s.bans.Load(); p != nil {
		return *p
	}
	return nil
}

// addrBanned reports whether connections from addr are refused.
func (s *Server) addrBanned(addr string) bool {
	b := s.banList()
	return b != nil && b.AddrBanned(parseAddr(addr))
}

// userBanned reports whether user may not log in.
func (s *Server) userBanned(user string) bool {
	b := s.banList()
	return b != nil && b.UserBanned(user)
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// MaxNotice is the longest notice text: what fits in a line with the
// longest target name.
const MaxNotice = protocol.MaxLine - len("RELAY  server  \r\n") - protocol.MaxNameLen

// Errors of Notice.
var (
	// ErrNoticeText: the text is empty, holds a control character, or
	// does not fit in a line.
	ErrNoticeText = errors.New("a notice must be one line of text, without control characters, that fits in a line")
	// ErrNoSuchTarget: the user is not online, or the group does not
	// exist.
	ErrNoSuchTarget = errors.New("not online, or no such group")
)

// Notice sends text from the operator, as RELAY <user> server <text>, to
// every session when to is empty, to one user, or to a group's members.
// Version-1 and version-2 sessions get it alike. It returns how many
// sessions it was queued for.
func (s *Server) Notice(to, text string) (int, error) {
	t := []byte(text)
	if len(t) == 0 || len(t) > MaxNotice || !protocol.ValidText(t) {
		return 0, ErrNoticeText
	}
	var targets []*Session
	switch {
	case to == "":
		targets = s.local.Sessions()
	case to[0] == '#':
		g := s.groups.find(protocol.GroupKey(to))
		if g == nil {
			return 0, ErrNoSuchTarget
		}
		g.mu.Lock()
		targets = slices.Clone(g.members)
		g.mu.Unlock()
	default:
		sess := s.local.Lookup([]byte(to))
		if sess == nil {
			return 0, ErrNoSuchTarget
		}
		targets = append(targets, sess)
	}
	n := 0
	var line []byte
	for _, sess := range targets {
		line = protocol.AppendRelay(line[:0], []byte(sess.name), []byte(protocol.NoticeSender), t)
		if sess.enqueueBytes(line) {
			n++
		}
	}
	s.stats.Relayed.Add(int64(n))
	return n, nil
}
