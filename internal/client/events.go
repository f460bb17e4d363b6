package client

import (
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Event is something the server told a logged-in client: Relay,
// NotOnline and End in version 1; Fail, Presence, Who, GroupJoin and
// GroupPart as well in version 2.
//
// No text in an event is escaped: a front end escapes what it shows (see
// Escape), names included, since a server is not to be trusted.
type Event interface{ event() }

// Relay is a message for this user, or for a group this user is in.
type Relay struct {
	// From is the sender, To the target as the server sent it: this
	// user, or a group with its '#'. Text is the message as sent.
	From, To, Text string
	// Group is the group the message was sent to, with its '#', as the
	// server spells it; empty for a message to this user.
	Group string
	// Time is when the message arrived.
	Time time.Time
}

// NotOnline reports that the target of a message was not online (CNT):
// the message was not delivered.
type NotOnline struct {
	// Target is the target the server named, in version 2; empty in
	// version 1, whose CNT names nobody.
	Target string
	// LastTarget is the target of the last message this connection sent
	// to a user: the one a version-1 CNT means when messages are sent
	// one at a time.
	LastTarget string
	// Time is when the notice arrived.
	Time time.Time
}

// Name is whom the notice is about: Target, or LastTarget when the server
// did not say.
func (n NotOnline) Name() string {
	if n.Target != "" {
		return n.Target
	}
	return n.LastTarget
}

// Fail is the version-2 answer to a query the server understood but will
// not grant: FAIL <verb> <subject> <reason>. The session goes on.
type Fail struct {
	// Verb is the word of the refused query (JOIN, PART, MSG, WHO,
	// WATCH); Subject the group, name or mask it was about, as sent;
	// Reason the server's reason without its angle brackets (one of
	// protocol.ReasonNotEnabled to protocol.ReasonNotMember, or another).
	Verb, Subject, Reason string
	// Time is when the answer arrived.
	Time time.Time
}

// Text describes the refusal for a person, with the server's words
// escaped: "cannot join #ops: not allowed".
func (f Fail) Text() string {
	subject, reason := Escape(f.Subject), Escape(f.Reason)
	switch f.Verb {
	case protocol.KindJoin.String():
		return "cannot join " + subject + ": " + reason
	case protocol.KindPart.String():
		return "cannot leave " + subject + ": " + reason
	case protocol.KindMsg.String():
		return "message to " + subject + " not delivered: " + reason
	case protocol.KindWatch.String():
		return "cannot watch " + subject + ": " + reason
	case protocol.KindUnwatch.String():
		return "cannot stop watching " + subject + ": " + reason
	case protocol.KindWho.String():
		return "cannot list who is online (" + subject + "): " + reason
	}
	return "the server refused " + Escape(f.Verb) + " " + subject + ": " + reason
}

// Presence is the state of some watched users: all of Names are online
// (On) or all are offline. It is state, not an event: the same state may
// be told twice, and a quick log out and in may not be told at all.
type Presence struct {
	On    bool
	Names []string
	// Time is when the line arrived.
	Time time.Time
}

// Who answers WHO, and follows this user's own GroupJoin: Count users
// match Mask, and Names lists them, sorted, at most protocol.MaxWhoNames.
type Who struct {
	// Mask is "*", a prefix ending in '*', a name, or a group with its
	// '#' (its members), as the server spells it.
	Mask  string
	Count int
	Names []string
	// Time is when the answer arrived.
	Time time.Time
}

// More is how many users match beyond the names listed.
func (w Who) More() int { return max(w.Count-len(w.Names), 0) }

// GroupJoin is a user joining a group: another member, or this user, in
// answer to Join (a WHO of the group's members follows that one).
type GroupJoin struct {
	// Group is the group with its '#', as the server spells it (the
	// spelling it was made with); User who joined.
	Group, User string
	// Time is when the line arrived.
	Time time.Time
}

// GroupPart is a user leaving a group: another member (who left, or
// whose session ended), or this user, in answer to Part.
type GroupPart struct {
	// Group is the group with its '#', as the server spells it; User who
	// left.
	Group, User string
	// Time is when the line arrived.
	Time time.Time
}

// End is the server closing the session.
type End struct {
	// Reason is the server's reason, without angle brackets.
	Reason string
	// ProtocolError is set for END * <reason>.
	ProtocolError bool
}

// Accepted reports whether the END answers the client's own END.
func (e End) Accepted() bool { return !e.ProtocolError && e.Reason == protocol.ReasonEndAccepted }

// Err returns nil for END <end accepted> and an *EndError otherwise.
func (e End) Err() error {
	if e.Accepted() {
		return nil
	}
	return &EndError{Reason: e.Reason, ProtocolError: e.ProtocolError}
}

func (Relay) event()     {}
func (NotOnline) event() {}
func (Fail) event()      {}
func (Presence) event()  {}
func (Who) event()       {}
func (GroupJoin) event() {}
func (GroupPart) event() {}
func (End) event()       {}

// splitNames splits a list of names separated by single spaces; nil for
// none.
func splitNames(b []byte) []string {
	var names []string
	for name, rest := protocol.NextName(b); len(name) > 0; name, rest = protocol.NextName(rest) {
		names = append(names, string(name))
	}
	return names
}
