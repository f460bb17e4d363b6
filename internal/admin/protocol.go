package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The admin protocol, version 1.
//
// A client sends one request per line, a JSON object ending in "\n"; the
// server answers each with one response per line, in order. Every request
// names the protocol version and a command:
//
//	{"v":1,"cmd":"kick","user":"bob","reason":"spam"}
//
// and every response says whether it succeeded, with the command's result
// or an error and its code:
//
//	{"v":1,"ok":true,"result":{"kicked":true}}
//	{"v":1,"ok":false,"error":"bob is not online","code":"not-online"}
//
// Commands, their arguments, and their results:
//
//	sessions  [user]                  {"sessions":[Session...]}
//	kick      user [reason]           {"kicked":true}        or code not-online
//	ban       target [for] [reason]   {"ban":Ban}
//	unban     target                  {"unbanned":true}      or code not-banned
//	bans                              {"bans":[Ban...]}
//	notice    [to] text               {"sessions":N}
//	invite    uses ttl                {"token":"...","invite":Invite}
//	invites                           {"invites":[Invite...]}
//	uninvite  id                      {}
//	reload                            {"reload":Reload}
//	groups                            {"groups":[Group...]}
//
// Durations ("for", "ttl") are Go duration strings: "90m", "12h", "0s";
// a ban without "for" has no end. Times are RFC 3339. Lists are never
// null. A request with a field its command does not take, or a field the
// version does not know, is refused (code bad-request), so a typo is not
// silently ignored; a later version adds commands and fields under a
// higher "v", which this version refuses with code unsupported-version.
//
// A request line is at most MaxRequestLine bytes; a longer one is
// answered with code line-too-long and the connection is closed. So is a
// connection past the server's cap (code busy), one idle for longer than
// the idle timeout, and one too slow to send a line or take an answer.

// Version is the version of the admin protocol this package speaks.
const Version = 1

// MaxRequestLine is the longest request line the server reads, "\n"
// included: room for the longest notice with every byte escaped.
const MaxRequestLine = 64 << 10

// maxResponseLine is the longest response line the client reads: a
// listing of every session of a large server fits.
const maxResponseLine = 64 << 20

// The commands of version 1.
const (
	cmdSessions = "sessions"
	cmdKick     = "kick"
	cmdBan      = "ban"
	cmdUnban    = "unban"
	cmdBans     = "bans"
	cmdNotice   = "notice"
	cmdInvite   = "invite"
	cmdInvites  = "invites"
	cmdUninvite = "uninvite"
	cmdReload   = "reload"
	cmdGroups   = "groups"
)

// Codes of refused requests, in the "code" of a response.
const (
	// CodeBadRequest: malformed JSON, a missing or invalid argument, or a
	// field the command does not take.
	CodeBadRequest = "bad-request"
	// CodeUnknownCommand: the server knows no such command.
	CodeUnknownCommand = "unknown-command"
	// CodeVersion: the request names a version the server does not speak.
	CodeVersion = "unsupported-version"
	// CodeLineTooLong: the request line is longer than MaxRequestLine;
	// the server closes the connection after saying so.
	CodeLineTooLong = "line-too-long"
	// CodeBusy: the server has as many admin connections as it allows.
	CodeBusy = "busy"
	// CodeNotOnline: kick of a user who is not online.
	CodeNotOnline = "not-online"
	// CodeNotBanned: unban of a target that is not banned.
	CodeNotBanned = "not-banned"
	// CodeFailed: the server could not do what was asked; the error says
	// why.
	CodeFailed = "failed"
	// CodeInternal: the server failed unexpectedly.
	CodeInternal = "internal"
)

// Error is a request the server refused or failed to carry out, as the
// client receives it.
type Error struct {
	// Code classifies the error: one of the Code constants, or another
	// code of a later version.
	Code string
	// Message is the server's explanation, for the operator.
	Message string
}

func (e *Error) Error() string { return e.Message }

