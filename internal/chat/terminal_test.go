package chat_test

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/messager/messager/internal/server/servertest"
)

// csi matches the terminal control sequences the line editor writes.
var csi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// startsLine reports whether the first marker in out is written at the
// start of a line: nothing but control sequences between the last line
// break or carriage return and it.
func startsLine(out, marker string) bool {
	i := strings.Index(out, marker)
	if i < 0 {
		return false
	}
	j := strings.LastIndexAny(out[:i], "\r\n")
	return csi.ReplaceAllString(out[j+1:i], "") == ""
}

// TestCtrlCOnEmptyLineEndsTheLine: Ctrl-C on an empty line quits, and the
// line with the prompt is ended, so that the shell's prompt does not
// land on it.
func TestCtrlCOnEmptyLineEndsTheLine(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	for _, args := range [][]string{{"--to", "bob"}, nil} {
		prompt := "[to bob] "
		if args == nil {
			prompt = "send to: "
		}
		tm := startTerm(t, env, append([]string{"chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint}, args...)...)
		tm.expect(prompt)
		tm.send("\x03")
		if code := tm.exit(); code != 0 {
			t.Fatalf("exit status %d after Ctrl-C", code)
		}
		out := tm.output()
		if after := out[strings.LastIndex(out, prompt):]; !strings.Contains(after, "\n") {
			t.Errorf("at %q: the prompt's line was not ended: %q", prompt, after)
		}
	}
}

// TestTargetPromptCommands: at the "send to:" prompt, /help and /quit
// are commands, not names, and what is not a name is refused with a
// reason.
func TestTargetPromptCommands(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint)
	tm.expect("send to: ")
	tm.send("/help\r")
	tm.expect("* type the name of the user to send to")
	tm.expect("/quit")
	tm.send("/nope\r")
	tm.expect("* unknown command /nope; type a user name, /help or /quit")
	tm.send("not a name!\r")
	tm.expect(`* "not a name!" is not a valid username`)
	tm.send("/to bob\r")
	tm.expect("[to bob] ")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}

	tm = startTerm(t, env, "chat", "--server", srv.Addr, "--fingerprint", srv.Fingerprint)
	tm.expect("send to: ")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d after /quit at the target prompt", code)
	}
}

// TestTypedAheadDoesNotShareALine: what is typed before the client
// shows its first line is echoed by the terminal; the client's notice
// must start a line of its own, and the typed text must still reach the
// line editor. After the session the terminal echoes again.
func TestTypedAheadDoesNotShareALine(t *testing.T) {
	release := make(chan struct{})
	addr, fp := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		<-release
		io.WriteString(c, "ACCEPT alice \r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "END") {
				io.WriteString(c, "END <end accepted> \r\n")
				return
			}
		}
	})
	env := clientEnv(t, "MESSAGER_USER=alice", "MESSAGER_PASSWORD=pw1")
	tm := startTerm(t, env, "chat", "--server", addr, "--fingerprint", fp, "--to", "bob")
	tm.send("early")
	tm.expect("early") // the terminal's echo: the client is still logging in
	close(release)
	tm.expect("* logged in to")
	if !startsLine(tm.output(), "* logged in to") {
		t.Errorf("the notice shares a line with the typed-ahead text: %q", tm.output())
	}
	tm.expect("[to bob] early")
	tm.send("\r")
	tm.expect("alice → bob: early")
	tm.send("/quit\r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if !echoOn(tm.pty) {
		t.Error("the terminal does not echo after the session")
	}
}
