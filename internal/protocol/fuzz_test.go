package protocol

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"AUTH alice pw", "MSG bob alice hello there", "END", "END bye", "MSG bob alice \t", "AUTH a b c",
		"MSG bob alice hi\x1b[2J", "MSG b\xffb alice x", "RELAY a b c", "", " ", "MSG  a b c",
		// Version 2.
		"HELLO 2", "HELLO 999", "HELLO 0", "HELLO 01", "HELLO 1000", "WHO *", "WHO al*", "WHO #team", "WHO bob",
		"WATCH bob carol", "WATCH " + names(32), "WATCH " + names(33), "UNWATCH *", "UNWATCH bob", "UNWATCH * bob",
		"JOIN #ops", "PART #ops", "JOIN #", "JOIN #" + strings.Repeat("g", 33), "MSG #ops alice hi all", "MSG # text",
		"PUT alice secret12", "PUT alice secret12 QUJD==", "PUT b@d pw", "PUT alice pw a+b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// The server parses lines that the Reader split and TrimLine
		// trimmed.
		line = TrimLine(line)
		q, err := ParseQuery(line)

		// The server's fast path agrees with ParseQuery on every line.
		target, sender, text, ok := ParseMsg(line)
		if ok != (err == nil && q.Kind == KindMsg) ||
			ok && (!bytes.Equal(target, q.Target) || !bytes.Equal(sender, q.Sender) || !bytes.Equal(text, q.Text)) {
			t.Fatalf("%q: ParseMsg says %v (%q %q %q), ParseQuery %+v, %v", line, ok, target, sender, text, q, err)
		}

		// A version-1 session sees no change: every line version 1 knew
		// parses as before, and every other line is refused or has a
		// Kind of version 2, which such a session refuses.
		q1, err1 := parseQueryV1(line)
		switch {
		case err1 == nil && (err != nil || !sameQuery(q, q1)):
			t.Fatalf("version-1 line %q now parses as %+v, %v; was %+v", line, q, err, q1)
		case err1 != nil && err == nil && q.Kind.Version() != 2:
			t.Fatalf("line %q refused by version 1 parses as %v", line, q.Kind)
		}
		if err != nil {
			return
		}
		if !ValidText(line) {
			t.Fatalf("accepted invalid text %q", line)
		}
		// Round trip: formatting a parsed query gives back the line.
		var got []byte
		switch q.Kind {
		case KindAuth:
			got = AppendAuth(nil, string(q.User), string(q.Password))
		case KindMsg, KindGroupMsg:
			if (q.Kind == KindGroupMsg) != ValidGroup(q.Target) {
				t.Fatalf("%q: kind %v with target %q", line, q.Kind, q.Target)
			}
			got = AppendMsg(nil, string(q.Target), string(q.Sender), string(q.Text))
			relay := AppendRelay(nil, q.Target, q.Sender, q.Text)
			if len(relay) != RelayLen(q.Target, q.Sender, q.Text) {
				t.Fatalf("RelayLen wrong for %q", line)
			}
			sl, err := ParseServerLine(TrimLine(relay))
			if err != nil || sl.Kind != KindRelay || !bytes.Equal(sl.Target, q.Target) || !bytes.Equal(sl.Sender, q.Sender) {
				t.Fatalf("relay of %q does not parse back: %+v %v", line, sl, err)
			}
			if !bytes.Equal(sl.Text, TrimLine(q.Text)) {
				t.Fatalf("relay text %q, want %q", sl.Text, TrimLine(q.Text))
			}
		case KindEnd:
			return
		case KindHello:
			got = AppendHelloQuery(nil, q.Version)
		case KindWho:
			got = AppendWhoQuery(nil, string(q.Mask))
		case KindWatch:
			got = AppendWatch(nil, walkNames(t, q.Names, q.NameCount))
		case KindUnwatch:
			if q.All {
				got = AppendUnwatch(nil, []string{"*"})
			} else {
				got = AppendUnwatch(nil, walkNames(t, q.Names, q.NameCount))
			}
		case KindJoin:
			got = AppendJoinQuery(nil, string(q.Group))
		case KindPart:
			got = AppendPartQuery(nil, string(q.Group))
		case KindPut:
			got = AppendPut(nil, string(q.User), string(q.Password), string(q.Invite))
		default:
			t.Fatalf("unexpected kind %v", q.Kind)
		}
		if got = TrimLine(got); !bytes.Equal(got, line) {
			t.Fatalf("round trip %q -> %q", line, got)
		}
	})
}

