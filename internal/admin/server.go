package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits of the admin server.
const (
	// MaxConns is the most admin connections served at once; one more is
	// answered with code busy and closed.
	MaxConns = 16
	// IdleTimeout is how long a connection may wait between requests.
	IdleTimeout = 5 * time.Minute
	// ReadTimeout is how long the rest of a request line may take once
	// its first byte arrived.
	ReadTimeout = 10 * time.Second
	// WriteTimeout is how long the client may take to read a response.
	WriteTimeout = 10 * time.Second
)

// limits are the server's limits; tests shorten them.
type limits struct {
	maxConns int
	maxLine  int
	idle     time.Duration
	read     time.Duration
	write    time.Duration
}

var defaultLimits = limits{
	maxConns: MaxConns,
	maxLine:  MaxRequestLine,
	idle:     IdleTimeout,
	read:     ReadTimeout,
	write:    WriteTimeout,
}

// Server serves the admin socket: it answers each connection's requests
// by calling its Controller.
type Server struct {
	path string
	ln   *net.UnixListener
	sock fs.FileInfo // the socket as made, to remove it and no other
	ctl  Controller
	log  *slog.Logger
	lim  limits
	done chan struct{} // closed by Close

	// ctlMu lets one request at a time call the Controller.
	ctlMu sync.Mutex

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection
}

// Listen makes the admin socket at path and serves it, calling c for the
// requests and logging every action to log (nil: no log).
//
// Anyone who can connect to the socket is the operator, so Listen refuses
// to start unless only the server's user can write the socket's
// directory (it owns the directory, which is not writable by group or
// others), and makes the socket with mode 0600. A socket left at path by
// a server that crashed, which nobody answers, is replaced; a socket a
// server answers on, or a file that is not a socket, is left alone and
// Listen fails.
//
// Listen sets the process's umask for the moment the socket is made, so
// that it never exists with a looser mode; a file made by another
// goroutine at that moment gets mode bits for its owner only.
func Listen(path string, c Controller, log *slog.Logger) (*Server, error) {
	return listen(path, c, log, defaultLimits)
}

func listen(path string, c Controller, log *slog.Logger, lim limits) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket: path %s is %d bytes long; a Unix socket's can be at most %d", path, len(path), maxSocketPath)
	}
	if err := checkDir(filepath.Dir(path), os.Getuid()); err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := clearStale(path, log); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln, err := createSocket(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The listener would remove path on Close, whatever is there by then;
	// Close removes it only if it is still this socket.
	ln.SetUnlinkOnClose(false)
	sock, err := secureSocket(path)
	if err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	s := &Server{
		path:  path,
		ln:    ln,
		sock:  sock,
		ctl:   c,
		log:   log,
		lim:   lim,
		done:  make(chan struct{}),
		conns: make(map[*net.UnixConn]struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// clearStale removes a socket at path that no server answers on, and
// refuses anything else already there.
func clearStale(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not replacing it (remove it, or choose another path)", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("another server is listening on %s", path)
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("another server is listening on %s (and has a full backlog)", path)
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot tell whether a server listens on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	log.Info("removed a stale admin socket", "path", path)
	return nil
}

// secureSocket makes the new socket at path mode 0600 and checks that it
// is what it must be: a socket, of mode 0600, owned by this process's
// user.
func secureSocket(path string) (fs.FileInfo, error) {
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return nil, fmt.Errorf("%s is not the socket just made", path)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		return nil, fmt.Errorf("%s has mode %04o, not 0600", path, perm)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to uid %d, not to this server's uid %d", path, uid, os.Getuid())
	}
	return fi, nil
}

// Path returns the path of the socket.
func (s *Server) Path() string { return s.path }

// Close stops serving: it closes the socket and every connection, waits
// for the requests in progress, and removes the socket (unless it was
// replaced meanwhile by another).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.sock) {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("admin socket: close: %w", err)
	}
	return nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			// Out of file descriptors, most likely: wait for some to be
			// freed rather than spin.
			s.log.Warn("admin socket: accept failed", "error", err)
			select {
			case <-s.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !s.track(conn) {
			s.log.Warn("admin connection refused: too many connections", "max", s.lim.maxConns)
			s.refuse(conn, errorf(CodeBusy, "too many admin connections (at most %d)", s.lim.maxConns))
		}
	}
}

