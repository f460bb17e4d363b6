package chat

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/messager/messager/internal/client"
)

// safe reports whether s can be written to a terminal: valid UTF-8 with no
// control character other than TAB and none of the runes client.Escape
// escapes.
func safe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t') || r == 0x7f || client.EscapedRune(r) {
			return false
		}
	}
	return true
}

func FuzzJSONString(f *testing.F) {
	f.Add("\x1b[2J plain \u009b \xff \u202e")
	f.Add("tab\there \"quoted\" back\\slash")
	f.Add("日本語 \r\n \u200b\ufeff")
	f.Fuzz(func(t *testing.T, in string) {
		var js []byte
		js = AppendJSONString(js, in)
		if !safe(string(js)) {
			t.Fatalf("JSON of %q = %s is not safe to display", in, js)
		}
		var back string
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("JSON of %q = %s does not parse: %v", in, js, err)
		}
		if utf8.ValidString(in) && back != in {
			t.Fatalf("JSON round trip of %q gave %q", in, back)
		}
	})
}

func TestOutputFormats(t *testing.T) {
	at := time.Date(2025, 3, 4, 15, 4, 5, 0, time.Local)
	r := client.Relay{From: "alice", To: "bob", Text: "hi \x1b[31m", Time: at}
	tests := []struct {
		name string
		out  *output
		want string
	}{
		{"terminal", &output{}, "[15:04] alice: hi \\x1b[31m\n"},
		{"colour", &output{color: true}, "[15:04] \x1b[" + strconv.Itoa(colour("alice")) + "malice\x1b[0m: hi \\x1b[31m\n"},
		{"pipe", &output{short: true}, "alice: hi \\x1b[31m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			tt.out.msgs = &b
			tt.out.relay(r)
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}

	var b strings.Builder
	o := output{json: true, msgs: &b}
	o.relay(r)
	var got struct{ Type, Time, From, To, Text string }
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("json line %q: %v", b.String(), err)
	}
	if got.Type != "message" || got.From != "alice" || got.To != "bob" || got.Text != r.Text || got.Time != at.Format(time.RFC3339Nano) {
		t.Errorf("json = %+v", got)
	}
	if strings.Count(b.String(), "\n") != 1 || !strings.HasSuffix(b.String(), "}\n") {
		t.Errorf("json line %q is not one line", b.String())
	}
}

func TestColourStable(t *testing.T) {
	// The same name gets the same colour every time, in every process:
	// these values are fixed by the hash, not by run order.
	first := map[string]int{}
	for _, name := range []string{"alice", "bob", "carol"} {
		first[name] = colour(name)
	}
	for _, name := range []string{"carol", "bob", "alice"} {
		if got := colour(name); got != first[name] {
			t.Errorf("colour of %s changed from %d to %d", name, first[name], got)
		}
	}
	seen := map[int]bool{}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} {
		seen[colour(name)] = true
	}
	if len(seen) < 3 {
		t.Errorf("8 names share %d colours", len(seen))
	}
}
