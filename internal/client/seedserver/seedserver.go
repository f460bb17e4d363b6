// Package seedserver is a test double of the original messager server,
// the seed's, as it behaves on the wire. Clients must keep working with
// it, and its quirks are not those of a messager server:
//
//   - It reads one TLS record at a time and takes each read as one query:
//     it splits the read on spaces and drops the last piece, expecting the
//     seed shape "AUTH alice pw \r\n". A query without the space before
//     the line end loses its last word, and two queries in one record make
//     one garbled query.
//   - It sends CHECK with no line end at all, so the next line arrives
//     glued to it ("CHECKRELAY bob alice hi \r\n").
//   - It refuses a second login of an online user with
//     END <user already online> (a messager server replaces the old
//     session instead).
//   - It answers END with END <end accepted>, and anything it does not
//     know (HELLO, say) with END * <incorrect protocol>, and closes.
//
// It listens on 127.0.0.1 with a fresh self-signed certificate and keeps
// a record of what it read, so tests can check what a client sent.
package seedserver

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
)

// Users maps user names to passwords.
type Users map[string]string

// Options change how the server behaves.
type Options struct {
	// CheckInterval is how often every logged-in session gets a CHECK,
	// without a line end; zero sends none unless the test calls Check.
	CheckInterval time.Duration
}

// Server is a running double of the original server.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
	// Fingerprint is the certificate's "sha256:<hex>" fingerprint.
	Fingerprint string
	// CertPEM is the server's certificate.
	CertPEM []byte

	users Users
	ln    net.Listener
	stop  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	conns   map[*session]bool
	online  map[string]*session
	changed chan struct{} // closed and replaced when online changes
	queries []Query
	logins  int
	accepts int
}

// Query is one read of the server: one TLS record, as it split it.
type Query struct {
	// Raw is what the record held.
	Raw string
	// Words are the pieces the server used: the record split on spaces,
	// the last piece dropped.
	Words []string
}

// Garbled reports whether the query held a line end inside its words:
// two queries shared a record, or a query lacked the seed shape.
func (q Query) Garbled() bool {
	for _, w := range q.Words {
		if strings.ContainsAny(w, "\r\n") {
			return true
		}
	}
	return false
}

type session struct {
	conn  net.Conn
	wmu   sync.Mutex
	user  string // set after ACCEPT; used only by the session's reader
	stale bool   // guarded by Server.mu: the user stays online after the connection is gone
}

// write sends b in one record, as the original server's one send call.
func (s *session) write(b string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	s.conn.Write([]byte(b))
}

// Start starts a server with the given users, stopped when the test ends.
func Start(t testing.TB, users Users, opts Options) *Server {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{"localhost", "127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatalf("seedserver: generate certificate: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("seedserver: load certificate: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatalf("seedserver: listen: %v", err)
	}
	s := &Server{
		Addr:        ln.Addr().String(),
		Fingerprint: certs.Fingerprint(cert.Certificate[0]),
		CertPEM:     certPEM,
		users:       users,
		ln:          ln,
		stop:        make(chan struct{}),
		conns:       make(map[*session]bool),
		online:      make(map[string]*session),
		changed:     make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	if opts.CheckInterval > 0 {
		s.wg.Add(1)
		go s.checker(opts.CheckInterval)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		sess := &session{conn: c}
		s.mu.Lock()
		if s.closed {
			c.Close()
		}
		s.accepts++
		s.conns[sess] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(sess)
	}
}

func (s *Server) checker(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Check()
		}
	}
}

// Check sends every logged-in session a CHECK with no line end, as the
// original server's liveness thread does.
func (s *Server) Check() {
	for _, sess := range s.sessions() {
		sess.write("CHECK")
	}
}

// Send writes raw to the session of user in one record, exactly as
// given, and reports whether the user was online.
func (s *Server) Send(user, raw string) bool {
	s.mu.Lock()
	sess := s.online[user]
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.write(raw)
	return true
}

// Drop closes the connection of user without a word, as a network
// failure would, but keeps the user online, as the original server does
// until its checker notices: a new login of the user is refused with
// END <user already online> meanwhile. It reports whether the user was
// online.
func (s *Server) Drop(user string) bool {
	s.mu.Lock()
	sess := s.online[user]
	if sess != nil {
		sess.stale = true
	}
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.conn.Close()
	return true
}

// Forget takes user off the online list, as the original server's checker
// does once it notices that the connection is gone.
func (s *Server) Forget(user string) {
	s.setOnline(user, nil)
}

func (s *Server) sessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*session
	for _, sess := range s.online {
		list = append(list, sess)
	}
	return list
}

// Logins returns how many logins the server accepted.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Connections returns how many connections the server accepted, whatever
// became of them.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// Queries returns every query the server read, in order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Online reports whether user is logged in.
func (s *Server) Online(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online[user] != nil
}

// WaitOnline waits until user is online (or not, when on is false), or
// timeout passes; it reports whether the state was reached.
func (s *Server) WaitOnline(user string, on bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		is, changed := s.online[user] != nil, s.changed
		s.mu.Unlock()
		if is == on {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func (s *Server) setOnline(user string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess == nil {
		delete(s.online, user)
	} else {
		s.online[user] = sess
		s.logins++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// leave takes the user of sess offline, unless another session of the
// user is online by now.
func (s *Server) leave(sess *session) {
	if sess.user == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.online[sess.user] == sess {
		delete(s.online, sess.user)
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// serve is the original server's thread for one client: every read is a
// query.
func (s *Server) serve(sess *session) {
	defer s.wg.Done()
	defer func() {
		sess.conn.Close()
		s.mu.Lock()
		delete(s.conns, sess)
		stale := sess.stale
		s.mu.Unlock()
		if !stale {
			s.leave(sess)
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := sess.conn.Read(buf)
		if err != nil {
			return
		}
		raw := string(buf[:n])
		words := strings.Split(raw, " ")
		words = words[:len(words)-1]
		s.mu.Lock()
		s.queries = append(s.queries, Query{Raw: raw, Words: words})
		s.mu.Unlock()
		if err := s.handle(sess, words); err != nil {
			return
		}
	}
}

var errClose = errors.New("close the connection")

func (s *Server) handle(sess *session, words []string) error {
	if len(words) == 0 {
		sess.write("END * <incorrect protocol> \r\n")
		return errClose
	}
	switch words[0] {
	case "AUTH":
		if sess.user != "" {
			sess.write("END * <incorrect protocol> \r\n")
			return errClose
		}
		if len(words) != 3 || words[2] == "" || s.users[words[1]] != words[2] {
			sess.write("END <incorrect username or password> \r\n")
			return errClose
		}
		user := words[1]
		s.mu.Lock()
		taken := s.online[user] != nil
		s.mu.Unlock()
		if taken {
			sess.write("END <user already online> \r\n")
			return errClose
		}
		sess.user = user
		s.setOnline(user, sess)
		sess.write("ACCEPT " + user + " \r\n")
	case "MSG":
		if sess.user == "" || len(words) < 3 {
			sess.write("END * <incorrect protocol> \r\n")
			return errClose
		}
		target, sender := words[1], words[2]
		text := strings.Join(words[3:], " ")
		if !s.Send(target, "RELAY "+target+" "+sender+" "+text+" \r\n") {
			sess.write("CNT <user not online> \r\n")
		}
	case "END":
		// Offline before the answer: a client that logs in again as
		// soon as it has read it must not find itself still online.
		s.leave(sess)
		sess.write("END <end accepted> \r\n")
		return errClose
	default:
		sess.write("END * <incorrect protocol> \r\n")
		return errClose
	}
	return nil
}
