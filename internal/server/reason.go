package server

import "github.com/messager/messager/internal/protocol"

// closeReason says why a connection ended. Every close has exactly one,
// logged once and counted.
type closeReason uint8

const (
	reasonNone            closeReason = iota
	reasonEndAccepted                 // the client sent END
	reasonBadLogin                    // wrong user or password
	reasonProtocol                    // the client broke the protocol
	reasonLineTooLong                 // the client sent an overlong line
	reasonReplaced                    // the same user logged in again
	reasonLoginTimeout                // handshake and AUTH took too long
	reasonTooManyAttempts             // failed logins from the address
	reasonTooSlow                     // the send queue went over its bound
	reasonShutdown                    // the server is stopping
	reasonAccountRemoved              // the user left user.csv
	reasonServerFull                  // too many sessions
	reasonTooManyConns                // too many unauthenticated connections from the address
	reasonPeerGone                    // the peer closed or reset the connection
	reasonWriteFailed                 // a write failed or timed out
	reasonHandshakeFailed             // the TLS handshake failed
	reasonPendingFull                 // too many connections waiting to log in, server-wide
	reasonKicked                      // the operator ended the session
	reasonBanned                      // the user or the address is banned
	numReasons
)

var reasonInfo = [numReasons]struct {
	name  string // label in logs and metrics
	end   string // text of the END line, if one is sent
	star  bool   // END * <...>: the client's fault
	level int    // 0 debug, 1 info, 2 warn
}{
	reasonNone:            {"none", "", false, 0},
	reasonEndAccepted:     {"end", protocol.ReasonEndAccepted, false, 1},
	reasonBadLogin:        {"bad_login", protocol.ReasonBadLogin, false, 2},
	reasonProtocol:        {"protocol_error", protocol.ReasonIncorrectProtocol, true, 2},
	reasonLineTooLong:     {"line_too_long", protocol.ReasonLineTooLong, true, 2},
	reasonReplaced:        {"logged_in_elsewhere", protocol.ReasonLoggedInElsewhere, false, 1},
	reasonLoginTimeout:    {"login_timeout", protocol.ReasonTimeout, false, 2},
	reasonTooManyAttempts: {"too_many_attempts", protocol.ReasonTooManyAttempts, false, 2},
	reasonTooSlow:         {"too_slow", protocol.ReasonTooSlow, false, 2},
	reasonShutdown:        {"shutdown", protocol.ReasonShuttingDown, false, 0},
	reasonAccountRemoved:  {"account_removed", protocol.ReasonAccountRemoved, false, 1},
	reasonServerFull:      {"server_full", protocol.ReasonServerFull, false, 2},
	reasonTooManyConns:    {"too_many_connections", protocol.ReasonTooManyConns, false, 2},
	reasonPeerGone:        {"peer_gone", "", false, 1},
	reasonWriteFailed:     {"write_failed", "", false, 2},
	reasonHandshakeFailed: {"handshake_failed", "", false, 0},
	reasonPendingFull:     {"pending_full", "", false, 2},
	reasonKicked:          {"kicked", protocol.ReasonKicked, false, 1},
	reasonBanned:          {"banned", protocol.ReasonBanned, false, 1},
}

func (r closeReason) String() string { return reasonInfo[r].name }

// appendEnd appends the END line for r, if r has one.
func (r closeReason) appendEnd(dst []byte) []byte {
	info := reasonInfo[r]
	if info.end == "" {
		return dst
	}
	return protocol.AppendEnd(dst, info.end, info.star)
}
