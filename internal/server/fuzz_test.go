package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/protocol"
	"github.com/messager/messager/internal/server/servertest"
)

// FuzzSession writes random bytes into a live session, after a successful
// login over TLS, and checks that the server answers only with lines the
// protocol allows, ends the session cleanly, and goes on serving a
// bystander pair. One server serves every input; each input logs in as the
// same user, replacing the last session if it is somehow still there.
//
// Run it with: go test -run='^$' -fuzz=FuzzSession ./internal/server/
//
// The second argument says where the input is cut in two writes.
func FuzzSession(f *testing.F) { fuzzSession(f, 1, v1Seeds) }

// FuzzSessionV2 is FuzzSession for a version-2 session: the same inputs
// and more (presence, groups), and the version-2 lines allowed back. The
// sessions of one run replace each other, so groups and watch lists are
// handed over from input to input.
//
// Run it with: go test -run='^$' -fuzz=FuzzSessionV2 ./internal/server/
func FuzzSessionV2(f *testing.F) {
	fuzzSession(f, 2, append(v1Seeds,
		"JOIN #g\r\nMSG #g fz hi all\r\nPART #g\r\n",
		"JOIN #G\r\nJOIN #g\r\nWHO #g\r\n",
		"WATCH by1 by2 nobody\r\nUNWATCH by1\r\nUNWATCH *\r\n",
		"WHO *\r\nWHO b*\r\nWHO by1\r\nWHO *\r\nWHO *\r\nWHO *\r\nWHO *\r\n",
		"MSG #nope fz not a member\r\nPART #nope\r\n",
		"MSG nobody fz named cnt\r\n",
		"WATCH "+strings.Repeat("a ", 33)+"\r\n",
		"HELLO 2\r\n",
		"PUT fz password1\r\n",
		"JOIN #"+strings.Repeat("x", 33)+"\r\n",
	))
}

var v1Seeds = []string{
	"",
	"MSG fz fz hello\r\n",
	"MSG fz fz hello \r\nMSG fz fz again\n",
	"MSG by1 fz to a bystander\r\nMSG nobody fz not online\r\n",
	"MSG by2 fz \ttabs\tand  spaces \t\r\n",
	"END\r\n",
	"END with words\r\nMSG fz fz after end\r\n",
	"MSG fz fz split",
	"MSG fz fz one\n \r\nMSG fz fz two\r\n\r\n\n",
	"MSG fz fz " + strings.Repeat("x", protocol.MaxLine) + "\r\n",
	strings.Repeat("y", protocol.MaxLine+1),
	"MSG fz fz bell\a\r\n",
	"MSG fz fz esc\x1b[2J\r\n",
	"MSG fz fz nul\x00\r\n",
	"MSG fz fz c1\u0085\r\n",
	"MSG fz fz bad utf-8 \xff\xfe\r\n",
	"MSG fz fz cr\rinside\r\n",
	"MSG fz by1 spoofed\r\n",
	"MSG fz FZ case\r\n",
	"AUTH fz pw-fz\r\n",
	"ACCEPT fz\r\nRELAY fz fz hi\r\nCNT\r\nCHECK\r\n",
	"MSG  fz fz double space\r\n",
	"MSG fz fz\r\n",
	"MSG fz fz    \r\n",
	"msg fz fz lowercase\r\n",
	"MSG fz fz héllo wörld ✓ 你好\r\n",
	"\r\n\r\n\t \r\n",
}

func fuzzSession(f *testing.F, version int, seeds []string) {
	srv := servertest.Start(f, servertest.Users{"fz": "pw-fz", "by1": "pw-by1", "by2": "pw-by2"})
	by1 := login(f, srv, "by1", "pw-by1")
	by2 := login(f, srv, "by2", "pw-by2")
	for _, seed := range seeds {
		// Split after the first byte, and in the middle: the network may
		// cut the input anywhere.
		f.Add([]byte(seed), uint16(1))
		f.Add([]byte(seed), uint16(len(seed)/2))
	}

	round := 0
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var c *lineConn
		if version == 2 {
			c = loginV2(t, srv, "fz")
		} else {
			c = login(t, srv, "fz", "pw-fz")
		}
		// Read while writing: the input may make the server write a lot
		// back (messages to oneself).
		type result struct {
			lines []string
			err   error
		}
		done := make(chan result, 1)
		go func() {
			var res result
			_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReaderSize(c.R, protocol.MaxServerLine)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					if line != "" && errors.Is(err, io.EOF) {
						res.err = fmt.Errorf("partial line %q at the end", trunc(line))
					} else if isTimeoutErr(err) {
						res.err = errors.New("the session did not end")
					}
					break
				}
				res.lines = append(res.lines, line)
			}
			done <- res
		}()
		// The input in two writes (two TLS records, most often two reads
		// for the server), then a line end (in case it stopped mid-line)
		// and END, so every session ends on its own.
		in := append(bytes.Clone(data), "\nEND\r\n"...)
		cut := int(split) % len(in)
		_ = c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Conn.Write(in[:cut]); err == nil {
			_, _ = c.Conn.Write(in[cut:])
		}
		res := <-done
		c.Conn.Close()
		if res.err != nil {
			t.Fatal(res.err)
		}
		for i, line := range res.lines {
			if err := checkServerLine(line, "fz", data, version); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if strings.HasPrefix(line, "END ") && i != len(res.lines)-1 {
				t.Fatalf("line %d: %q is not the last line", i+1, line)
			}
		}
		if n := len(res.lines); n == 0 || !strings.HasPrefix(res.lines[n-1], "END ") {
			t.Fatalf("the session ended without END; got %q", res.lines)
		}

		// The server still serves others: a round trip between the
		// bystanders, who may first have messages from fz to read.
		round++
		b1, b2 := by1.WithT(t), by2.WithT(t)
		b1.Send(fmt.Sprintf("MSG by2 by1 ping %d\r\n", round))
		drainUntil(t, b2, fmt.Sprintf("RELAY by2 by1 ping %d \r\n", round), data)
		b2.Send(fmt.Sprintf("MSG by1 by2 pong %d\r\n", round))
		drainUntil(t, b1, fmt.Sprintf("RELAY by1 by2 pong %d \r\n", round), data)
	})
}

