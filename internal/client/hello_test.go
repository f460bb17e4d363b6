package client

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// TestHelloThenSharedWrites: HELLO goes alone, in a write of its own, and
// nothing follows it before the answer; after a version-2 answer the
// queries of one Flush share a write.
func TestHelloThenSharedWrites(t *testing.T) {
	c, s := newScripted(t, Options{})
	done := make(chan error, 1)
	go func() { done <- c.hello(context.Background(), 2) }()
	s.expect("HELLO 2 \r\n")
	select {
	case w := <-s.writes:
		t.Fatalf("the client wrote %q before HELLO was answered", w)
	case <-time.After(50 * time.Millisecond):
	}
	s.write("CHECK \r\n", "HELLO 2 presence=5 groups=3,9 signup=invite future=1 \r\n")
	if err := <-done; err != nil {
		t.Fatalf("hello: %v", err)
	}
	want := protocol.Features{Presence: 5, Groups: 3, Members: 9, Signup: protocol.SignupInvite}
	if c.Version() != 2 || c.Features() != want {
		t.Fatalf("version %d features %+v, want 2 and %+v", c.Version(), c.Features(), want)
	}
	login(t, c, s)
	for _, to := range []string{"bob", "#team", "carol"} {
		if err := c.Queue(to, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Watch("bob"); err != nil {
		t.Fatal(err)
	}
	s.expect("MSG bob alice hi \r\nMSG #team alice hi \r\nMSG carol alice hi \r\nWATCH bob \r\n")
}

// TestHelloAnswers: what a server may answer HELLO with.
func TestHelloAnswers(t *testing.T) {
	tests := []struct {
		name     string
		answer   string
		version  int
		features protocol.Features
		err      error
	}{
		{"version 2, nothing offered", "HELLO 2 \r\n", 2, protocol.Features{}, nil},
		{"version 1", "HELLO 1 \r\n", 1, protocol.Features{}, nil},
		{"a later version than asked", "HELLO 3 presence=1 \r\n", 2, protocol.Features{Presence: 1}, nil},
		{"a feature in a wrong form", "HELLO 2 presence=0 groups=2,2 \r\n", 2, protocol.Features{}, nil},
		{"unknown to the server", "END * <incorrect protocol> \r\n", 0, protocol.Features{}, errNoHello},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newScripted(t, Options{})
			s.write("NEWS from the future \r\n", tt.answer)
			err := c.hello(context.Background(), 2)
			if !errors.Is(err, tt.err) {
				t.Fatalf("hello: %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if c.Version() != tt.version || c.Features() != tt.features {
				t.Errorf("version %d features %+v, want %d and %+v", c.Version(), c.Features(), tt.version, tt.features)
			}
			c.wmu.Lock()
			shared := c.shared
			c.wmu.Unlock()
			if shared != (tt.version >= 2) {
				t.Errorf("shared writes %v after %q", shared, tt.answer)
			}
		})
	}

	// Any other END is the server refusing the connection.
	c, s := newScripted(t, Options{})
	s.write("END <server full> \r\n")
	var end *EndError
	if err := c.hello(context.Background(), 2); !errors.As(err, &end) || end.Reason != protocol.ReasonServerFull || !Retryable(err) {
		t.Fatalf("hello answered END <server full>: %v", err)
	}
}

// TestReceiveEventsV2: the lines of version 2 become typed events.
func TestReceiveEventsV2(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 4, 0, 0, time.UTC)
	c, s := newScripted(t, Options{Now: func() time.Time { return now }})
	login(t, c, s)
	c.wmu.Lock()
	c.lastTarget = "carol"
	c.wmu.Unlock()
	s.write(
		"RELAY #Team bob hello all \r\n",
		"CNT dave <user not online> \r\n",
		"FAIL JOIN #ops <not allowed> \r\n",
		"PRESENCE on bob carol \r\n",
		"PRESENCE off dave \r\n",
		"WHO al* 150 albert alice \r\n",
		"WHO #none 0 \r\n",
		"JOIN #Team bob \r\n",
		"PART #Team bob \r\n",
		"FAIL broken \r\n",
		"PRESENCE maybe bob \r\n",
		"TRY <invalid name> \r\n",
		"RELAY alice server maintenance at noon \r\n",
		"END <kicked> \r\n",
	)
	want := []Event{
		Relay{From: "bob", To: "#Team", Text: "hello all", Group: "#Team", Time: now},
		NotOnline{Target: "dave", LastTarget: "carol", Time: now},
		Fail{Verb: "JOIN", Subject: "#ops", Reason: protocol.ReasonNotAllowed, Time: now},
		Presence{On: true, Names: []string{"bob", "carol"}, Time: now},
		Presence{On: false, Names: []string{"dave"}, Time: now},
		Who{Mask: "al*", Count: 150, Names: []string{"albert", "alice"}, Time: now},
		Who{Mask: "#none", Count: 0, Time: now},
		GroupJoin{Group: "#Team", User: "bob", Time: now},
		GroupPart{Group: "#Team", User: "bob", Time: now},
		Relay{From: "server", To: "alice", Text: "maintenance at noon", Time: now},
		End{Reason: protocol.ReasonKicked},
	}
	for i, w := range want {
		ev, err := c.Receive()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !reflect.DeepEqual(ev, w) {
			t.Errorf("event %d = %#v, want %#v", i, ev, w)
		}
	}
	if c.Ignored() != 3 {
		t.Errorf("%d lines ignored, want 3", c.Ignored())
	}
	if got := want[5].(Who).More(); got != 148 {
		t.Errorf("More() = %d, want 148", got)
	}
}

func TestFailText(t *testing.T) {
	for _, tt := range []struct {
		fail Fail
		want string
	}{
		{Fail{Verb: "JOIN", Subject: "#ops", Reason: "not allowed"}, "cannot join #ops: not allowed"},
		{Fail{Verb: "PART", Subject: "#ops", Reason: "not a member"}, "cannot leave #ops: not a member"},
		{Fail{Verb: "MSG", Subject: "#ops", Reason: "not a member"}, "message to #ops not delivered: not a member"},
		{Fail{Verb: "WATCH", Subject: "dave", Reason: "watch list full"}, "cannot watch dave: watch list full"},
		{Fail{Verb: "WHO", Subject: "*", Reason: "slow down"}, "cannot list who is online (*): slow down"},
		{Fail{Verb: "NEW\x1b", Subject: "x\x1b[2J", Reason: "why\x07"}, `the server refused NEW\x1b x\x1b[2J: why\x07`},
	} {
		if got := tt.fail.Text(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.fail, got, tt.want)
		}
	}
}
