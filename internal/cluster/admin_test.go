package cluster_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/messager/messager/internal/operator"
	"github.com/messager/messager/internal/server/servertest"
)

// operatorOf returns the operator of nd, acting on the whole cluster.
func operatorOf(t *testing.T, nd *node) *operator.Operator {
	t.Helper()
	dir := t.TempDir()
	op, err := operator.New(nd.s.Server, operator.Config{
		UsersFile:   nd.s.UsersFile,
		BansFile:    filepath.Join(dir, "bans.csv"),
		InvitesFile: filepath.Join(dir, "invites.csv"),
	})
	if err != nil {
		t.Fatal(err)
	}
	op.SetPeers(nd.n)
	return op
}

// TestAdminAcrossNodes runs the operators' actions from node A on users
// of B and C.
func TestAdminAcrossNodes(t *testing.T) {
	a, b, c := startCluster(t)
	opA := operatorOf(t, a)
	operatorOf(t, b)
	operatorOf(t, c)
	alice := loginV2(t, a, "alice", "pw-a")
	bob := loginV2(t, b, "bob", "pw-b")
	carol := loginV2(t, c, "carol", "pw-c")

	list := opA.Sessions("")
	nodes := map[string]string{}
	for _, s := range list {
		nodes[s.User] = s.Node
	}
	if len(list) != 3 || nodes["alice"] != "a" || nodes["bob"] != "b" || nodes["carol"] != "c" {
		t.Fatalf("sessions from a: %+v", list)
	}
	if only := opA.Sessions("carol"); len(only) != 1 || only[0].Node != "c" {
		t.Errorf("carol's session from a: %+v", only)
	}

	n, err := opA.Notice("", "maintenance at noon")
	if err != nil || n != 3 {
		t.Errorf("notice to all: %d sessions, %v; want 3", n, err)
	}
	for user, conn := range map[string]*servertest.Conn{"alice": alice, "bob": bob, "carol": carol} {
		conn.Expect("RELAY " + user + " server maintenance at noon \r\n")
	}

	if ok, err := opA.Kick("bob", ""); !ok || err != nil {
		t.Errorf("kick bob from a: %v, %v", ok, err)
	}
	bob.Expect("END <kicked> \r\n")
	bob.ExpectClosed()
	if ok, _ := opA.Kick("nobody", ""); ok {
		t.Error("kicked a user who is not online")
	}

	ban, err := opA.Ban("carol", 0, "spam")
	if err != nil || ban.Sessions != 1 {
		t.Errorf("ban carol from a: %+v, %v", ban, err)
	}
	if l := carol.Line(); !strings.HasPrefix(l, "END ") {
		t.Errorf("banned carol got %q", l)
	}
	carol.ExpectClosed()
	waitOnline(t, "carol", false, a, b, c)
	if ok, err := opA.Unban("carol"); !ok || err != nil {
		t.Errorf("unban carol: %v, %v", ok, err)
	}
	loginV2(t, c, "carol", "pw-c")
}
