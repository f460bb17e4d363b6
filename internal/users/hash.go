package users

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/messager/messager/internal/linefile"
	"github.com/messager/messager/internal/protocol"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
}

// DefaultParams are the parameters of new hashes: OWASP's first
// recommended argon2id configuration (19 MiB, 2 passes, 1 lane). It is the
// configuration with the least memory per check among those OWASP lists,
// which matters to a server that verifies logins in parallel: memory is
// what a login storm would exhaust, so the cost is spent in passes instead.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// CheapParams make hashes that are fast to check. They are INSECURE: use
// them only for throw-away accounts in load tests, where thousands of
// logins per second must not be limited by hashing.
var CheapParams = Params{Memory: 64, Time: 1, Threads: 1}

// Limits on hash parameters, read from a file or asked of HashWithParams.
// One check must stay within a small multiple of a check with
// DefaultParams, or one line of the file could make each login take
// seconds and gigabytes. The rule for argon2id: at most 256 MiB, 10
// passes and 16 lanes, and memory × passes at most 8 times DefaultParams'
// (19 MiB × 2). That admits DefaultParams, every configuration OWASP lists
// beside it (46 MiB × 1 up to 7 MiB × 5), RFC 9106's second recommendation
// (64 MiB × 3, 4 lanes) and the defaults of PHP, Django and argon2-cffi
// (at most 64 MiB × 4); it refuses RFC 9106's first (2 GiB) and
// libsodium's "moderate" (256 MiB × 3). bcrypt: cost 4 (bcrypt's minimum)
// to 14, which is 16 times the usual cost 10, about a second per check.
const (
	maxArgonMemory  = 256 << 10 // KiB: 256 MiB
	maxArgonTime    = 10
	maxArgonThreads = 16
	maxArgonWork    = 8 * 19 * 1024 * 2 // memory × passes, KiB: 8 × DefaultParams
	maxArgonKeyLen  = 1024
	minArgonSaltLen = 8
	maxArgonSaltLen = 1024
	maxBcryptCost   = 14
)

const (
	saltLen = 16 // bytes of salt in new hashes
	keyLen  = 32 // bytes of key in new hashes
)

type credKind uint8

const (
	kindPlain credKind = iota + 1
	kindArgon2id
	kindBcrypt
)

// credential is the second column of a line, parsed and checked.
type credential struct {
	kind    credKind
	encoded string // as written in the file
	params  Params // argon2id
	salt    []byte // argon2id
	key     []byte // argon2id
}

// Hash returns an argon2id PHC string for password with DefaultParams.
func Hash(password []byte) (string, error) {
	return HashWithParams(password, DefaultParams)
}

// HashWithParams returns an argon2id PHC string for password with p:
// "$argon2id$v=19$m=M,t=T,p=P$salt$key", base64 without padding.
func HashWithParams(password []byte, p Params) (string, error) {
	if err := checkParams(p); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
	return encodeArgon2id(p, salt, key), nil
}

func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkParams checks p against the limits above.
func checkParams(p Params) error {
	switch {
	case p.Threads < 1:
		return errors.New("argon2id parallelism must be at least 1")
	case p.Time < 1:
		return errors.New("argon2id time must be at least 1")
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("argon2id memory %d KiB is under %d (8 per lane)", p.Memory, 8*uint32(p.Threads))
	}
	return checkCost(uint64(p.Memory), uint64(p.Time), uint64(p.Threads))
}

// checkCost checks argon2id parameters against the upper limits. It takes
// them as parsed, before they are narrowed to the types of Params.
func checkCost(memory, passes, threads uint64) error {
	switch {
	case threads > maxArgonThreads:
		return fmt.Errorf("argon2id parallelism %d is over the limit of %d", threads, maxArgonThreads)
	case passes > maxArgonTime:
		return fmt.Errorf("argon2id time %d is over the limit of %d passes", passes, maxArgonTime)
	case memory > maxArgonMemory:
		return fmt.Errorf("argon2id memory %d KiB is over the limit of %d KiB (%d MiB)", memory, maxArgonMemory, maxArgonMemory>>10)
	case memory*passes > maxArgonWork:
		return fmt.Errorf("argon2id memory x time = %d KiB x %d = %d is over the limit of %d (8 times the default)", memory, passes, memory*passes, maxArgonWork)
	}
	return nil
}

