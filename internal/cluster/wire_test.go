package cluster

import (
	"bytes"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want record
	}{
		{"R bob alice hello there", true, record{kind: recRelay, a: []byte("bob"), b: []byte("alice"), text: []byte("hello there")}},
		{"R bob alice ", true, record{kind: recRelay, a: []byte("bob"), b: []byte("alice"), text: []byte{}}},
		{"G #team alice hi", true, record{kind: recGroup, a: []byte("#team"), b: []byte("alice"), text: []byte("hi")}},
		{"O alice 17", true, record{kind: recOnline, a: []byte("alice"), stamp: 17}},
		{"F alice 17", true, record{kind: recOff, a: []byte("alice"), stamp: 17}},
		{"J #team alice", true, record{kind: recJoin, a: []byte("#team"), b: []byte("alice")}},
		{"P #team alice", true, record{kind: recPart, a: []byte("#team"), b: []byte("alice")}},
		{"O alice 17 2", true, record{kind: recOnline, a: []byte("alice"), stamp: 17, version: 2}},
		{"T alice 17 #a,#b bob,carol", true, record{kind: recHand, a: []byte("alice"), stamp: 17, b: []byte("#a,#b"), text: []byte("bob,carol"), version: 1}},
		{"T alice 17 - -", true, record{kind: recHand, a: []byte("alice"), stamp: 17, b: []byte("-"), text: []byte("-"), version: 1}},
		{"H", true, record{kind: recHello}},
		{"S", true, record{kind: recState}},
		{"E", true, record{kind: recEnd}},
		{"", false, record{}},
		{"H extra", false, record{}},
		{"R bob", false, record{}},
		{"R bob alice", false, record{}},
		{"Rbob alice x", false, record{}},
		{"R  alice x", false, record{}},
		{"R bob al ice x\r", false, record{}},
		{"R bob alice x\ry", false, record{}},
		{"G team alice hi", false, record{}},
		{"R #team alice hi", false, record{}},
		{"O alice 0", false, record{}},
		{"O alice -5", false, record{}},
		{"O alice x", false, record{}},
		{"O #team 5", false, record{}},
		{"J team alice", false, record{}},
		{"J #team al ice", false, record{}},
		{"X a b", false, record{}},
		{"O alice 17 0", false, record{}},
		{"O alice 17 x", false, record{}},
		{"F alice 17 2", false, record{}},
		{"T alice 17 #a", false, record{}},
		{"T alice 17 a,b -", false, record{}},
		{"T alice 17 #a #b,", false, record{}},
	}
	for _, tt := range tests {
		got, ok := parseRecord([]byte(tt.line))
		if ok != tt.ok {
			t.Errorf("parseRecord(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.kind != tt.want.kind || !bytes.Equal(got.a, tt.want.a) || !bytes.Equal(got.b, tt.want.b) ||
			!bytes.Equal(got.text, tt.want.text) || got.stamp != tt.want.stamp || (tt.want.version != 0 && got.version != tt.want.version) {
			t.Errorf("parseRecord(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

// TestRecordsRoundTrip checks that what the append functions write, the
// parser reads back.
func TestRecordsRoundTrip(t *testing.T) {
	var b []byte
	b = appendMessage(b, recRelay, "", []byte("bob"), []byte("alice"), []byte("a text with spaces"))
	b = appendMessage(b, recGroup, "#team", nil, []byte("alice"), []byte("to the group"))
	b = appendStamped(b, recOnline, "carol", 1234567890123)
	b = appendStamped(b, recOff, "carol", 1234567890123)
	b = appendMember(b, recJoin, "#team", "dave")
	b = appendMember(b, recPart, "#team", "dave")
	b = appendOnline(b, "erin", 99, 2)
	b = appendHandOver(b, "erin", 99, []string{"#a", "#b"}, nil)
	want := []byte{recRelay, recGroup, recOnline, recOff, recJoin, recPart, recOnline, recHand}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		r, ok := parseRecord(line)
		if !ok || r.kind != want[i] {
			t.Errorf("line %q: kind %c ok %v, want %c", line, r.kind, ok, want[i])
		}
	}
}

func TestBatchHeader(t *testing.T) {
	id, recs, ok := batchHeader([]byte("@0123456789abcdef\nH\nE\n"))
	if !ok || string(id) != "0123456789abcdef" || string(recs) != "H\nE\n" {
		t.Errorf("got %q %q %v", id, recs, ok)
	}
	for _, bad := range []string{"", "@", "0123456789abcdef\n", "@0123456789ABCDEF\n", "@0123\n", "@0123456789abcdefg\n"} {
		if _, _, ok := batchHeader([]byte(bad)); ok {
			t.Errorf("batchHeader(%q) accepted", bad)
		}
	}
}

// FuzzRecords feeds arbitrary batches to the parser: it must never
// panic, and what it accepts must be made of valid names.
func FuzzRecords(f *testing.F) {
	f.Add([]byte("@0123456789abcdef\nR bob alice hi\nO alice 5\nJ #t alice\nE\n"))
	f.Add([]byte("@0123456789abcdef\nG #team alice x y z\nH\n"))
	f.Add([]byte("@0123456789abcdef"))
	f.Fuzz(func(t *testing.T, batch []byte) {
		_, recs, ok := batchHeader(batch)
		if !ok {
			return
		}
		for _, line := range bytes.Split(recs, []byte("\n")) {
			r, ok := parseRecord(line)
			if !ok {
				continue
			}
			if bytes.IndexByte(r.text, '\r') >= 0 || bytes.IndexByte(r.a, ' ') >= 0 || bytes.IndexByte(r.b, ' ') >= 0 {
				t.Fatalf("accepted %q as %+v", line, r)
			}
		}
	})
}
