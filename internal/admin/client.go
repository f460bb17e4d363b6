package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"time"
)

// Timeouts of the client.
const (
	dialTimeout = 5 * time.Second
	// callTimeout bounds one request and its answer; a reload of large
	// files is the slowest.
	callTimeout = time.Minute
)

// ErrNoServer is the error of Dial when no server listens on the socket:
// there is no socket, or nobody answers on it.
var ErrNoServer = errors.New("no server is listening")

// noServerError is ErrNoServer for one socket, with a hint.
type noServerError struct{ path string }

func (e *noServerError) Error() string {
	return fmt.Sprintf("no server is listening on %s (is messager serve running? see --admin-socket)", e.path)
}

func (e *noServerError) Unwrap() error { return ErrNoServer }

// Client is a connection to a server's admin socket. Its methods are the
// Controller's, each one request and its answer; they may be called from
// several goroutines, and run one at a time.
type Client struct {
	path string
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	err  error // once the connection broke, every call fails with it
}

// Dial connects to the admin socket at path.
func Dial(path string) (*Client, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket path %s is %d bytes long; a Unix socket's can be at most %d", path, len(path), maxSocketPath)
	}
	conn, err := net.DialTimeout("unix", path, dialTimeout)
	if err != nil {
		return nil, dialError(path, err)
	}
	return &Client{path: path, conn: conn, r: bufio.NewReader(conn)}, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return &noServerError{path}
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot connect to %s: permission denied (only the user the server runs as may use its admin socket)", path)
	}
	var se *net.OpError
	if errors.As(err, &se) {
		err = se.Err
	}
	return fmt.Errorf("cannot connect to %s: %w", path, err)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// call sends req and decodes the result of its answer into result. A
// refused request is an *Error.
func (c *Client) call(req *request, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	req.V = Version
	line, err := encodeLine(req)
	if err != nil {
		return err
	}
	c.conn.SetDeadline(time.Now().Add(callTimeout))
	_, werr := c.conn.Write(line)
	// A server that refused the connection (too many) or this request
	// (too long) said why before it closed: read that even when the
	// write failed.
	resp, rerr := c.read()
	if rerr != nil {
		if werr != nil {
			rerr = werr
		}
		c.err = fmt.Errorf("admin socket %s: %w", c.path, rerr)
		return c.err
	}
	if !resp.OK {
		if resp.Code == CodeLineTooLong || resp.Code == CodeBusy {
			c.err = &Error{Code: resp.Code, Message: resp.Error}
		}
		return &Error{Code: resp.Code, Message: resp.Error}
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("admin socket %s: malformed answer to %s: %v", c.path, req.Cmd, jsonError(err))
	}
	return nil
}

func (c *Client) read() (*response, error) {
	line, err := readLine(c.r, maxResponseLine)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("the server closed the connection")
	case errors.Is(err, errLineTooLong):
		return nil, fmt.Errorf("answer longer than %d bytes", maxResponseLine)
	case isTimeout(err):
		return nil, fmt.Errorf("no answer within %v", callTimeout)
	case err != nil:
		return nil, err
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("malformed answer: %v", jsonError(err))
	}
	if resp.V != Version {
		return nil, fmt.Errorf("answer of protocol version %d, not %d", resp.V, Version)
	}
	return &resp, nil
}

// isCode reports whether err is an *Error of code.
func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// duration formats d for a request; 0 is left out.
func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Sessions describes the sessions online: every session when user is "",
// else only user's.
func (c *Client) Sessions(user string) ([]Session, error) {
	var r sessionsResult
	err := c.call(&request{Cmd: cmdSessions, User: user}, &r)
	return r.Sessions, err
}

// Kick ends user's session, telling it reason. It reports false, without
// an error, when the user is not online.
func (c *Client) Kick(user, reason string) (bool, error) {
	var r kickResult
	err := c.call(&request{Cmd: cmdKick, User: user, Reason: reason}, &r)
	if isCode(err, CodeNotOnline) {
		return false, nil
	}
	return r.Kicked, err
}

// Ban bans target, a user or ADDRESS[/BITS], for d (0: until unbanned).
func (c *Client) Ban(target string, d time.Duration, reason string) (Ban, error) {
	var r banResult
	err := c.call(&request{Cmd: cmdBan, Target: target, For: duration(d), Reason: reason}, &r)
	return r.Ban, err
}

// Unban lifts the ban on target. It reports false, without an error, when
// target was not banned.
func (c *Client) Unban(target string) (bool, error) {
	var r unbanResult
	err := c.call(&request{Cmd: cmdUnban, Target: target}, &r)
	if isCode(err, CodeNotBanned) {
		return false, nil
	}
	return r.Unbanned, err
}

// Bans lists the bans in force.
func (c *Client) Bans() ([]Ban, error) {
	var r bansResult
	err := c.call(&request{Cmd: cmdBans}, &r)
	return r.Bans, err
}

// Notice sends text to every session when to is "", to a user, or to a
// #group, and returns how many sessions got it.
func (c *Client) Notice(to, text string) (int, error) {
	var r noticeResult
	err := c.call(&request{Cmd: cmdNotice, To: to, Text: text}, &r)
	return r.Sessions, err
}

// Invite makes an invite for uses sign-ups within ttl, and returns its
// token, which the server shows only this once.
func (c *Client) Invite(uses int, ttl time.Duration) (string, Invite, error) {
	var r inviteResult
	err := c.call(&request{Cmd: cmdInvite, Uses: uses, TTL: duration(ttl)}, &r)
	return r.Token, r.Invite, err
}

// Invites lists the invites that can still be used.
func (c *Client) Invites() ([]Invite, error) {
	var r invitesResult
	err := c.call(&request{Cmd: cmdInvites}, &r)
	return r.Invites, err
}

// Uninvite withdraws the invite with this ID.
func (c *Client) Uninvite(id string) error {
	return c.call(&request{Cmd: cmdUninvite, ID: id}, &uninviteResult{})
}

// Reload reloads the server's files and says what it found.
func (c *Client) Reload() (Reload, error) {
	var r reloadResult
	err := c.call(&request{Cmd: cmdReload}, &r)
	return r.Reload, err
}

// Groups lists the groups.
func (c *Client) Groups() ([]Group, error) {
	var r groupsResult
	err := c.call(&request{Cmd: cmdGroups}, &r)
	return r.Groups, err
}