// parseCredential checks the second column of a line.
func parseCredential(s string) (credential, error) {
	switch {
	case s == "":
		return credential{}, errors.New("empty password or hash")
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case s[0] == '$':
		scheme, _, _ := strings.Cut(s[1:], "$")
		return credential{}, fmt.Errorf("unsupported hash scheme %s (want argon2id or bcrypt)", linefile.Snippet("$"+scheme+"$"))
	}
	if !protocol.ValidPassword([]byte(s)) {
		// Never quote it: it is somebody's password.
		return credential{}, fmt.Errorf("plain password is not valid (want 1 to %d bytes without spaces or control characters)", protocol.MaxPasswordLen)
	}
	return credential{kind: kindPlain, encoded: s}, nil
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func parseArgon2id(s string) (credential, error) {
	bad := func(what string) (credential, error) {
		return credential{}, fmt.Errorf("malformed argon2id hash: %s", what)
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad(fmt.Sprintf("unsupported version %s (want v=%d)", linefile.Snippet(parts[2]), argon2.Version))
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("want parameters m=M,t=T,p=P")
	}
	var vals [3]uint64
	for i, want := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], want)
		if !ok {
			return bad("want parameters m=M,t=T,p=P")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return bad(fmt.Sprintf("bad parameter %s", linefile.Snippet(fields[i])))
		}
		vals[i] = n
	}
	// Upper limits first, so that parallelism is in range for uint8.
	if err := checkCost(vals[0], vals[1], vals[2]); err != nil {
		return credential{}, fmt.Errorf("argon2id hash too costly to check: %w", err)
	}
	p := Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := checkParams(p); err != nil {
		return bad(err.Error())
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	if len(salt) < minArgonSaltLen || len(salt) > maxArgonSaltLen {
		return bad(fmt.Sprintf("salt of %d bytes is outside %d..%d", len(salt), minArgonSaltLen, maxArgonSaltLen))
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return bad("hash is not unpadded base64")
	}
	if len(key) < 4 || len(key) > maxArgonKeyLen {
		return bad(fmt.Sprintf("hash of %d bytes is outside 4..%d", len(key), maxArgonKeyLen))
	}
	return credential{kind: kindArgon2id, encoded: s, params: p, salt: salt, key: key}, nil
}

// bcryptAlphabet is bcrypt's own base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt checks "$2b$CC$" followed by 53 characters of salt and hash.
// The bcrypt package itself is lenient about the tail, so the shape is
// checked here, where a line number can be given.
func parseBcrypt(s string) (credential, error) {
	if len(s) != 60 || s[6] != '$' {
		return credential{}, errors.New("malformed bcrypt hash: want $2b$CC$ and 53 characters")
	}
	cost, err := strconv.Atoi(s[4:6])
	if err != nil || s[4] < '0' || s[4] > '9' || cost < bcrypt.MinCost {
		return credential{}, fmt.Errorf("malformed bcrypt hash: cost %s is not a number from %d to %d", linefile.Snippet(s[4:6]), bcrypt.MinCost, maxBcryptCost)
	}
	if cost > maxBcryptCost {
		return credential{}, fmt.Errorf("bcrypt hash too costly to check: cost %d is over the limit of %d", cost, maxBcryptCost)
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return credential{}, errors.New("malformed bcrypt hash: bad character in salt or hash")
		}
	}
	return credential{kind: kindBcrypt, encoded: s}, nil
}

// verify checks password against c in constant time for a given length of
// c. It does the expensive work, so callers hold a Checker slot.
func (c *credential) verify(password []byte) bool {
	switch c.kind {
	case kindArgon2id:
		got := argon2.IDKey(password, c.salt, c.params.Time, c.params.Memory, c.params.Threads, uint32(len(c.key)))
		return subtle.ConstantTimeCompare(got, c.key) == 1
	case kindBcrypt:
		return bcrypt.CompareHashAndPassword([]byte(c.encoded), password) == nil
	case kindPlain:
		// Compare digests so that the time does not depend on where the
		// inputs differ nor on the length of the stored password.
		want := sha256.Sum256([]byte(c.encoded))
		got := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(want[:], got[:]) == 1
	}
	return false
}