// track serves conn if the server is open and under its cap on
// connections. It reports false when the cap is reached.
func (s *Server) track(conn *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		conn.Close()
	case len(s.conns) >= s.lim.maxConns:
		return false
	default:
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		go s.serve(conn)
	}
	return true
}

// refuse answers a connection's first request, unread, with e and closes
// it. The socket's buffer is empty, so the write does not wait.
func (s *Server) refuse(conn *net.UnixConn, e *Error) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.write(conn, errorResponse(e))
	conn.Close()
}

// serve reads a connection's requests and answers them until it closes,
// stays idle too long, or breaks the limits.
func (s *Server) serve(conn *net.UnixConn) {
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	p, err := peerCred(conn)
	if err != nil {
		s.log.Warn("admin connection refused: cannot read the peer's credentials", "error", err)
		return
	}
	log := s.log.With(p.attrs()...)
	log.Debug("admin connection")
	r := bufio.NewReader(conn)
	for {
		conn.SetReadDeadline(time.Now().Add(s.lim.idle))
		if _, err := r.Peek(1); err != nil {
			if isTimeout(err) {
				log.Debug("admin connection closed: idle", "timeout", s.lim.idle)
			}
			return
		}
		conn.SetReadDeadline(time.Now().Add(s.lim.read))
		line, err := readLine(r, s.lim.maxLine)
		switch {
		case errors.Is(err, errLineTooLong):
			e := errorf(CodeLineTooLong, "request line longer than %d bytes", s.lim.maxLine)
			log.Info("admin request refused", "error", e.Message)
			conn.SetWriteDeadline(time.Now().Add(s.lim.write))
			s.write(conn, errorResponse(e))
			return
		case isTimeout(err):
			log.Info("admin connection closed: request line not sent in time", "timeout", s.lim.read)
			return
		case err != nil:
			return
		}
		resp := s.handle(log, line)
		conn.SetWriteDeadline(time.Now().Add(s.lim.write))
		if err := s.write(conn, resp); err != nil {
			log.Info("admin connection closed: response not sent", "error", err)
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) write(conn *net.UnixConn, resp *response) error {
	line, err := encodeLine(resp)
	if err == nil && len(line) > maxResponseLine {
		err = errors.New("result too large")
	}
	if err != nil {
		line, _ = encodeLine(errorResponse(errorf(CodeInternal, "cannot send the result: %v", err)))
	}
	_, err = conn.Write(line)
	return err
}

func errorResponse(e *Error) *response {
	return &response{V: Version, OK: false, Error: e.Message, Code: e.Code}
}

// handle answers one request line, and logs it: once, with the peer, the
// command, its target and its outcome.
func (s *Server) handle(log *slog.Logger, line []byte) *response {
	req, e := parseRequest(line)
	if e != nil {
		log.Info("admin request refused", "error", e.Message)
		return errorResponse(e)
	}
	h, ok := handlers[req.Cmd]
	if !ok {
		e := errorf(CodeUnknownCommand, "unknown command %q", req.Cmd)
		log.Info("admin request refused", "error", e.Message)
		return errorResponse(e)
	}
	result, attrs, err := s.call(log, h, req)
	args := append([]any{"cmd", req.Cmd}, attrs...)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: CodeFailed, Message: err.Error()}
		}
		args = append(args, "error", e.Message)
		if e.Code == CodeInternal {
			log.Error("admin command failed", args...)
		} else {
			log.Info("admin command failed", args...)
		}
		return errorResponse(e)
	}
	log.Info("admin command", args...)
	raw, err := encodeLine(result)
	if err != nil {
		return errorResponse(errorf(CodeInternal, "cannot send the result: %v", err))
	}
	return &response{V: Version, OK: true, Result: raw[:len(raw)-1]}
}