// request is one request line. Its fields are the arguments of every
// command; a command takes some of them and refuses the others.
type request struct {
	V      int    `json:"v"`
	Cmd    string `json:"cmd"`
	User   string `json:"user,omitempty"`
	Target string `json:"target,omitempty"`
	To     string `json:"to,omitempty"`
	Text   string `json:"text,omitempty"`
	Reason string `json:"reason,omitempty"`
	For    string `json:"for,omitempty"`
	Uses   int    `json:"uses,omitempty"`
	TTL    string `json:"ttl,omitempty"`
	ID     string `json:"id,omitempty"`
}

// response is one response line.
type response struct {
	V      int             `json:"v"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Code   string          `json:"code,omitempty"`
}

// The results of the commands, as the response's "result".
type (
	sessionsResult struct {
		Sessions []Session `json:"sessions"`
	}
	kickResult struct {
		Kicked bool `json:"kicked"`
	}
	banResult struct {
		Ban Ban `json:"ban"`
	}
	unbanResult struct {
		Unbanned bool `json:"unbanned"`
	}
	bansResult struct {
		Bans []Ban `json:"bans"`
	}
	noticeResult struct {
		Sessions int `json:"sessions"`
	}
	inviteResult struct {
		Token  string `json:"token"`
		Invite Invite `json:"invite"`
	}
	invitesResult struct {
		Invites []Invite `json:"invites"`
	}
	uninviteResult struct{}
	reloadResult   struct {
		Reload Reload `json:"reload"`
	}
	groupsResult struct {
		Groups []Group `json:"groups"`
	}
)

// errorf makes the Error of a refused request.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// parseRequest decodes a request line (without its "\n") and checks its
// version; the arguments are checked by the command's handler.
func parseRequest(line []byte) (*request, *Error) {
	// The version first, leniently: a request of a later version may
	// carry fields this one does not know, and deserves to hear that the
	// version is the problem.
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return nil, errorf(CodeBadRequest, "malformed request: %s", jsonError(err))
	}
	if head.V == nil {
		return nil, errorf(CodeVersion, `request has no protocol version (want "v":%d)`, Version)
	}
	if *head.V != Version {
		return nil, errorf(CodeVersion, "protocol version %d is not supported (this server speaks version %d)", *head.V, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var req request
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(CodeBadRequest, "malformed request: %s", jsonError(err))
	}
	if req.Cmd == "" {
		return nil, errorf(CodeBadRequest, `request has no "cmd"`)
	}
	return &req, nil
}

// jsonError is the text of a JSON decoding error, without the package's
// prefix.
func jsonError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// only refuses the fields of req that its command does not take: every
// field but v, cmd and the named ones must be unset.
func (req *request) only(fields ...string) *Error {
	set := []struct {
		name string
		set  bool
	}{
		{"user", req.User != ""},
		{"target", req.Target != ""},
		{"to", req.To != ""},
		{"text", req.Text != ""},
		{"reason", req.Reason != ""},
		{"for", req.For != ""},
		{"uses", req.Uses != 0},
		{"ttl", req.TTL != ""},
		{"id", req.ID != ""},
	}
	for _, f := range set {
		if f.set && !slices.Contains(fields, f.name) {
			return errorf(CodeBadRequest, "%s takes no %q", req.Cmd, f.name)
		}
	}
	return nil
}

// parseDuration parses the duration in field name of a request; "" is 0.
func parseDuration(name, s string) (time.Duration, *Error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errorf(CodeBadRequest, "bad %q %q: want a duration such as 90m or 12h", name, s)
	}
	if d < 0 {
		return 0, errorf(CodeBadRequest, "bad %q %q: a duration cannot be negative", name, s)
	}
	return d, nil
}

// errLineTooLong is a line longer than its reader allows.
var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes, "\n" included, and
// returns it without its "\n". The line is the caller's to keep. A line
// longer than max is errLineTooLong, after max bytes were read; an end of
// input before the "\n" is io.ErrUnexpectedEOF, or io.EOF when nothing
// of the line was read.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		if len(line)+len(part) > max {
			return nil, errLineTooLong
		}
		line = append(line, part...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// encodeLine encodes v as one line of JSON, "\n" included. HTML characters are
// not escaped: a notice or a reason may hold them, and escaping would only
// make its line longer.
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends the line with "\n"
		return nil, err
	}
	return b.Bytes(), nil
}
