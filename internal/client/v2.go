package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/messager/messager/internal/protocol"
)

// The features of version 2 a client uses, as NotOfferedError names them.
const (
	// FeaturePresence is WHO, WATCH and UNWATCH.
	FeaturePresence = "presence"
	// FeatureGroups is JOIN, PART and messages to groups.
	FeatureGroups = "groups"
)

// NotOfferedError reports a query of a feature the server does not offer:
// it did not answer HELLO (a version-1 or original server), or its
// operator switched the feature off. Nothing was sent.
type NotOfferedError struct {
	// Feature is FeaturePresence, FeatureGroups or FeatureSignup.
	Feature string
}

func (e *NotOfferedError) Error() string {
	switch e.Feature {
	case FeaturePresence:
		return "this server does not offer presence (who is online, watching users)"
	case FeatureSignup:
		return "this server does not offer sign-up: its operator makes the accounts"
	}
	return "this server does not offer " + e.Feature
}

// GroupError reports a group name that is not valid.
type GroupError struct{ Group string }

func (e *GroupError) Error() string {
	return fmt.Sprintf("%q is not a valid group (# and 1 to %d characters from A-Z a-z 0-9 _ . -)", e.Group, protocol.MaxGroupLen)
}

// MaskError reports a WHO mask that is not valid.
type MaskError struct{ Mask string }

func (e *MaskError) Error() string {
	return fmt.Sprintf("%q is not a valid mask: use *, a name, the start of a name followed by * (al*), or a #group", e.Mask)
}

// ErrNoNames reports a Watch or Unwatch without names.
var ErrNoNames = errors.New("no names given")

// Offers reports whether the server offers a feature (FeaturePresence,
// FeatureGroups or FeatureSignup).
func (c *Conn) Offers(feature string) bool { return c.offers(feature) == nil }

func (c *Conn) offers(feature string) error {
	switch {
	case feature == FeaturePresence && c.features.Presence > 0:
		return nil
	case feature == FeatureGroups && c.features.Groups > 0:
		return nil
	case feature == FeatureSignup && c.features.Signup != "":
		return nil
	}
	return &NotOfferedError{Feature: feature}
}

// Who asks who is online: mask is "*" (everyone), a name, the start of a
// name followed by '*' ("al*"), or a group ("#team": its members). The
// answer is a Who event, or a Fail.
func (c *Conn) Who(mask string) error {
	if err := c.offers(FeaturePresence); err != nil {
		return err
	}
	if !protocol.ValidMask([]byte(mask)) {
		return &MaskError{Mask: mask}
	}
	return c.queries(func(b []byte) []byte { return protocol.AppendWhoQuery(b, mask) })
}

// Watch adds names to the session's watch list. The server answers with
// their state now (Presence events) and tells every change after; names
// over the server's limit are answered with a Fail each. A long list is
// sent over several lines. A new session starts with an empty list: a
// front end sends its list again after reconnecting.
func (c *Conn) Watch(names ...string) error {
	return c.watchList(protocol.AppendWatch, names)
}

// Unwatch removes names from the session's watch list. The server does
// not answer.
func (c *Conn) Unwatch(names ...string) error {
	return c.watchList(protocol.AppendUnwatch, names)
}

// UnwatchAll empties the session's watch list.
func (c *Conn) UnwatchAll() error {
	if err := c.offers(FeaturePresence); err != nil {
		return err
	}
	return c.queries(func(b []byte) []byte { return protocol.AppendUnwatch(b, []string{"*"}) })
}

func (c *Conn) watchList(appendQuery func([]byte, []string) []byte, names []string) error {
	if err := c.offers(FeaturePresence); err != nil {
		return err
	}
	if len(names) == 0 {
		return ErrNoNames
	}
	for _, name := range names {
		if !protocol.ValidNameString(name) {
			return &NameError{Name: name}
		}
	}
	var lines []func([]byte) []byte
	for rest := names; len(rest) > 0; {
		n := min(len(rest), protocol.MaxWatchNames)
		chunk := rest[:n]
		rest = rest[n:]
		lines = append(lines, func(b []byte) []byte { return appendQuery(b, chunk) })
	}
	return c.queries(lines...)
}

// Join joins a group ("#team"). The server answers with a GroupJoin of
// this user and a Who of the members, or with a Fail (not allowed, full,
// no such group, too many groups).
func (c *Conn) Join(group string) error {
	return c.groupQuery(protocol.AppendJoinQuery, group)
}

// Part leaves a group. The server answers with a GroupPart of this user,
// or a Fail when this user is not a member.
func (c *Conn) Part(group string) error {
	return c.groupQuery(protocol.AppendPartQuery, group)
}

func (c *Conn) groupQuery(appendQuery func([]byte, string) []byte, group string) error {
	if err := c.offers(FeatureGroups); err != nil {
		return err
	}
	if !protocol.ValidGroupString(group) {
		return &GroupError{Group: group}
	}
	return c.queries(func(b []byte) []byte { return appendQuery(b, group) })
}

// SendGroup sends a message to every other member of group; it is not
// echoed back. The server answers only when it does not deliver it: a
// Fail (MSG, not a member). It refuses locally what Queue refuses.
func (c *Conn) SendGroup(group, text string) error {
	if !strings.HasPrefix(group, "#") {
		return &GroupError{Group: group}
	}
	return c.Send(group, text)
}

// queries queues the queries that each build appends (in protocol's form,
// ending in "\r\n") and flushes them with what was queued before.
func (c *Conn) queries(build ...func([]byte) []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.user == "" {
		return ErrNotLoggedIn
	}
	if c.closed.Load() || c.ended.Load() {
		return ErrClosed
	}
	for _, b := range build {
		c.buf = b(c.buf[:0])
		c.queueLocked(c.buf)
	}
	return c.flushLocked()
}