// call runs a handler, one at a time, and turns a panic of the Controller
// into an internal error rather than the end of the server.
func (s *Server) call(log *slog.Logger, h handler, req *request) (result any, attrs []any, err error) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			log.Error("admin command panicked", "cmd", req.Cmd, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			result, err = nil, errorf(CodeInternal, "internal error")
		}
	}()
	return h(s.ctl, req)
}

// A handler checks a request's arguments, calls the Controller, and
// returns the result, what to log (never a notice's text or an invite's
// token), and an error: an *Error for a refused request, or the
// Controller's.
type handler func(c Controller, req *request) (result any, attrs []any, err error)

var handlers = map[string]handler{
	cmdSessions: doSessions,
	cmdKick:     doKick,
	cmdBan:      doBan,
	cmdUnban:    doUnban,
	cmdBans:     doBans,
	cmdNotice:   doNotice,
	cmdInvite:   doInvite,
	cmdInvites:  doInvites,
	cmdUninvite: doUninvite,
	cmdReload:   doReload,
	cmdGroups:   doGroups,
}

// badRequest makes a failed check a refused request.
func badRequest(err error) *Error { return &Error{Code: CodeBadRequest, Message: err.Error()} }

// noNil returns list, or an empty list for nil: lists are never null on
// the wire.
func noNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func doSessions(c Controller, req *request) (any, []any, error) {
	if e := req.only("user"); e != nil {
		return nil, nil, e
	}
	var attrs []any
	if req.User != "" {
		attrs = append(attrs, "user", req.User)
		if err := CheckUser(req.User); err != nil {
			return nil, attrs, badRequest(err)
		}
	}
	list := noNil(c.Sessions(req.User))
	for i := range list {
		list[i].Groups = noNil(list[i].Groups)
	}
	return sessionsResult{list}, append(attrs, "sessions", len(list)), nil
}

func doKick(c Controller, req *request) (any, []any, error) {
	if e := req.only("user", "reason"); e != nil {
		return nil, nil, e
	}
	attrs := []any{"user", req.User, "reason", req.Reason}
	if err := CheckUser(req.User); err != nil {
		return nil, attrs, badRequest(err)
	}
	if err := CheckReason(req.Reason); err != nil {
		return nil, attrs, badRequest(err)
	}
	online, err := c.Kick(req.User, req.Reason)
	if err != nil {
		return nil, attrs, err
	}
	if !online {
		return nil, attrs, errorf(CodeNotOnline, "%s is not online", req.User)
	}
	return kickResult{true}, attrs, nil
}

func doBan(c Controller, req *request) (any, []any, error) {
	if e := req.only("target", "for", "reason"); e != nil {
		return nil, nil, e
	}
	attrs := []any{"target", req.Target}
	target, _, err := ParseTarget(req.Target)
	if err != nil {
		return nil, attrs, badRequest(err)
	}
	attrs[1] = target
	d, e := parseDuration("for", req.For)
	if e != nil {
		return nil, attrs, e
	}
	attrs = append(attrs, "for", d, "reason", req.Reason)
	if err := CheckReason(req.Reason); err != nil {
		return nil, attrs, badRequest(err)
	}
	b, err := c.Ban(target, d, req.Reason)
	if err != nil {
		return nil, attrs, err
	}
	return banResult{b}, append(attrs, "ended", b.Sessions), nil
}

func doUnban(c Controller, req *request) (any, []any, error) {
	if e := req.only("target"); e != nil {
		return nil, nil, e
	}
	attrs := []any{"target", req.Target}
	target, _, err := ParseTarget(req.Target)
	if err != nil {
		return nil, attrs, badRequest(err)
	}
	attrs[1] = target
	found, err := c.Unban(target)
	if err != nil {
		return nil, attrs, err
	}
	if !found {
		return nil, attrs, errorf(CodeNotBanned, "no ban on %s", target)
	}
	return unbanResult{true}, attrs, nil
}

