package admin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/messager/messager/internal/bans"
	"github.com/messager/messager/internal/protocol"
)

// The admin server checks every argument with these before it calls the
// Controller; the admin command checks them too, to tell a mistake as a
// usage error before it connects.

// Limits of the arguments of requests.
const (
	// MaxReasonLen is the longest reason of a kick or a ban, in bytes: a
	// ban's must fit in the bans file.
	MaxReasonLen = bans.MaxReasonLen
	// MaxInviteIDLen is the longest invite ID, in bytes.
	MaxInviteIDLen = 128
	// MaxInviteUses is the most sign-ups one invite may allow.
	MaxInviteUses = 1_000_000
)

// MaxNoticeLen is the longest notice text, in bytes: what fits in the
// RELAY line that carries it to a member of the longest group name.
var MaxNoticeLen = protocol.MaxServerLine - protocol.RelayLen(make([]byte, 1+protocol.MaxGroupLen), []byte(protocol.NoticeSender), nil)

// CheckUser checks a user name.
func CheckUser(name string) error {
	if !protocol.ValidNameString(name) {
		return fmt.Errorf("invalid user name %q: want 1 to %d of A-Z a-z 0-9 _ . -", name, protocol.MaxNameLen)
	}
	return nil
}

// ParseTarget parses the target of a ban as the bans file writes it (see
// package bans): a user name, "user:" and a user name that looks like an
// address, an address (IPv4 or IPv6, without a zone), or a network
// ADDRESS/BITS without bits set past its length. It returns the target in
// canonical form, as the Controller gets it: an IPv4-mapped address as
// IPv4, a network of one address as that address, a user whose name looks
// like an address with its "user:".
func ParseTarget(s string) (target string, user bool, err error) {
	b, err := bans.ParseTarget(s)
	if err != nil {
		return "", false, err
	}
	return b.Target, b.User, nil
}

// CheckNoticeTo checks the recipient of a notice: "" for everyone, a user
// name, or a group name with its '#'.
func CheckNoticeTo(to string) error {
	switch {
	case to == "":
		return nil
	case strings.HasPrefix(to, "#"):
		if !protocol.ValidGroupString(to) {
			return fmt.Errorf("invalid group name %q: want \"#\" and 1 to %d of A-Z a-z 0-9 _ . -", to, protocol.MaxGroupLen)
		}
		return nil
	}
	return CheckUser(to)
}

// CheckNotice checks the text of a notice: one line of text, without
// control characters other than tab, at most MaxNoticeLen bytes.
func CheckNotice(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return errors.New("a notice needs text")
	case len(text) > MaxNoticeLen:
		return fmt.Errorf("notice is %d bytes long, longer than the %d that fit in a line", len(text), MaxNoticeLen)
	case !protocol.ValidText([]byte(text)):
		return errors.New("a notice must be one line of text without control characters")
	}
	return nil
}

// CheckReason checks the reason of a kick or a ban: "", or at most
// MaxReasonLen bytes of text without control characters or angle brackets
// (the server may quote it in an END line, between brackets).
func CheckReason(reason string) error {
	switch {
	case len(reason) > MaxReasonLen:
		return fmt.Errorf("reason is %d bytes long, longer than %d", len(reason), MaxReasonLen)
	case !protocol.ValidText([]byte(reason)) || strings.ContainsAny(reason, "<>"):
		return errors.New("a reason must be one line of text without control characters, '<' or '>'")
	}
	return nil
}

// CheckInviteID checks an invite ID: 1 to MaxInviteIDLen printable ASCII
// characters without spaces.
func CheckInviteID(id string) error {
	if id == "" || len(id) > MaxInviteIDLen {
		return fmt.Errorf("invalid invite ID %q: want 1 to %d characters", id, MaxInviteIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return fmt.Errorf("invalid invite ID %q: want printable ASCII without spaces", id)
		}
	}
	return nil
}

// CheckInviteUses checks how many sign-ups an invite allows.
func CheckInviteUses(uses int) error {
	if uses < 1 || uses > MaxInviteUses {
		return fmt.Errorf("an invite allows 1 to %d uses, not %d", MaxInviteUses, uses)
	}
	return nil
}