// drainUntil reads c's lines until want, checking that those before it are
// messages from fz.
func drainUntil(t *testing.T, c *lineConn, want string, data []byte) {
	t.Helper()
	for {
		line := c.Line()
		if line == want {
			return
		}
		if strings.HasPrefix(line, "RELAY by1 by2 pong ") || strings.HasPrefix(line, "RELAY by2 by1 ping ") {
			continue // left over from an input that failed before its round trip
		}
		if line == "CHECK \r\n" {
			continue
		}
		if !strings.HasPrefix(line, "RELAY ") {
			t.Fatalf("bystander got %q, want %q", trunc(line), trunc(want))
		}
		target := strings.Fields(line)[1]
		if err := checkServerLine(line, target, data, 1); err != nil {
			t.Fatalf("bystander: %v", err)
		}
	}
}

// allowedEnds are the END lines the server may send after login.
var allowedEnds = map[string]bool{
	"END <end accepted> \r\n":                   true,
	"END <logged in elsewhere> \r\n":            true,
	"END <too slow> \r\n":                       true,
	"END <server shutting down> \r\n":           true,
	"END <account removed> \r\n":                true,
	"END * <incorrect protocol> \r\n":           true,
	"END * <line too long> \r\n":                true,
	"END <timeout> \r\n":                        false, // only before login
	"END <too many attempts> \r\n":              false,
	"END <server full> \r\n":                    false,
	"END <too many connections> \r\n":           false,
	"END <incorrect username or password> \r\n": false,
}

// checkServerLine checks that line, sent to user after login, has one of
// the shapes the protocol page allows in the session's version. A RELAY
// must carry text the client actually sent (in data) from a user who may
// send it (fz).
func checkServerLine(line, user string, data []byte, version int) error {
	body, ok := strings.CutSuffix(line, " \r\n")
	if !ok {
		return fmt.Errorf("%q does not end in \" \\r\\n\"", trunc(line))
	}
	if len(line) > protocol.MaxServerLine {
		return fmt.Errorf("line of %d bytes, over %d", len(line), protocol.MaxServerLine)
	}
	if !protocol.ValidText([]byte(body)) {
		return fmt.Errorf("%q holds control characters or bad UTF-8", trunc(line))
	}
	switch {
	case line == "CNT <user not online> \r\n", line == "CHECK \r\n":
		return nil
	case strings.HasPrefix(line, "END "):
		if !allowedEnds[line] {
			return fmt.Errorf("END line %q not allowed after login", line)
		}
		return nil
	case version >= 2 && !strings.HasPrefix(line, "RELAY "):
		sl, err := protocol.ParseServerLine([]byte(body))
		switch {
		case err != nil:
			return fmt.Errorf("%q: %v", trunc(line), err)
		case sl.Kind == protocol.KindCNT && sl.Target != nil,
			sl.Kind == protocol.KindFail, sl.Kind == protocol.KindWho, sl.Kind == protocol.KindPresence:
			return nil
		case (sl.Kind == protocol.KindJoin || sl.Kind == protocol.KindPart) && string(sl.User) == "fz":
			return nil
		}
		return fmt.Errorf("%q is not a line the server may send a version-2 session", trunc(line))
	case strings.HasPrefix(line, "RELAY "):
		parts := strings.SplitN(body, " ", 4)
		if len(parts) != 4 || parts[1] != user || parts[2] != "fz" {
			return fmt.Errorf("RELAY %q: want target %s, sender fz", trunc(line), user)
		}
		text := parts[3]
		if text == "" || strings.TrimRight(text, " \t") != text {
			return fmt.Errorf("RELAY %q: empty or untrimmed text", trunc(line))
		}
		if !bytes.Contains(data, []byte(text)) {
			return fmt.Errorf("RELAY %q: text the client never sent", trunc(line))
		}
		return nil
	}
	return fmt.Errorf("%q is not a line the server may send", trunc(line))
}
