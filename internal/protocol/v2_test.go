package protocol

import (
	"errors"
	"strings"
	"testing"
)

// names returns n distinct valid names separated by single spaces.
func names(n int) string {
	list := make([]string, n)
	for i := range list {
		list[i] = "u" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('0'+i/26))
	}
	return strings.Join(list, " ")
}

func TestParseQueryV2(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	group32 := "#" + strings.Repeat("g", 32)
	name32 := strings.Repeat("n", 32)
	tests := []struct {
		line string
		want Query
		err  error
	}{
		// HELLO: a whole number from 1 to 999, no leading zeros.
		{"HELLO 2", Query{Kind: KindHello, Version: 2}, nil},
		{"HELLO 1", Query{Kind: KindHello, Version: 1}, nil},
		{"HELLO 999", Query{Kind: KindHello, Version: 999}, nil},
		{"HELLO 10", Query{Kind: KindHello, Version: 10}, nil},
		{"HELLO 0", Query{}, ErrProtocol},
		{"HELLO 01", Query{}, ErrProtocol},
		{"HELLO 002", Query{}, ErrProtocol},
		{"HELLO 1000", Query{}, ErrProtocol},
		{"HELLO -1", Query{}, ErrProtocol},
		{"HELLO +2", Query{}, ErrProtocol},
		{"HELLO 2x", Query{}, ErrProtocol},
		{"HELLO 2 3", Query{}, ErrProtocol},
		{"HELLO  2", Query{}, ErrProtocol},
		{"HELLO", Query{}, ErrProtocol},
		{"HELLO ", Query{}, ErrProtocol},
		{"hello 2", Query{}, ErrProtocol},
		{"HELLO ２", Query{}, ErrProtocol}, // a full-width digit

		// WHO
		{"WHO *", Query{Kind: KindWho, Mask: b("*")}, nil},
		{"WHO al*", Query{Kind: KindWho, Mask: b("al*")}, nil},
		{"WHO alice", Query{Kind: KindWho, Mask: b("alice")}, nil},
		{"WHO #team", Query{Kind: KindWho, Mask: b("#team")}, nil},
		{"WHO " + name32 + "*", Query{Kind: KindWho, Mask: b(name32 + "*")}, nil},
		{"WHO " + name32 + "n*", Query{}, ErrProtocol},
		{"WHO " + name32 + "n", Query{}, ErrProtocol},
		{"WHO **", Query{}, ErrProtocol},
		{"WHO *al", Query{}, ErrProtocol},
		{"WHO a*b", Query{}, ErrProtocol},
		{"WHO #te*", Query{}, ErrProtocol},
		{"WHO #", Query{}, ErrProtocol},
		{"WHO al!*", Query{}, ErrProtocol},
		{"WHO a b", Query{}, ErrProtocol},
		{"WHO", Query{}, ErrProtocol},

		// WATCH and UNWATCH: 1 to 32 valid names.
		{"WATCH bob", Query{Kind: KindWatch, Names: b("bob"), NameCount: 1}, nil},
		{"WATCH bob carol", Query{Kind: KindWatch, Names: b("bob carol"), NameCount: 2}, nil},
		{"WATCH bob bob", Query{Kind: KindWatch, Names: b("bob bob"), NameCount: 2}, nil},
		{"WATCH " + names(32), Query{Kind: KindWatch, Names: b(names(32)), NameCount: 32}, nil},
		{"WATCH " + names(33), Query{}, ErrProtocol},
		{"WATCH", Query{}, ErrProtocol},
		{"WATCH ", Query{}, ErrProtocol},
		{"WATCH *", Query{}, ErrProtocol},
		{"WATCH bob  carol", Query{}, ErrProtocol},
		{"WATCH bob ", Query{}, ErrProtocol},
		{"WATCH bob\tcarol", Query{}, ErrProtocol},
		{"WATCH bob c@rol", Query{}, ErrProtocol},
		{"WATCH " + name32 + "x", Query{}, ErrProtocol},
		{"UNWATCH bob", Query{Kind: KindUnwatch, Names: b("bob"), NameCount: 1}, nil},
		{"UNWATCH " + names(32), Query{Kind: KindUnwatch, Names: b(names(32)), NameCount: 32}, nil},
		{"UNWATCH *", Query{Kind: KindUnwatch, All: true}, nil},
		{"UNWATCH " + names(33), Query{}, ErrProtocol},
		{"UNWATCH * bob", Query{}, ErrProtocol},
		{"UNWATCH bob *", Query{}, ErrProtocol},
		{"UNWATCH **", Query{}, ErrProtocol},
		{"UNWATCH", Query{}, ErrProtocol},

		// JOIN and PART: '#' and 1 to 32 name characters.
		{"JOIN #ops", Query{Kind: KindJoin, Group: b("#ops")}, nil},
		{"JOIN #Team.B-1_x", Query{Kind: KindJoin, Group: b("#Team.B-1_x")}, nil},
		{"JOIN " + group32, Query{Kind: KindJoin, Group: b(group32)}, nil},
		{"PART #ops", Query{Kind: KindPart, Group: b("#ops")}, nil},
		{"JOIN " + group32 + "g", Query{}, ErrProtocol},
		{"JOIN #", Query{}, ErrProtocol},
		{"JOIN ops", Query{}, ErrProtocol},
		{"JOIN ##ops", Query{}, ErrProtocol},
		{"JOIN #o ps", Query{}, ErrProtocol},
		{"JOIN #ops extra", Query{}, ErrProtocol},
		{"JOIN #öps", Query{}, ErrProtocol},
		{"JOIN", Query{}, ErrProtocol},
		{"PART #", Query{}, ErrProtocol},
		{"PART", Query{}, ErrProtocol},

		// MSG to a group.
		{"MSG #ops alice hi all", Query{Kind: KindGroupMsg, Target: b("#ops"), Sender: b("alice"), Text: b("hi all")}, nil},
		{"MSG " + group32 + " alice x", Query{Kind: KindGroupMsg, Target: b(group32), Sender: b("alice"), Text: b("x")}, nil},
		{"MSG " + group32 + "g alice x", Query{}, ErrProtocol},
		{"MSG # text", Query{}, ErrProtocol},
		{"MSG # alice text", Query{}, ErrProtocol},
		{"MSG #ops alice", Query{}, ErrProtocol},
		{"MSG #ops alice ", Query{}, ErrProtocol},
		{"MSG #ops", Query{}, ErrProtocol},
		{"MSG #ops al!ce hi", Query{}, ErrProtocol},
		{"MSG #ops alice hi\x1b", Query{}, ErrProtocol},
		{"MSG #o#ps alice hi", Query{}, ErrProtocol},
		{"MSG bob# alice hi", Query{}, ErrProtocol},

		// PUT: any word for a name, a password, an optional invite.
		{"PUT alice secret12", Query{Kind: KindPut, User: b("alice"), Password: b("secret12")}, nil},
		{"PUT alice secret12 Ab-_09xyz", Query{Kind: KindPut, User: b("alice"), Password: b("secret12"), Invite: b("Ab-_09xyz")}, nil},
		{"PUT alice secret12 QUJD==", Query{Kind: KindPut, User: b("alice"), Password: b("secret12"), Invite: b("QUJD==")}, nil},
		{"PUT bad!name pw", Query{Kind: KindPut, User: b("bad!name"), Password: b("pw")}, nil},
		{"PUT ålice pw", Query{Kind: KindPut, User: b("ålice"), Password: b("pw")}, nil},
		{"PUT " + strings.Repeat("n", 40) + " pw", Query{Kind: KindPut, User: b(strings.Repeat("n", 40)), Password: b("pw")}, nil},
		{"PUT alice pw " + strings.Repeat("i", 128), Query{Kind: KindPut, User: b("alice"), Password: b("pw"), Invite: b(strings.Repeat("i", 128))}, nil},
		{"PUT alice pw " + strings.Repeat("i", 129), Query{}, ErrProtocol},
		{"PUT alice pw a+b/", Query{}, ErrProtocol},
		{"PUT alice pw a.b", Query{}, ErrProtocol},
		{"PUT alice pw ===", Query{}, ErrProtocol},
		{"PUT alice pw a===", Query{}, ErrProtocol},
		{"PUT alice pw a=b", Query{}, ErrProtocol},
		{"PUT alice pw inv extra", Query{}, ErrProtocol},
		{"PUT alice", Query{}, ErrProtocol},
		{"PUT alice ", Query{}, ErrProtocol},
		{"PUT  alice pw", Query{}, ErrProtocol},
		{"PUT al\tice pw", Query{}, ErrProtocol},
		{"PUT alice p\tw", Query{}, ErrProtocol},
		{"PUT al\x01ice pw", Query{}, ErrProtocol},
		{"PUT alice " + strings.Repeat("p", 129), Query{}, ErrProtocol},
		{"PUT", Query{}, ErrProtocol},
	}
	for _, tt := range tests {
		got, err := ParseQuery([]byte(tt.line))
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseQuery(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if !sameQuery(got, tt.want) {
			t.Errorf("ParseQuery(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestNextName(t *testing.T) {
	q, err := ParseQuery([]byte("WATCH " + names(32)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for name, rest := NextName(q.Names); len(name) > 0; name, rest = NextName(rest) {
		got = append(got, string(name))
	}
	if len(got) != q.NameCount || strings.Join(got, " ") != names(32) {
		t.Errorf("walked %d names %q, want %d", len(got), got, q.NameCount)
	}
	if name, rest := NextName(nil); name != nil || rest != nil {
		t.Errorf("NextName(nil) = %q, %q", name, rest)
	}
}

func TestValidGroup(t *testing.T) {
	tests := []struct {
		group string
		ok    bool
	}{
		{"#a", true}, {"#ops", true}, {"#A.b-c_9", true}, {"#" + strings.Repeat("g", 32), true},
		{"#", false}, {"", false}, {"ops", false}, {"#" + strings.Repeat("g", 33), false},
		{"##", false}, {"#a b", false}, {"#a*", false}, {"#ä", false}, {"a#b", false},
	}
	for _, tt := range tests {
		if got := ValidGroup([]byte(tt.group)); got != tt.ok {
			t.Errorf("ValidGroup(%q) = %v", tt.group, got)
		}
		if got := ValidGroupString(tt.group); got != tt.ok {
			t.Errorf("ValidGroupString(%q) = %v", tt.group, got)
		}
	}
}

func TestGroupKey(t *testing.T) {
	tests := []struct{ group, key string }{
		{"#ops", "#ops"}, {"#Ops", "#ops"}, {"#TEAM.B-1_Z", "#team.b-1_z"}, {"#az09", "#az09"},
	}
	for _, tt := range tests {
		if got := GroupKey(tt.group); got != tt.key {
			t.Errorf("GroupKey(%q) = %q, want %q", tt.group, got, tt.key)
		}
		if got := string(AppendGroupKey([]byte("x"), []byte(tt.group))); got != "x"+tt.key {
			t.Errorf("AppendGroupKey(%q) = %q", tt.group, got)
		}
	}
	group, buf := []byte("#Ops.Team"), make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendGroupKey(buf[:0], group) }); n != 0 {
		t.Errorf("AppendGroupKey: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = GroupKey("#ops") }); n != 0 {
		t.Errorf("GroupKey of a lower-case name: %v allocations", n)
	}
}

func TestMasks(t *testing.T) {
	tests := []struct {
		mask  string
		valid bool
		match []string // names it matches among alice, al, bob, Alice
	}{
		{"*", true, []string{"alice", "al", "bob", "Alice"}},
		{"al*", true, []string{"alice", "al"}},
		{"alice*", true, []string{"alice"}},
		{"A*", true, []string{"Alice"}},
		{"alice", true, []string{"alice"}},
		{"#team", true, nil},
		{"", false, nil},
		{"a*b", false, nil},
		{"*a", false, nil},
		{"#", false, nil},
	}
	for _, tt := range tests {
		if got := ValidMask([]byte(tt.mask)); got != tt.valid {
			t.Errorf("ValidMask(%q) = %v", tt.mask, got)
		}
		if !tt.valid {
			continue
		}
		var got []string
		for _, name := range []string{"alice", "al", "bob", "Alice"} {
			if MatchMask([]byte(tt.mask), []byte(name)) {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.match, " ") {
			t.Errorf("MatchMask(%q) matches %q, want %q", tt.mask, got, tt.match)
		}
	}
}

func TestValidInvite(t *testing.T) {
	tests := []struct {
		invite string
		ok     bool
	}{
		{"a", true}, {"AZaz09-_", true}, {"QQ==", true}, {"QUI=", true}, {strings.Repeat("x", 128), true},
		{"", false}, {"=", false}, {"a===", false}, {"a=a", false}, {"a+b", false}, {"a/b", false},
		{"a.b", false}, {"a b", false}, {strings.Repeat("x", 129), false}, {strings.Repeat("x", 127) + "==", false},
	}
	for _, tt := range tests {
		if got := ValidInvite([]byte(tt.invite)); got != tt.ok {
			t.Errorf("ValidInvite(%q) = %v", tt.invite, got)
		}
	}
}

func TestKinds(t *testing.T) {
	// One line of each kind, parsed by the side that receives it.
	queries := map[Kind]string{
		KindAuth: "AUTH alice pw", KindMsg: "MSG bob alice hi", KindEnd: "END",
		KindHello: "HELLO 2", KindWho: "WHO *", KindWatch: "WATCH bob", KindUnwatch: "UNWATCH *",
		KindJoin: "JOIN #g", KindPart: "PART #g", KindGroupMsg: "MSG #g alice hi", KindPut: "PUT alice pw",
	}
	lines := map[Kind]string{
		KindAccept: "ACCEPT alice", KindRelay: "RELAY bob alice hi", KindCNT: "CNT <user not online>",
		KindCheck: "CHECK", KindEnd: "END <end accepted>", KindHello: "HELLO 2", KindFail: "FAIL WHO * <slow down>",
		KindPresence: "PRESENCE on bob", KindWho: "WHO * 0", KindJoin: "JOIN #g bob", KindPart: "PART #g bob",
		KindTry: "TRY <invalid name>",
	}
	for _, k := range ClientKinds() {
		q, err := ParseQuery([]byte(queries[k]))
		if err != nil || q.Kind != k {
			t.Errorf("client kind %v: %q parses as %v, %v", k, queries[k], q.Kind, err)
		}
		if word, _, _ := strings.Cut(queries[k], " "); word != k.String() {
			t.Errorf("%v: String() = %q, want %q", k, k.String(), word)
		}
	}
	if len(ClientKinds()) != len(queries) {
		t.Errorf("ClientKinds has %d kinds, want %d", len(ClientKinds()), len(queries))
	}
	for _, k := range ServerKinds() {
		sl, err := ParseServerLine([]byte(lines[k]))
		if err != nil || sl.Kind != k {
			t.Errorf("server kind %v: %q parses as %v, %v", k, lines[k], sl.Kind, err)
		}
		if word, _, _ := strings.Cut(lines[k], " "); word != k.String() {
			t.Errorf("%v: String() = %q, want %q", k, k.String(), word)
		}
	}
	if len(ServerKinds()) != len(lines) {
		t.Errorf("ServerKinds has %d kinds, want %d", len(ServerKinds()), len(lines))
	}
	for k := KindUnknown; k <= KindTry+1; k++ {
		want := 2
		switch {
		case k == KindUnknown || k > KindTry:
			want = 0
		case k <= KindCheck:
			want = 1
		}
		if got := k.Version(); got != want {
			t.Errorf("%v.Version() = %d, want %d", k, got, want)
		}
	}
	if KindTry+1 != Kind(len(kindNames)) || Kind(200).String() != "UNKNOWN" {
		t.Error("kindNames does not cover every kind")
	}
}

func TestParseServerLineV2(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		line string
		want ServerLine
		err  error
	}{
		// HELLO
		{"HELLO 2 presence=100 groups=20,500 signup=invite", ServerLine{Kind: KindHello, Version: 2, Features: b("presence=100 groups=20,500 signup=invite")}, nil},
		{"HELLO 1", ServerLine{Kind: KindHello, Version: 1}, nil},
		{"HELLO 3 e2e history=30", ServerLine{Kind: KindHello, Version: 3, Features: b("e2e history=30")}, nil},
		{"HELLO", ServerLine{}, ErrProtocol},
		{"HELLO 0", ServerLine{}, ErrProtocol},
		{"HELLO 02 presence=1", ServerLine{}, ErrProtocol},
		{"HELLO 1000", ServerLine{}, ErrProtocol},
		{"HELLO future", ServerLine{}, ErrProtocol},
		{"HELLO 2  presence=1", ServerLine{}, ErrProtocol},
		{"HELLO 2 presence=1  e2e", ServerLine{}, ErrProtocol},

		// CNT with and without a target
		{"CNT bob <user not online>", ServerLine{Kind: KindCNT, Target: b("bob"), Reason: b("user not online")}, nil},
		{"CNT #ops <user not online>", ServerLine{Kind: KindCNT, Target: b("#ops"), Reason: b("user not online")}, nil},
		{"CNT <user not online>", ServerLine{Kind: KindCNT, Reason: b("user not online")}, nil},
		{"CNT", ServerLine{Kind: KindCNT}, nil},
		{"CNT bob", ServerLine{Kind: KindCNT, Reason: b("bob")}, nil},

		// FAIL
		{"FAIL JOIN #ops <not allowed>", ServerLine{Kind: KindFail, Verb: b("JOIN"), Subject: b("#ops"), Reason: b("not allowed")}, nil},
		{"FAIL WATCH bob <watch list full>", ServerLine{Kind: KindFail, Verb: b("WATCH"), Subject: b("bob"), Reason: b("watch list full")}, nil},
		{"FAIL WHO al* <slow down>", ServerLine{Kind: KindFail, Verb: b("WHO"), Subject: b("al*"), Reason: b("slow down")}, nil},
		{"FAIL HISTORY bob <not enabled>", ServerLine{Kind: KindFail, Verb: b("HISTORY"), Subject: b("bob"), Reason: b("not enabled")}, nil},
		{"FAIL JOIN #ops not allowed", ServerLine{}, ErrProtocol},
		{"FAIL JOIN #ops", ServerLine{}, ErrProtocol},
		{"FAIL JOIN", ServerLine{}, ErrProtocol},
		{"FAIL", ServerLine{}, ErrProtocol},
		{"FAIL  #ops <x>", ServerLine{}, ErrProtocol},
		{"FAIL JOIN  <x>", ServerLine{}, ErrProtocol},
		{"FAIL JOIN #ops <", ServerLine{}, ErrProtocol},

		// PRESENCE
		{"PRESENCE on bob", ServerLine{Kind: KindPresence, On: true, Names: b("bob")}, nil},
		{"PRESENCE off bob carol", ServerLine{Kind: KindPresence, Names: b("bob carol")}, nil},
		{"PRESENCE on", ServerLine{}, ErrProtocol},
		{"PRESENCE maybe bob", ServerLine{}, ErrProtocol},
		{"PRESENCE On bob", ServerLine{}, ErrProtocol},
		{"PRESENCE on bob  carol", ServerLine{}, ErrProtocol},
		{"PRESENCE", ServerLine{}, ErrProtocol},

		// WHO
		{"WHO * 3 alice bob carol", ServerLine{Kind: KindWho, Mask: b("*"), Count: 3, Names: b("alice bob carol")}, nil},
		{"WHO al* 250 al alice", ServerLine{Kind: KindWho, Mask: b("al*"), Count: 250, Names: b("al alice")}, nil},
		{"WHO #ops 0", ServerLine{Kind: KindWho, Mask: b("#ops"), Count: 0}, nil},
		{"WHO * 1 a b", ServerLine{}, ErrProtocol},
		{"WHO * 01 a", ServerLine{}, ErrProtocol},
		{"WHO * -1", ServerLine{}, ErrProtocol},
		{"WHO * many", ServerLine{}, ErrProtocol},
		{"WHO * 1234567890", ServerLine{}, ErrProtocol},
		{"WHO *", ServerLine{}, ErrProtocol},
		{"WHO", ServerLine{}, ErrProtocol},
		{"WHO  1", ServerLine{}, ErrProtocol},
		{"WHO * 2 a  b", ServerLine{}, ErrProtocol},

		// JOIN and PART
		{"JOIN #ops bob", ServerLine{Kind: KindJoin, Group: b("#ops"), User: b("bob")}, nil},
		{"PART #Ops bob", ServerLine{Kind: KindPart, Group: b("#Ops"), User: b("bob")}, nil},
		{"JOIN #ops", ServerLine{}, ErrProtocol},
		{"JOIN ops bob", ServerLine{}, ErrProtocol},
		{"JOIN # bob", ServerLine{}, ErrProtocol},
		{"PART #ops bob carol", ServerLine{}, ErrProtocol},
		{"PART #ops ", ServerLine{}, ErrProtocol},

		// TRY
		{"TRY <username already taken>", ServerLine{Kind: KindTry, Reason: b("username already taken")}, nil},
		{"TRY <invalid invite>", ServerLine{Kind: KindTry, Reason: b("invalid invite")}, nil},
		{"TRY", ServerLine{}, ErrProtocol},

		// RELAY from a group, and notices.
		{"RELAY #ops alice hi all", ServerLine{Kind: KindRelay, Target: b("#ops"), Sender: b("alice"), Text: b("hi all")}, nil},
		{"RELAY alice server maintenance at noon", ServerLine{Kind: KindRelay, Target: b("alice"), Sender: b("server"), Text: b("maintenance at noon")}, nil},

		// Unknown words of later versions.
		{"HISTORY bob 3", ServerLine{Kind: KindUnknown}, nil},
		{"KEY bob abc", ServerLine{Kind: KindUnknown}, nil},
	}
	for _, tt := range tests {
		got, err := ParseServerLine([]byte(tt.line))
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseServerLine(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if !sameServerLine(got, tt.want) {
			t.Errorf("ParseServerLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		features string
		want     Features
		err      error
	}{
		{"presence=100 groups=20,500 signup=invite", Features{Presence: 100, Groups: 20, Members: 500, Signup: SignupInvite}, nil},
		{"signup=open", Features{Signup: SignupOpen}, nil},
		{"", Features{}, nil},
		{"e2e history=30 presence=5", Features{Presence: 5}, nil},
		{"groups=1,1", Features{Groups: 1, Members: 1}, nil},
		{"x=presence=1", Features{}, nil},
		{"=5", Features{}, nil},
		{"presence=0", Features{}, ErrProtocol},
		{"presence=", Features{}, ErrProtocol},
		{"presence", Features{}, ErrProtocol},
		{"presence=01", Features{}, ErrProtocol},
		{"presence=1000000000", Features{}, ErrProtocol},
		{"presence=1 presence=2", Features{}, ErrProtocol},
		{"groups=20", Features{}, ErrProtocol},
		{"groups=20,", Features{}, ErrProtocol},
		{"groups=,5", Features{}, ErrProtocol},
		{"groups=0,5", Features{}, ErrProtocol},
		{"groups=2,5,7", Features{}, ErrProtocol},
		{"signup=paid", Features{}, ErrProtocol},
		{"signup", Features{}, ErrProtocol},
		{"signup=open  e2e", Features{}, ErrProtocol},
		{" signup=open", Features{}, ErrProtocol},
		{"signup=open ", Features{}, ErrProtocol},
	}
	for _, tt := range tests {
		got, err := ParseFeatures([]byte(tt.features))
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("ParseFeatures(%q) = %+v, %v; want %+v, %v", tt.features, got, err, tt.want, tt.err)
		}
	}
}

func TestNextFeature(t *testing.T) {
	var got []string
	for name, value, rest := NextFeature([]byte("presence=100 e2e groups=2,3")); len(name) > 0; name, value, rest = NextFeature(rest) {
		got = append(got, string(name)+"|"+string(value)+"|"+map[bool]string{true: "nil", false: "set"}[value == nil])
	}
	want := "presence|100|set e2e||nil groups|2,3|set"
	if strings.Join(got, " ") != want {
		t.Errorf("features walked as %q, want %q", strings.Join(got, " "), want)
	}
}

func TestFormatV2(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	full := Features{Presence: 100, Groups: 20, Members: 500, Signup: SignupInvite}
	tests := []struct{ got, want string }{
		{string(AppendHello(nil, 2, full)), "HELLO 2 presence=100 groups=20,500 signup=invite \r\n"},
		{string(AppendHello(nil, 2, Features{Signup: SignupOpen})), "HELLO 2 signup=open \r\n"},
		{string(AppendHello(nil, 1, Features{})), "HELLO 1 \r\n"},
		{string(AppendCNTTo(nil, b("bob"))), "CNT bob <user not online> \r\n"},
		{string(AppendFail(nil, KindJoin.String(), "#ops", ReasonNotAllowed)), "FAIL JOIN #ops <not allowed> \r\n"},
		{string(AppendFail(nil, KindGroupMsg.String(), "#ops", ReasonNotMember)), "FAIL MSG #ops <not a member> \r\n"},
		{string(AppendPresence(nil, true, []string{"bob", "carol"})), "PRESENCE on bob carol \r\n"},
		{string(AppendPresence(nil, false, []string{"bob"})), "PRESENCE off bob \r\n"},
		{string(AppendWho(nil, "al*", 250, []string{"al", "alice"})), "WHO al* 250 al alice \r\n"},
		{string(AppendWho(nil, "#ops", 0, nil)), "WHO #ops 0 \r\n"},
		{string(AppendJoin(nil, "#ops", "bob")), "JOIN #ops bob \r\n"},
		{string(AppendPart(nil, "#ops", "bob")), "PART #ops bob \r\n"},
		{string(AppendTry(nil, ReasonNameTaken)), "TRY <username already taken> \r\n"},
		{string(AppendRelay(nil, b("#ops"), b("alice"), b("hi all"))), "RELAY #ops alice hi all \r\n"},
		{string(AppendEnd(nil, ReasonKicked, false)), "END <kicked> \r\n"},
		{string(AppendEnd(nil, ReasonBanned, false)), "END <banned> \r\n"},

		{string(AppendHelloQuery(nil, 2)), "HELLO 2\r\n"},
		{string(AppendWhoQuery(nil, "al*")), "WHO al*\r\n"},
		{string(AppendWatch(nil, []string{"bob", "carol"})), "WATCH bob carol\r\n"},
		{string(AppendUnwatch(nil, []string{"bob"})), "UNWATCH bob\r\n"},
		{string(AppendUnwatch(nil, []string{"*"})), "UNWATCH *\r\n"},
		{string(AppendJoinQuery(nil, "#ops")), "JOIN #ops\r\n"},
		{string(AppendPartQuery(nil, "#ops")), "PART #ops\r\n"},
		{string(AppendPut(nil, "alice", "secret12", "")), "PUT alice secret12\r\n"},
		{string(AppendPut(nil, "alice", "secret12", "inv1")), "PUT alice secret12 inv1\r\n"},
		{string(AppendMsg(nil, "#ops", "alice", "hi")), "MSG #ops alice hi\r\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if n, line := RelayLen(b("#ops"), b("alice"), b("xyz")), AppendRelay(nil, b("#ops"), b("alice"), b("xyz")); n != len(line) {
		t.Errorf("RelayLen = %d, want %d", n, len(line))
	}
}

// TestServerLineRoundTrip formats every server line of version 2 and
// parses it back.
func TestServerLineRoundTrip(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	full := Features{Presence: 100, Groups: 20, Members: 500, Signup: SignupInvite}
	tests := []struct {
		line []byte
		want ServerLine
	}{
		{AppendHello(nil, 2, full), ServerLine{Kind: KindHello, Version: 2, Features: b("presence=100 groups=20,500 signup=invite")}},
		{AppendHello(nil, 1, Features{}), ServerLine{Kind: KindHello, Version: 1}},
		{AppendCNTTo(nil, b("bob")), ServerLine{Kind: KindCNT, Target: b("bob"), Reason: b(ReasonNotOnline)}},
		{AppendCNT(nil), ServerLine{Kind: KindCNT, Reason: b(ReasonNotOnline)}},
		{AppendFail(nil, "WATCH", "bob", ReasonWatchListFull), ServerLine{Kind: KindFail, Verb: b("WATCH"), Subject: b("bob"), Reason: b(ReasonWatchListFull)}},
		{AppendPresence(nil, true, []string{"a", "b"}), ServerLine{Kind: KindPresence, On: true, Names: b("a b")}},
		{AppendPresence(nil, false, []string{"a"}), ServerLine{Kind: KindPresence, Names: b("a")}},
		{AppendWho(nil, "*", 2, []string{"a", "b"}), ServerLine{Kind: KindWho, Mask: b("*"), Count: 2, Names: b("a b")}},
		{AppendWho(nil, "#g", 0, nil), ServerLine{Kind: KindWho, Mask: b("#g"), Count: 0}},
		{AppendJoin(nil, "#g", "bob"), ServerLine{Kind: KindJoin, Group: b("#g"), User: b("bob")}},
		{AppendPart(nil, "#g", "bob"), ServerLine{Kind: KindPart, Group: b("#g"), User: b("bob")}},
		{AppendTry(nil, ReasonPasswordTooShort), ServerLine{Kind: KindTry, Reason: b(ReasonPasswordTooShort)}},
		{AppendRelay(nil, b("#g"), b("alice"), b("hi")), ServerLine{Kind: KindRelay, Target: b("#g"), Sender: b("alice"), Text: b("hi")}},
		{AppendEnd(nil, ReasonAlreadyOnline, false), ServerLine{Kind: KindEnd, Reason: b(ReasonAlreadyOnline)}},
	}
	for _, tt := range tests {
		got, err := ParseServerLine(TrimLine(tt.line))
		if err != nil || !sameServerLine(got, tt.want) {
			t.Errorf("%q parses as %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
	sl, _ := ParseServerLine(TrimLine(AppendHello(nil, 2, full)))
	if f, err := ParseFeatures(sl.Features); err != nil || f != full {
		t.Errorf("features came back as %+v, %v; want %+v", f, err, full)
	}
}

// TestQueryRoundTrip formats every client query of version 2 and parses
// it back.
func TestQueryRoundTrip(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		line []byte
		want Query
	}{
		{AppendHelloQuery(nil, 2), Query{Kind: KindHello, Version: 2}},
		{AppendWhoQuery(nil, "al*"), Query{Kind: KindWho, Mask: b("al*")}},
		{AppendWatch(nil, []string{"bob", "carol"}), Query{Kind: KindWatch, Names: b("bob carol"), NameCount: 2}},
		{AppendUnwatch(nil, []string{"bob"}), Query{Kind: KindUnwatch, Names: b("bob"), NameCount: 1}},
		{AppendUnwatch(nil, []string{"*"}), Query{Kind: KindUnwatch, All: true}},
		{AppendJoinQuery(nil, "#g"), Query{Kind: KindJoin, Group: b("#g")}},
		{AppendPartQuery(nil, "#g"), Query{Kind: KindPart, Group: b("#g")}},
		{AppendMsg(nil, "#g", "alice", "hi there"), Query{Kind: KindGroupMsg, Target: b("#g"), Sender: b("alice"), Text: b("hi there")}},
		{AppendPut(nil, "alice", "secret12", ""), Query{Kind: KindPut, User: b("alice"), Password: b("secret12")}},
		{AppendPut(nil, "alice", "secret12", "inv"), Query{Kind: KindPut, User: b("alice"), Password: b("secret12"), Invite: b("inv")}},
	}
	for _, tt := range tests {
		got, err := ParseQuery(TrimLine(tt.line))
		if err != nil || !sameQuery(got, tt.want) {
			t.Errorf("%q parses as %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

// TestAllocations checks that the parsers and the formatters of the busy
// paths do not allocate.
func TestAllocations(t *testing.T) {
	queries := []string{
		"MSG bob alice hello there", "MSG #ops alice hello there", "WATCH " + names(32),
		"UNWATCH *", "WHO al*", "JOIN #ops", "HELLO 2", "PUT alice secret12 inv",
	}
	for _, q := range queries {
		line := []byte(q)
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseQuery(line) }); n != 0 {
			t.Errorf("ParseQuery(%q): %v allocations", q, n)
		}
	}
	lines := []string{
		"RELAY bob alice hi", "CNT bob <user not online>", "PRESENCE on a b c", "WHO * 3 a b c",
		"HELLO 2 presence=100 groups=20,500 signup=invite", "FAIL JOIN #ops <not allowed>",
	}
	for _, l := range lines {
		line := []byte(l)
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseServerLine(line) }); n != 0 {
			t.Errorf("ParseServerLine(%q): %v allocations", l, n)
		}
	}
	features := []byte("presence=100 groups=20,500 signup=invite e2e")
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseFeatures(features) }); n != 0 {
		t.Errorf("ParseFeatures: %v allocations", n)
	}
	buf := make([]byte, 0, 256)
	target, sender, text := []byte("#ops"), []byte("alice"), []byte("hello there")
	if n := testing.AllocsPerRun(100, func() { buf = AppendRelay(buf[:0], target, sender, text) }); n != 0 {
		t.Errorf("AppendRelay: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendCNTTo(buf[:0], target) }); n != 0 {
		t.Errorf("AppendCNTTo: %v allocations", n)
	}
}
