package users

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestVerifyPadsFailedChecks checks that a failed check whose stored
// credential costs less than DefaultParams is topped up with a dummy
// argon2id check, and that nothing else is.
func TestVerifyPadsFailedChecks(t *testing.T) {
	cheap, err := HashWithParams([]byte("secret"), CheapParams)
	if err != nil {
		t.Fatal(err)
	}
	strong := Params{Memory: DefaultParams.Memory, Time: DefaultParams.Time + 1, Threads: 1}
	def, err := HashWithParams([]byte("secret"), DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	str, err := HashWithParams([]byte("secret"), strong)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// The dummy check after a cheap argon2id hash makes up the rest.
	topUp := Params{Memory: uint32((cost(DefaultParams) - cost(CheapParams) + 1) / 2), Time: 2, Threads: 1}
	if cost(CheapParams)+cost(topUp) < cost(DefaultParams) {
		t.Fatalf("top-up %+v after %+v falls short of %+v", topUp, CheapParams, DefaultParams)
	}
	none := Params{}
	mixed := "plain,secret\nbcrypt," + string(bc) + "\ncheap," + cheap + "\ndefault," + def + "\nstrong," + str + "\n"
	tests := []struct {
		name      string
		table     string
		user, pw  string
		want      bool
		wantDummy Params // the zero Params: no dummy check
	}{
		{"plain wrong", mixed, "plain", "secreT", false, DefaultParams},
		{"plain right", mixed, "plain", "secret", true, none},
		{"bcrypt wrong", mixed, "bcrypt", "secreT", false, DefaultParams},
		{"bcrypt right", mixed, "bcrypt", "secret", true, none},
		{"cheap argon2id wrong", mixed, "cheap", "secreT", false, topUp},
		{"cheap argon2id right", mixed, "cheap", "secret", true, none},
		{"default argon2id wrong", mixed, "default", "secreT", false, none},
		{"stronger argon2id wrong", mixed, "strong", "secreT", false, none},
		{"unknown, cheap users", "cheap," + cheap + "\nplain,pw\n", "nobody", "secret", false, topUp},
		{"unknown, plain users", "plain,pw\n", "nobody", "secret", false, none},
		{"name differs by case", mixed, "Plain", "secret", false, none},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := mustParse(t, tc.table)
			c := NewChecker(1)
			var dummies []Params
			c.padded = func(p Params) { dummies = append(dummies, p) }
			ok, err := c.Verify(context.Background(), tab, tc.user, []byte(tc.pw))
			if err != nil || ok != tc.want {
				t.Fatalf("Verify = %v, %v; want %v", ok, err, tc.want)
			}
			switch {
			case tc.wantDummy == none && len(dummies) != 0:
				t.Fatalf("dummy checks %+v, want none", dummies)
			case tc.wantDummy != none && (len(dummies) != 1 || dummies[0] != tc.wantDummy):
				t.Fatalf("dummy checks %+v, want one with %+v", dummies, tc.wantDummy)
			}
		})
	}
}

func TestVerifyWrongPlainWaitsForASlot(t *testing.T) {
	tab := mustParse(t, "plain,pw\n")
	c := NewChecker(1)
	c.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ok, err := c.Verify(ctx, tab, "plain", []byte("wrong")); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wrong plain Verify with no free slot = %v, %v; want DeadlineExceeded", ok, err)
	}
	if ok, err := c.Verify(context.Background(), tab, "plain", []byte("pw")); !ok || err != nil {
		t.Fatalf("right plain Verify with no free slot = %v, %v; want true", ok, err)
	}
}

// BenchmarkVerifyFailed measures a failed login for each kind of stored
// credential and for an unknown user: the padding makes them all cost
// at least one default argon2id check (bcrypt more: see
// docs/operations.md). Compare the kinds within one run.
func BenchmarkVerifyFailed(b *testing.B) {
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), 10)
	if err != nil {
		b.Fatal(err)
	}
	def, err := HashWithParams([]byte("secret"), DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	table, err := Parse(strings.NewReader("plain,secret\nbcrypt," + string(bc) + "\nargon2id," + def + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	c := NewChecker(1)
	for _, user := range []string{"plain", "bcrypt", "argon2id", "unknown"} {
		b.Run(user, func(b *testing.B) {
			for b.Loop() {
				if ok, _ := c.Verify(context.Background(), table, user, []byte("wrong")); ok {
					b.Fatal("a wrong password was right")
				}
			}
		})
	}
}
