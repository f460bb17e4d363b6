package admin

import (
	"bufio"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDefaultSocketPath(t *testing.T) {
	tests := []struct{ users, want string }{
		{"user.csv", "messager.sock"},
		{"data/user.csv", filepath.Join("data", "messager.sock")},
		{"/srv/messager/users.csv", filepath.Join("/srv/messager", "messager.sock")},
	}
	for _, tt := range tests {
		if got := DefaultSocketPath(tt.users); got != tt.want {
			t.Errorf("DefaultSocketPath(%q) = %q, want %q", tt.users, got, tt.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, want string
		user     bool
		bad      bool
	}{
		{in: "bob", want: "bob", user: true},
		{in: "Bob.Smith-2_x", want: "Bob.Smith-2_x", user: true},
		{in: "user:bob", want: "bob", user: true},
		{in: "user:10.0.0.1", want: "user:10.0.0.1", user: true},
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "10.0.0.1", want: "10.0.0.1"}, // an address, though a valid name too
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "10.1.2.3/32", want: "10.1.2.3"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:db8::1/128", want: "2001:db8::1"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{in: "::ffff:192.0.2.0/120", want: "192.0.2.0/24"},
		{in: "10.1.2.3/8", bad: true}, // bits past the length
		{in: "10.0.0.256", bad: true},
		{in: "user:bad name", bad: true},
		{in: "", bad: true},
		{in: "bad name", bad: true},
		{in: strings.Repeat("x", 33), bad: true},
		{in: "10.0.0.0/33", bad: true},
		{in: "10.0.0.0/", bad: true},
		{in: "bob/8", bad: true},
		{in: "fe80::1%eth0", bad: true},
		{in: "fe80::1%eth0/64", bad: true},
		{in: "#team", bad: true},
	}
	for _, tt := range tests {
		got, user, err := ParseTarget(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseTarget(%q) = %q, %v; want an error", tt.in, got, user)
			}
			continue
		}
		if err != nil || got != tt.want || user != tt.user {
			t.Errorf("ParseTarget(%q) = %q, %v, %v; want %q, %v", tt.in, got, user, err, tt.want, tt.user)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, to := range []string{"", "bob", "#team"} {
		if err := CheckNoticeTo(to); err != nil {
			t.Errorf("CheckNoticeTo(%q): %v", to, err)
		}
	}
	for _, to := range []string{"#", "team!", "#a b", " "} {
		if err := CheckNoticeTo(to); err == nil {
			t.Errorf("CheckNoticeTo(%q) accepted", to)
		}
	}
	for _, text := range []string{"hello", "tab\tok", "¡olé!", strings.Repeat("x", MaxNoticeLen)} {
		if err := CheckNotice(text); err != nil {
			t.Errorf("CheckNotice(%.20q): %v", text, err)
		}
	}
	for _, text := range []string{"", " \t", "a\nb", "\x1b[31mred", "\u0085", "\xff", strings.Repeat("x", MaxNoticeLen+1)} {
		if err := CheckNotice(text); err == nil {
			t.Errorf("CheckNotice(%.20q) accepted", text)
		}
	}
	for _, reason := range []string{"", "spam", strings.Repeat("x", MaxReasonLen)} {
		if err := CheckReason(reason); err != nil {
			t.Errorf("CheckReason(%.20q): %v", reason, err)
		}
	}
	for _, reason := range []string{"a>b", "<", "a\rb", strings.Repeat("x", MaxReasonLen+1)} {
		if err := CheckReason(reason); err == nil {
			t.Errorf("CheckReason(%.20q) accepted", reason)
		}
	}
	for _, id := range []string{"inv1", "a-b_c.D", strings.Repeat("x", MaxInviteIDLen)} {
		if err := CheckInviteID(id); err != nil {
			t.Errorf("CheckInviteID(%.20q): %v", id, err)
		}
	}
	for _, id := range []string{"", "a b", "é", "a\x00", strings.Repeat("x", MaxInviteIDLen+1)} {
		if err := CheckInviteID(id); err == nil {
			t.Errorf("CheckInviteID(%.20q) accepted", id)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in    string
		lines []string
		err   error
	}{
		{in: "a\nbb\n", lines: []string{"a", "bb"}, err: io.EOF},
		{in: "\n\n", lines: []string{"", ""}, err: io.EOF},
		{in: "a\nbb", lines: []string{"a"}, err: io.ErrUnexpectedEOF},
		{in: "12345678\n", lines: []string{"12345678"}, err: io.EOF}, // the limit, "\n" included
		{in: "123456789\n", err: errLineTooLong},
		{in: "1234567890123456789", err: errLineTooLong},
	}
	for _, tt := range tests {
		// One byte per read, and a buffer smaller than the limit: lines
		// span reads and buffer fills.
		r := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tt.in)), 16)
		var lines []string
		var err error
		for {
			var line []byte
			line, err = readLine(r, 9)
			if err != nil {
				break
			}
			lines = append(lines, string(line))
		}
		if !reflect.DeepEqual(lines, tt.lines) || !errors.Is(err, tt.err) {
			t.Errorf("%q: lines %q, %v; want %q, %v", tt.in, lines, err, tt.lines, tt.err)
		}
	}
}

// FuzzParseRequest: parsing never panics, and a request it accepts is
// encoded by the client's encoder into a line that parses back the same.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"cmd":"kick","user":"bob","reason":"spam"}`,
		`{"v":1,"cmd":"ban","target":"10.0.0.0/8","for":"1h"}`,
		`{"v":1,"cmd":"notice","to":"#team","text":"a <b> \t \u00e9"}`,
		`{"v":1,"cmd":"invite","uses":3,"ttl":"24h"}`,
		`{"v":2,"cmd":"new"}`,
		`{"v":1,"cmd":"bans","USER":"x"}`,
		`{"v":1,"cmd":"bans"} x`,
		`{"v":1e0,"cmd":"bans"}`,
		`nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, e := parseRequest(line)
		if e != nil {
			if req != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("refusal %+v with request %+v", e, req)
			}
			return
		}
		if req.V != Version || req.Cmd == "" {
			t.Fatalf("accepted %+v", req)
		}
		again, err := encodeLine(req)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(again), "\n"); n != 1 {
			t.Fatalf("encoded as %d lines: %q", n, again)
		}
		req2, e := parseRequest(again[:len(again)-1])
		if e != nil {
			t.Fatalf("%q, encoded as %q, refused: %v", line, again, e)
		}
		if !reflect.DeepEqual(req, req2) {
			t.Fatalf("%q parsed as %+v, encoded as %q, parsed as %+v", line, req, again, req2)
		}
	})
}

// FuzzParseTarget: a canonical target parses to itself.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"bob", "10.1.2.3/8", "::ffff:1.2.3.4/100", "2001:db8::1/64", "fe80::1%eth0", "1.2.3.4/32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, user, err := ParseTarget(s)
		if err != nil {
			return
		}
		again, user2, err := ParseTarget(target)
		if err != nil || again != target || user2 != user {
			t.Fatalf("%q: canonical %q (user %v) parses as %q, %v, %v", s, target, user, again, user2, err)
		}
	})
}