// walkNames walks a parsed WATCH or UNWATCH list and checks its count and
// names.
func walkNames(t *testing.T, list []byte, count int) []string {
	var out []string
	for name, rest := NextName(list); len(name) > 0; name, rest = NextName(rest) {
		if !ValidName(name) {
			t.Fatalf("invalid name %q in %q", name, list)
		}
		out = append(out, string(name))
	}
	if len(out) != count || count < 1 || count > MaxWatchNames {
		t.Fatalf("%d names in %q, NameCount %d", len(out), list, count)
	}
	return out
}

// FuzzParseServerLine checks that a client's parser never panics, that
// the lines of version 1 parse as they did, and that formatting a parsed
// line and parsing it again gives the same fields.
func FuzzParseServerLine(f *testing.F) {
	for _, s := range []string{
		"ACCEPT alice", "RELAY bob alice hi", "CNT <user not online>", "CHECK", "END * <line too long>", "END *", "NEW thing",
		// Version 2.
		"HELLO 2 presence=100 groups=20,500 signup=invite", "HELLO 1", "HELLO 3 e2e", "HELLO 0", "CNT bob <user not online>",
		"FAIL JOIN #ops <not allowed>", "FAIL WHO al* <slow down>", "PRESENCE on bob carol", "PRESENCE off bob",
		"WHO * 3 alice bob carol", "WHO #ops 0", "WHO * 1 a b", "JOIN #ops bob", "PART #ops bob", "TRY <invalid name>",
		"RELAY #ops alice hi", "END <kicked>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = TrimLine(line)
		sl, err := ParseServerLine(line)
		sl1, err1 := parseServerLineV1(line)
		switch {
		case err1 != nil && err == nil:
			t.Fatalf("%q refused by version 1 parses as %+v", line, sl)
		case err1 != nil:
		case sl1.Kind == KindUnknown:
			if err == nil && sl.Kind != KindUnknown && sl.Kind.Version() != 2 {
				t.Fatalf("%q unknown to version 1 parses as %v", line, sl.Kind)
			}
		case sl1.Kind == KindCNT:
			// The reason of a version-1 CNT may now have a target before it.
			if err != nil || sl.Kind != KindCNT || (sl.Target == nil && !bytes.Equal(sl.Reason, sl1.Reason)) {
				t.Fatalf("version-1 CNT %q now parses as %+v, %v", line, sl, err)
			}
		case err != nil || !sameServerLine(sl, sl1):
			t.Fatalf("version-1 line %q now parses as %+v, %v; was %+v", line, sl, err, sl1)
		}
		if err != nil {
			return
		}
		var got []byte
		switch sl.Kind {
		case KindAccept:
			got = AppendAccept(nil, string(sl.User))
		case KindRelay:
			got = AppendRelay(nil, sl.Target, sl.Sender, sl.Text)
		case KindCNT:
			switch {
			case string(sl.Reason) != ReasonNotOnline:
				return // only the not-online reason can be formatted
			case sl.Target == nil:
				got = AppendCNT(nil)
			default:
				got = AppendCNTTo(nil, sl.Target)
			}
		case KindCheck:
			got = AppendCheck(nil)
		case KindEnd:
			got = AppendEnd(nil, string(sl.Reason), sl.ProtocolError)
		case KindHello:
			features, err := ParseFeatures(sl.Features)
			if err != nil {
				return
			}
			got = AppendHello(nil, sl.Version, features)
			again, err := ParseServerLine(TrimLine(got))
			if err != nil || again.Kind != KindHello || again.Version != sl.Version {
				t.Fatalf("%q -> %q -> %+v, %v", line, got, again, err)
			}
			if f, err := ParseFeatures(again.Features); err != nil || f != features {
				t.Fatalf("%q: features %+v came back as %+v, %v", line, features, f, err)
			}
			return
		case KindFail:
			got = AppendFail(nil, string(sl.Verb), string(sl.Subject), string(sl.Reason))
		case KindPresence:
			got = AppendPresence(nil, sl.On, splitNames(sl.Names))
		case KindWho:
			got = AppendWho(nil, string(sl.Mask), sl.Count, splitNames(sl.Names))
		case KindJoin:
			got = AppendJoin(nil, string(sl.Group), string(sl.User))
		case KindPart:
			got = AppendPart(nil, string(sl.Group), string(sl.User))
		case KindTry:
			got = AppendTry(nil, string(sl.Reason))
		case KindUnknown:
			return
		default:
			t.Fatalf("unexpected kind %v", sl.Kind)
		}
		again, err := ParseServerLine(TrimLine(got))
		if err != nil || !sameServerLine(again, sl) {
			t.Fatalf("%q parsed as %+v; formatted %q parses as %+v, %v", line, sl, got, again, err)
		}
	})
}

