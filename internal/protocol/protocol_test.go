package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestTrimLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"MSG bob alice hi \r\n", "MSG bob alice hi"},
		{"MSG bob alice hi\r\n", "MSG bob alice hi"},
		{"MSG bob alice hi\n", "MSG bob alice hi"},
		{"MSG bob alice hi \t \r\n", "MSG bob alice hi"},
		{"MSG bob alice hi", "MSG bob alice hi"},
		{" \r\n", ""},
		{"\n", ""},
		{"", ""},
		{"a\r\r\n", "a\r"}, // only one CR is a terminator
		{"  lead", "  lead"},
	}
	for _, tt := range tests {
		if got := string(TrimLine([]byte(tt.in))); got != tt.want {
			t.Errorf("TrimLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"A", true}, {"a.b-c_d9", true}, {strings.Repeat("x", 32), true},
		{"", false}, {strings.Repeat("x", 33), false}, {"al ice", false}, {"al!ce", false},
		{"ålice", false}, {"a,b", false}, {"a\tb", false},
	}
	for _, tt := range tests {
		if got := ValidName([]byte(tt.name)); got != tt.ok {
			t.Errorf("ValidName(%q) = %v", tt.name, got)
		}
		if got := ValidNameString(tt.name); got != tt.ok {
			t.Errorf("ValidNameString(%q) = %v", tt.name, got)
		}
	}
}

func TestValidText(t *testing.T) {
	tests := []struct {
		text string
		ok   bool
	}{
		{"hello", true}, {"tab\there", true}, {"héllo ✓ 😀", true}, {"", true},
		{"nul\x00", false}, {"esc\x1b[2J", false}, {"del\x7f", false}, {"cr\r", false},
		{"c1\u0085", false}, {"c1\u009b", false}, {"bad\xff", false}, {"half\xe2\x9c", false},
		{"\u00a0nbsp", true},
		{"eight ok", true}, {"12345678\x1f", false}, {"1234567\x7f", false}, {"abcdefgh\x01ijklmnop", false},
		{"abcdefghijklmno\x7fpqrstuvwxyz", false}, {"abcdefghijklmno~ pqrstuvwxyz", true}, {"abcdefgh\tijklmnop", true},
	}
	for _, tt := range tests {
		if got := ValidText([]byte(tt.text)); got != tt.ok {
			t.Errorf("ValidText(%q) = %v", tt.text, got)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		line string
		want Query
		err  error
	}{
		{"AUTH alice s3cret", Query{Kind: KindAuth, User: []byte("alice"), Password: []byte("s3cret")}, nil},
		{"MSG bob alice hi there", Query{Kind: KindMsg, Target: []byte("bob"), Sender: []byte("alice"), Text: []byte("hi there")}, nil},
		{"MSG bob alice  two leading", Query{Kind: KindMsg, Target: []byte("bob"), Sender: []byte("alice"), Text: []byte(" two leading")}, nil},
		{"MSG bob alice \ttab", Query{Kind: KindMsg, Target: []byte("bob"), Sender: []byte("alice"), Text: []byte("\ttab")}, nil},
		{"END", Query{Kind: KindEnd}, nil},
		{"END now please", Query{Kind: KindEnd}, nil},
		{"AUTH alice", Query{}, ErrProtocol},
		{"AUTH alice pw extra", Query{}, ErrProtocol},
		{"AUTH alice " + strings.Repeat("p", 129), Query{}, ErrProtocol},
		{"AUTH bad!name pw", Query{}, ErrProtocol},
		{"MSG bob alice", Query{}, ErrProtocol},
		{"MSG bob alice ", Query{}, ErrProtocol},
		{"MSG bob", Query{}, ErrProtocol},
		{"MSG  bob alice hi", Query{}, ErrProtocol},
		{"MSG bob alice hi\x1b", Query{}, ErrProtocol},
		{"ENDX", Query{}, ErrProtocol},
		{"end", Query{}, ErrProtocol},
		{"CHECK", Query{}, ErrProtocol},
		{"RELAY bob alice hi", Query{}, ErrProtocol},
		{"", Query{}, ErrProtocol},
	}
	for _, tt := range tests {
		got, err := ParseQuery([]byte(tt.line))
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseQuery(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if got.Kind != tt.want.Kind || !bytes.Equal(got.User, tt.want.User) || !bytes.Equal(got.Password, tt.want.Password) ||
			!bytes.Equal(got.Target, tt.want.Target) || !bytes.Equal(got.Sender, tt.want.Sender) || !bytes.Equal(got.Text, tt.want.Text) {
			t.Errorf("ParseQuery(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseServerLine(t *testing.T) {
	tests := []struct {
		line string
		want ServerLine
		err  error
	}{
		{"ACCEPT alice", ServerLine{Kind: KindAccept, User: []byte("alice")}, nil},
		{"RELAY bob alice hi there", ServerLine{Kind: KindRelay, Target: []byte("bob"), Sender: []byte("alice"), Text: []byte("hi there")}, nil},
		{"CNT <user not online>", ServerLine{Kind: KindCNT, Reason: []byte("user not online")}, nil},
		{"CHECK", ServerLine{Kind: KindCheck}, nil},
		{"END <end accepted>", ServerLine{Kind: KindEnd, Reason: []byte("end accepted")}, nil},
		{"END * <incorrect protocol>", ServerLine{Kind: KindEnd, Reason: []byte("incorrect protocol"), ProtocolError: true}, nil},
		{"END something new", ServerLine{Kind: KindEnd, Reason: []byte("something new")}, nil},
		{"HISTORY bob 20", ServerLine{Kind: KindUnknown}, nil},
		{"PRESENCE bob online", ServerLine{}, ErrProtocol}, // a word of version 2 now
		{"RELAY bob alice", ServerLine{}, ErrProtocol},
		{"ACCEPT", ServerLine{}, ErrProtocol},
	}
	for _, tt := range tests {
		got, err := ParseServerLine([]byte(tt.line))
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseServerLine(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if got.Kind != tt.want.Kind || !bytes.Equal(got.User, tt.want.User) || !bytes.Equal(got.Target, tt.want.Target) ||
			!bytes.Equal(got.Sender, tt.want.Sender) || !bytes.Equal(got.Text, tt.want.Text) ||
			!bytes.Equal(got.Reason, tt.want.Reason) || got.ProtocolError != tt.want.ProtocolError {
			t.Errorf("ParseServerLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(AppendAccept(nil, "alice")), "ACCEPT alice \r\n"},
		{string(AppendRelay(nil, []byte("bob"), []byte("alice"), []byte("hi there"))), "RELAY bob alice hi there \r\n"},
		{string(AppendCNT(nil)), "CNT <user not online> \r\n"},
		{string(AppendCheck(nil)), "CHECK \r\n"},
		{string(AppendEnd(nil, ReasonEndAccepted, false)), "END <end accepted> \r\n"},
		{string(AppendEnd(nil, ReasonIncorrectProtocol, true)), "END * <incorrect protocol> \r\n"},
		{string(AppendAuth(nil, "alice", "pw")), "AUTH alice pw\r\n"},
		{string(AppendMsg(nil, "bob", "alice", "hi")), "MSG bob alice hi\r\n"},
		{string(AppendEndQuery(nil)), "END\r\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if n, line := RelayLen([]byte("b"), []byte("a"), []byte("xyz")), AppendRelay(nil, []byte("b"), []byte("a"), []byte("xyz")); n != len(line) {
		t.Errorf("RelayLen = %d, want %d", n, len(line))
	}
	if n, line := MsgLen("b", "a", "xyz"), AppendMsg(nil, "b", "a", "xyz"); n != len(line) {
		t.Errorf("MsgLen = %d, want %d", n, len(line))
	}
}

func readAll(t *testing.T, r *Reader) ([]string, error) {
	t.Helper()
	var lines []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name  string
		input string
		limit int
		want  []string
		err   error
	}{
		{"lines", "a\nb\r\nc \r\n", 10, []string{"a\n", "b\r\n", "c \r\n"}, io.EOF},
		{"partial tail dropped at EOF", "a\nb", 10, []string{"a\n"}, io.EOF},
		{"exactly at limit", "123456789\n", 10, []string{"123456789\n"}, io.EOF},
		{"over limit", "1234567890\n", 10, nil, ErrLineTooLong},
		{"unterminated over limit", "12345678901234", 10, nil, ErrLineTooLong},
		{"long lines under a large limit", long + "\n" + long + "\n", 4096, []string{long + "\n", long + "\n"}, io.EOF},
	}
	for _, tt := range tests {
		for _, split := range []string{"whole", "byte", "half"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				var src io.Reader = strings.NewReader(tt.input)
				switch split {
				case "byte":
					src = iotest.OneByteReader(src)
				case "half":
					src = iotest.HalfReader(src)
				}
				got, err := readAll(t, NewReader(src, tt.limit))
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Fatalf("lines = %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// TestReaderGrowsAndShrinks checks that a burst borrows a large buffer and
// a quiet connection gives it back.
func TestReaderGrowsAndShrinks(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, MaxLine)
	burst := strings.Repeat("MSG bob alice "+strings.Repeat("z", 80)+"\n", 200)
	go func() {
		_, _ = io.WriteString(pw, burst)
		_, _ = io.WriteString(pw, "small\n")
		_, _ = io.WriteString(pw, "small\n")
		pw.Close()
	}()
	n := 0
	sawLarge := false
	for {
		line, err := r.ReadLine()
		if err != nil {
			break
		}
		if r.large != nil {
			sawLarge = true
		}
		if string(line) == "small\n" {
			n++
		}
	}
	if !sawLarge {
		t.Error("a burst never used the large buffer")
	}
	if n != 2 {
		t.Errorf("got %d small lines, want 2", n)
	}
	if r.large != nil || len(r.buf) > smallBuffer {
		t.Errorf("quiet reader kept a %d-byte buffer", len(r.buf))
	}
	r.Release()
}

// TestReaderWaitsSmall: a read that did not fill the small buffer was all
// there was, so the reader waits for the next one without borrowing a
// large buffer, even when that read was a long line (a WATCH list): idle
// sessions that last sent one must not each keep 32 KiB.
func TestReaderWaitsSmall(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, MaxLine)
	line := "WATCH " + strings.Repeat("name ", 30) + "\n" // over half the small buffer
	if len(line) >= smallBuffer || len(line) < smallBuffer/2 {
		t.Fatalf("the line is %d bytes; the test needs between %d and %d", len(line), smallBuffer/2, smallBuffer)
	}
	go func() { _, _ = io.WriteString(pw, line) }()
	if got, err := r.ReadLine(); err != nil || string(got) != line {
		t.Fatalf("ReadLine = %q, %v", got, err)
	}
	done := make(chan error)
	go func() { _, err := r.ReadLine(); done <- err }()
	time.Sleep(20 * time.Millisecond) // the reader now waits in Read
	pw.Close()
	<-done
	if r.large != nil {
		t.Error("the reader waited for a quiet connection holding a large buffer")
	}
	r.Release()
}

// TestNotPrintable checks the word-at-a-time test against the byte test
// for every byte value in every position.
func TestNotPrintable(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c >= 0x20 && c < 0x7f
			if got := notPrintable(binary.LittleEndian.Uint64(b)) == 0; got != want {
				t.Fatalf("byte %#x at %d: got %v", c, pos, got)
			}
		}
	}
}

// TestParseMsgAgrees: ParseMsg accepts exactly the lines ParseQuery
// parses as a MSG to a user, with the same fields.
func TestParseMsgAgrees(t *testing.T) {
	for _, line := range []string{
		"MSG bob alice hi", "MSG bob alice  two  spaces ", "MSG #g alice hi", "MSG bob alice", "MSG bob  alice hi",
		"MSG bob alice \x01", "AUTH a b", "MSG", "MSG " + strings.Repeat("a", 33) + " b c", "msg bob alice hi",
	} {
		target, sender, text, ok := ParseMsg([]byte(line))
		q, err := ParseQuery([]byte(line))
		isMsg := err == nil && q.Kind == KindMsg
		if ok != isMsg {
			t.Errorf("%q: ParseMsg ok=%v, ParseQuery says MSG=%v", line, ok, isMsg)
			continue
		}
		if ok && (string(target) != string(q.Target) || string(sender) != string(q.Sender) || string(text) != string(q.Text)) {
			t.Errorf("%q: fields differ", line)
		}
	}
}
