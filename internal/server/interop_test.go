package server_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// TestInteropPython runs clients written in another language from the
// protocol page alone against a real server: interop_client.py for version
// 1, interop_v2.py for version 2 (with the server configured small, so
// that its limits can be reached, and in the modes that switch features
// off or allow only listed groups).
func TestInteropPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	run := func(t *testing.T, srv *servertest.Server, script string, args ...string) {
		t.Helper()
		host, port, _ := net.SplitHostPort(srv.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, append([]string{script, host, port, srv.Fingerprint}, args...)...)
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python %s: %v\n%s", script, err, out)
		}
		t.Logf("%s", out)
	}

	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, testUsers, func(c *server.Config) { c.CheckInterval = 100 * time.Millisecond })
		run(t, srv, "testdata/interop_client.py")
	})

	// The users interop_v2.py expects, in every mode.
	v2Users := maps.Clone(testUsers)
	for _, u := range []string{"erin", "frank", "albert", "al-x", "al.y", "al_z"} {
		v2Users[u] = "pw-" + u
	}
	for i := range 105 {
		u := fmt.Sprintf("u%03d", i)
		v2Users[u] = "pw-" + u
	}
	for i := range 50 {
		u := fmt.Sprintf("p%02d", i)
		v2Users[u] = "pw-" + u
	}
	list := func(t *testing.T, csv string) *groups.Table {
		tab, err := groups.Parse(strings.NewReader(csv))
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	limits := func(watch, maxGroups, members int) []string {
		return []string{strconv.Itoa(watch), strconv.Itoa(maxGroups), strconv.Itoa(members)}
	}

	t.Run("v2", func(t *testing.T) {
		t.Parallel()
		staff := list(t, "#Staff,alice,bob\n")
		const interval = 100 * time.Millisecond
		srv := servertest.Start(t, v2Users, func(c *server.Config) {
			c.PresenceInterval = interval
			c.MaxWatch, c.MaxGroups, c.MaxMembers = 4, 3, 4
			c.GroupList = staff
		})
		args := append([]string{"full"}, limits(4, 3, 4)...)
		run(t, srv, "testdata/interop_v2.py", append(args, strconv.Itoa(int(interval.Milliseconds())))...)
	})

	t.Run("v2-off", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, v2Users, func(c *server.Config) {
			c.NoPresence = true
			c.Groups = server.GroupsOff
		})
		run(t, srv, "testdata/interop_v2.py", "off")
	})

	t.Run("v2-listed", func(t *testing.T) {
		t.Parallel()
		listed := list(t, "#Staff,alice,bob\n#Lobby,*\n")
		srv := servertest.Start(t, v2Users, func(c *server.Config) {
			c.MaxWatch, c.MaxGroups, c.MaxMembers = 7, 5, 6
			c.Groups = server.GroupsListed
			c.GroupList = listed
		})
		run(t, srv, "testdata/interop_v2.py", append([]string{"listed"}, limits(7, 5, 6)...)...)
	})
}
