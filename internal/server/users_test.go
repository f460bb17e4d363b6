package server_test

import (
	"testing"

	"github.com/messager/messager/internal/server/servertest"
)

// TestSetUsersKeepsSessions: a new table closes only the sessions of users
// it no longer holds; a changed password does not end a session.
func TestSetUsersKeepsSessions(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	alice := login(t, srv, "alice", "pw-alice")
	bob := login(t, srv, "bob", "pw-bob")
	carol := login(t, srv, "carol", "pw-carol")
	srv.ReloadUsers(servertest.Users{"alice": "new-pw", "bob": "pw-bob", "erin": "pw-erin"})
	carol.Expect("END <account removed> \r\n")
	carol.ExpectClosed()
	waitOnline(t, srv, 2)
	alice.Send("MSG bob alice same session\r\n")
	bob.Expect("RELAY bob alice same session \r\n")
	// The new password counts from now on; the old one is refused.
	c := dial(t, srv)
	c.Send("AUTH alice pw-alice\r\n")
	c.Expect(endBadLogin)
	erin := login(t, srv, "erin", "pw-erin")
	alice.Send("MSG erin alice hello erin\r\n")
	erin.Expect("RELAY erin alice hello erin \r\n")
	if n := srv.Server.Stats().CloseCount("account_removed"); n != 1 {
		t.Errorf("account_removed closes = %d, want 1", n)
	}
}