func splitNames(list []byte) []string {
	var out []string
	for name, rest := NextName(list); len(name) > 0; name, rest = NextName(rest) {
		out = append(out, string(name))
	}
	return out
}

// FuzzFeatures checks the features of HELLO: parsing never panics, what
// parses formats and parses back the same, and what is formatted from any
// Features the parser accepts is what the parser gives.
func FuzzFeatures(f *testing.F) {
	for _, s := range []string{
		"presence=100 groups=20,500 signup=invite", "signup=open", "", "e2e history=30 presence=5",
		"presence=0", "groups=2,5,7", "signup=paid", "presence=1 presence=2", "groups=20,", "a  b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, features []byte) {
		got, err := ParseFeatures(features)
		if err != nil {
			return
		}
		if _, ok := words(features); !ok && len(features) > 0 {
			t.Fatalf("accepted %q, which is not words", features)
		}
		if (got.Groups == 0) != (got.Members == 0) || got.Presence < 0 || got.Groups < 0 {
			t.Fatalf("%q gives %+v", features, got)
		}
		if got.Signup != "" && got.Signup != SignupOpen && got.Signup != SignupInvite {
			t.Fatalf("%q gives signup %q", features, got.Signup)
		}
		line := AppendHello(nil, Version, got)
		sl, err := ParseServerLine(TrimLine(line))
		if err != nil || sl.Kind != KindHello || sl.Version != Version {
			t.Fatalf("%q: HELLO line %q parses as %+v, %v", features, line, sl, err)
		}
		again, err := ParseFeatures(sl.Features)
		if err != nil || again != got {
			t.Fatalf("%q gives %+v; %q gives %+v, %v", features, got, sl.Features, again, err)
		}
		// Every known feature the walk finds is reflected in the result.
		for name, _, rest := NextFeature(features); len(name) > 0 || len(rest) > 0; name, _, rest = NextFeature(rest) {
			switch string(name) {
			case "presence":
				if got.Presence == 0 {
					t.Fatalf("%q: presence lost", features)
				}
			case "groups":
				if got.Groups == 0 {
					t.Fatalf("%q: groups lost", features)
				}
			case "signup":
				if got.Signup == "" {
					t.Fatalf("%q: signup lost", features)
				}
			}
		}
	})
}

// FuzzReader splits the input across two reads, as a network delivers it,
// and checks the lines are the same as from one read, no line is over the
// limit, and the buffer never grows past its bound.
func FuzzReader(f *testing.F) {
	f.Add([]byte("AUTH alice pw\r\nMSG bob alice hi\n"), uint16(5))
	f.Add([]byte("a\nb\nc"), uint16(1))
	f.Add(bytes.Repeat([]byte("x"), 5000), uint16(4095))
	f.Add([]byte("\n\n\n"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		const limit = 64
		whole := collect(NewReader(bytes.NewReader(data), limit), limit, t)
		at := int(cut) % (len(data) + 1)
		split := collect(NewReader(io.MultiReader(bytes.NewReader(data[:at]), bytes.NewReader(data[at:])), limit), limit, t)
		if whole != split {
			t.Fatalf("split at %d changed the lines:\n%q\n%q", at, whole, split)
		}
	})
}

func collect(r *Reader, limit int, t *testing.T) string {
	var out bytes.Buffer
	for {
		line, err := r.ReadLine()
		if len(r.buf) > largeBuffer {
			t.Fatalf("buffer grew to %d", len(r.buf))
		}
		if err == ErrLineTooLong {
			out.WriteString("<too long>")
			return out.String()
		}
		if err != nil {
			return out.String()
		}
		if len(line) > limit {
			t.Fatalf("line of %d bytes over limit %d", len(line), limit)
		}
		out.Write(line)
		out.WriteByte('|')
	}
}

// FuzzValidText compares ValidText with a plain rune-by-rune check.
func FuzzValidText(f *testing.F) {
	f.Add([]byte("hello, world\tand more text"))
	f.Add([]byte("héllo\u0085 \x1b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := utf8.Valid(b)
		for _, r := range string(b) {
			if (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) {
				want = false
			}
		}
		if got := ValidText(b); got != want {
			t.Fatalf("ValidText(%q) = %v, want %v", b, got, want)
		}
	})
}