func doBans(c Controller, req *request) (any, []any, error) {
	if e := req.only(); e != nil {
		return nil, nil, e
	}
	list := noNil(c.Bans())
	return bansResult{list}, []any{"bans", len(list)}, nil
}

func doNotice(c Controller, req *request) (any, []any, error) {
	if e := req.only("to", "text"); e != nil {
		return nil, nil, e
	}
	// The text is the operator's message to users: its length is
	// logged, never its words.
	attrs := []any{"to", req.To, "bytes", len(req.Text)}
	if err := CheckNoticeTo(req.To); err != nil {
		return nil, attrs, badRequest(err)
	}
	if err := CheckNotice(req.Text); err != nil {
		return nil, attrs, badRequest(err)
	}
	n, err := c.Notice(req.To, req.Text)
	if err != nil {
		return nil, attrs, err
	}
	return noticeResult{n}, append(attrs, "sessions", n), nil
}

func doInvite(c Controller, req *request) (any, []any, error) {
	if e := req.only("uses", "ttl"); e != nil {
		return nil, nil, e
	}
	attrs := []any{"uses", req.Uses, "ttl", req.TTL}
	if err := CheckInviteUses(req.Uses); err != nil {
		return nil, attrs, badRequest(err)
	}
	ttl, e := parseDuration("ttl", req.TTL)
	if e != nil {
		return nil, attrs, e
	}
	if ttl == 0 {
		return nil, attrs, errorf(CodeBadRequest, `an invite needs a "ttl" longer than 0`)
	}
	attrs[3] = ttl
	// The token lets someone sign up: it goes to the operator, never to
	// the log.
	token, inv, err := c.Invite(req.Uses, ttl)
	if err != nil {
		return nil, attrs, err
	}
	return inviteResult{token, inv}, append(attrs, "id", inv.ID), nil
}

func doInvites(c Controller, req *request) (any, []any, error) {
	if e := req.only(); e != nil {
		return nil, nil, e
	}
	list := noNil(c.Invites())
	return invitesResult{list}, []any{"invites", len(list)}, nil
}

func doUninvite(c Controller, req *request) (any, []any, error) {
	if e := req.only("id"); e != nil {
		return nil, nil, e
	}
	attrs := []any{"id", req.ID}
	if err := CheckInviteID(req.ID); err != nil {
		return nil, attrs, badRequest(err)
	}
	if err := c.Uninvite(req.ID); err != nil {
		return nil, attrs, err
	}
	return uninviteResult{}, attrs, nil
}

func doReload(c Controller, req *request) (any, []any, error) {
	if e := req.only(); e != nil {
		return nil, nil, e
	}
	r := c.Reload()
	r.Errors = noNil(r.Errors)
	attrs := []any{"users", r.Users, "groups", r.Groups, "bans", r.Bans, "errors", len(r.Errors)}
	return reloadResult{r}, attrs, nil
}

func doGroups(c Controller, req *request) (any, []any, error) {
	if e := req.only(); e != nil {
		return nil, nil, e
	}
	list := noNil(c.Groups())
	return groupsResult{list}, []any{"groups", len(list)}, nil
}

// peer is who is at the other end of a connection.
type peer struct {
	uid, pid int
	known    bool // false where the system does not tell
}

func (p peer) attrs() []any {
	if !p.known {
		return []any{"uid", "unknown"}
	}
	return []any{"uid", p.uid, "pid", p.pid}
}

// shellQuote quotes p for a shell, unless it is made only of characters
// no shell treats specially.
func shellQuote(p string) string {
	plain := p != ""
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:=@", r)) {
			plain = false
			break
		}
	}
	if plain {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'"'"'`) + "'"
}
