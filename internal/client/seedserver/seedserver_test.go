package seedserver

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"strings"
	"testing"
	"time"
)

func dial(t *testing.T, s *Server) *tls.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", DynamicRecordSizingDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// roundTrip writes one record and reads one answer record.
func roundTrip(t *testing.T, c *tls.Conn, query string) string {
	t.Helper()
	if _, err := io.WriteString(c, query); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("after %q: %v", query, err)
	}
	return string(buf[:n])
}

func TestDouble(t *testing.T) {
	s := Start(t, Users{"alice": "pw1", "bob": "pw2"}, Options{})

	// Without the space before the line end the password loses its
	// last piece and never matches.
	if got := roundTrip(t, dial(t, s), "AUTH alice pw1\r\n"); got != "END <incorrect username or password> \r\n" {
		t.Errorf("AUTH without the seed shape: %q", got)
	}
	if got := roundTrip(t, dial(t, s), "HELLO 2 \r\n"); got != "END * <incorrect protocol> \r\n" {
		t.Errorf("HELLO: %q", got)
	}

	alice := dial(t, s)
	if got := roundTrip(t, alice, "AUTH alice pw1 \r\n"); got != "ACCEPT alice \r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := roundTrip(t, dial(t, s), "AUTH alice pw1 \r\n"); got != "END <user already online> \r\n" {
		t.Errorf("second login: %q", got)
	}
	bob := dial(t, s)
	roundTrip(t, bob, "AUTH bob pw2 \r\n")

	if got := roundTrip(t, alice, "MSG carol alice hi \r\n"); got != "CNT <user not online> \r\n" {
		t.Errorf("to nobody: %q", got)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	readUntil := func(end string) {
		t.Helper()
		for !strings.HasSuffix(got.String(), end) {
			n, err := bob.Read(buf)
			if err != nil {
				t.Fatalf("bob: %v after %q", err, got.String())
			}
			got.Write(buf[:n])
		}
	}
	io.WriteString(alice, "MSG bob alice hi there \r\n")
	readUntil("hi there \r\n")
	s.Send("bob", "CHECK")
	// Two queries in one record: one garbled query.
	io.WriteString(alice, "MSG bob alice one \r\nMSG bob alice two \r\n")
	readUntil("two \r\n")
	want := "RELAY bob alice hi there \r\nCHECKRELAY bob alice one \r\nMSG bob alice two \r\n"
	if got.String() != want {
		t.Errorf("bob read %q, want %q", got.String(), want)
	}
	q := s.Queries()
	if last := q[len(q)-1]; !last.Garbled() || q[len(q)-2].Garbled() {
		t.Errorf("queries %q", q)
	}
	if got := roundTrip(t, alice, "END \r\n"); got != "END <end accepted> \r\n" {
		t.Errorf("END: %q", got)
	}
	if !s.WaitOnline("alice", false, 5*time.Second) {
		t.Error("alice still online after END")
	}
	if s.Logins() != 2 {
		t.Errorf("logins %d, want 2", s.Logins())
	}
}
