package server

import "github.com/messager/messager/internal/protocol"

// queryRule says what handles a kind of query, and where it is allowed.
// A kind is allowed before login if it has a before handler, in a session
// if it has a session handler, and either way only when the connection's
// protocol version is at least the kind's (protocol.Kind.Version): a
// version-1 session reaches no version-2 query. Adding a kind to the
// protocol is a checked change: TestQueryRules fails until the kind has a
// rule here.
type queryRule struct {
	// before handles the query before login. It returns the session when
	// the login succeeded, and done when the login phase is over (with
	// or without a session).
	before func(l *login, q *protocol.Query) (sess *Session, done bool)
	// session handles the query in a session; a reason other than
	// reasonNone ends the session.
	session func(s *Session, q *protocol.Query) closeReason
}

// queryRules is indexed by protocol.Kind. MSG is handled inline on the
// relay's hot path; its rule here is what the inline path does.
var queryRules = [...]queryRule{
	protocol.KindAuth:     {before: beforeAuth},
	protocol.KindHello:    {before: beforeHello},
	protocol.KindEnd:      {before: beforeEnd, session: sessionEnd},
	protocol.KindMsg:      {session: sessionMsg},
	protocol.KindGroupMsg: {session: sessionGroupMsg},
	protocol.KindWho:      {session: sessionWho},
	protocol.KindWatch:    {session: sessionWatch},
	protocol.KindUnwatch:  {session: sessionUnwatch},
	protocol.KindJoin:     {session: sessionJoin},
	protocol.KindPart:     {session: sessionPart},
	// PUT (sign-up) is part of version 2, offered only when the
	// operator enables it; otherwise its handler refuses it like an
	// unknown query.
	protocol.KindPut: {before: beforePut},
}

// ruleOf returns the rule of kind k; kinds with no rule have none.
func ruleOf(k protocol.Kind) queryRule {
	if int(k) < len(queryRules) {
		return queryRules[k]
	}
	return queryRule{}
}

func sessionEnd(*Session, *protocol.Query) closeReason { return reasonEndAccepted }

func sessionMsg(s *Session, q *protocol.Query) closeReason {
	if string(q.Sender) != s.name {
		return reasonProtocol // impersonation
	}
	s.relay(q.Target, q.Sender, q.Text)
	return reasonNone
}

// allowedInSession reports whether session s may send a query of kind k.
func allowedInSession(s *Session, k protocol.Kind) bool {
	return ruleOf(k).session != nil && k.Version() <= s.version
}
