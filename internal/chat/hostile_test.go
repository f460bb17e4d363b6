package chat_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// hostileReason is an END reason that would clear the screen, set the
// window title, write the clipboard (OSC 52) and turn the text after it
// around, if it reached a terminal raw.
const hostileReason = "\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\u202eevil\u200b"

// hostileShown is how the client must show it.
const hostileShown = `\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\u202eevil\u200b`

// hostileRaw are pieces of hostileReason that must never be written.
var hostileRaw = []string{"\x1b[2J", "\x1b]", "\x07", "\u202e", "\u200b"}

func checkNoRaw(t *testing.T, what, out string) {
	t.Helper()
	if !strings.Contains(out, hostileShown) {
		t.Errorf("%s does not show the escaped reason %q:\n%q", what, hostileShown, out)
	}
	for _, raw := range hostileRaw {
		if strings.Contains(out, raw) {
			t.Errorf("raw %q reached %s", raw, what)
		}
	}
}

// hostileEnd runs a server that ends every session with hostileReason:
// in answer to AUTH when refuse is set, otherwise after ACCEPT, at once
// (chat) or in answer to the first MSG (send).
func hostileEnd(t *testing.T, refuse, onMsg bool) (addr, fingerprint string) {
	return fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		end := "END <" + hostileReason + "> \r\n"
		if refuse {
			io.WriteString(c, end)
			return
		}
		io.WriteString(c, "ACCEPT alice \r\n")
		if onMsg {
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "MSG ") {
					break
				}
			}
		}
		io.WriteString(c, end)
		io.Copy(io.Discard, r)
	})
}

func TestHostileEndReasonEscaped(t *testing.T) {
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	for _, refuse := range []bool{false, true} {
		name := "session"
		if refuse {
			name = "login"
		}
		t.Run(name+"/terminal", func(t *testing.T) {
			addr, fp := hostileEnd(t, refuse, false)
			tm := startTerm(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
			if code := tm.exit(); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			tm.out.expect(t, hostileShown)
			checkNoRaw(t, "the terminal", tm.output())
		})
		t.Run(name+"/pipe", func(t *testing.T) {
			addr, fp := hostileEnd(t, refuse, false)
			p := startProc(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
			code := waitExit(t, p.cmd)
			p.stdin.Close()
			p.stderr.close()
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			checkNoRaw(t, "stderr", p.stderr.String())
		})
		t.Run(name+"/send", func(t *testing.T) {
			addr, fp := hostileEnd(t, refuse, true)
			code, _, stderr := run(t, env, "", "send", "--server", addr, "--fingerprint", fp, "--to", "bob", "hi")
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			checkNoRaw(t, "stderr", stderr)
		})
	}
}
