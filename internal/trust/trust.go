// Package trust decides whether a client trusts a messager server's TLS
// certificate. Servers normally use self-signed certificates, so besides
// verifying against a given certificate (--ca) it supports pinning a
// fingerprint (--fingerprint) and, by default, trust on first use as SSH
// does: the fingerprint seen first is remembered in a known_servers file
// and any later change is refused loudly.
//
// A client that may use several addresses of one service (the nodes of a
// cluster) has a Verifier for each (see NewList): every node may have a
// certificate of its own, remembered under its own address, while --ca
// and --fingerprint apply to all of them.
package trust

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/messager/messager/internal/certs"
)

// Mode is how a server's certificate is checked.
type Mode int

// Modes of verification.
const (
	// ModeKnown is trust on first use with the known_servers file.
	ModeKnown Mode = iota
	// ModeCA verifies the chain and the host name against a given
	// certificate.
	ModeCA
	// ModePin requires one exact certificate fingerprint.
	ModePin
	// ModeInsecure checks nothing.
	ModeInsecure
)

// KnownServersName is the name of the file of known servers in the
// configuration directory.
const KnownServersName = "known_servers"

// Options choose how to trust a server. At most one of CAFile,
// Fingerprint and Insecure may be set; with none, the known_servers file
// is used.
type Options struct {
	// CAFile is a PEM file of certificates to verify the server against,
	// for example the server's own cert.pem.
	CAFile string
	// Fingerprint pins the server's certificate: "sha256:<hex>", or
	// several separated by commas, any of which is accepted (the
	// certificates of the nodes of one service); see ParseFingerprints.
	Fingerprint string
	// TrustNew trusts and remembers a server seen for the first time
	// without asking.
	TrustNew bool
	// Insecure skips verification entirely.
	Insecure bool
	// Dir is the configuration directory holding known_servers; empty
	// means DefaultDir().
	Dir string
	// Notices receives the --insecure warning and first-use notices; nil
	// means io.Discard.
	Notices io.Writer
}

// DefaultDir returns the messager directory inside the user's
// configuration directory (os.UserConfigDir, which honours
// XDG_CONFIG_HOME).
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration directory: %w", err)
	}
	return filepath.Join(dir, "messager"), nil
}

// Verifier checks the certificate of one server address.
type Verifier struct {
	addr    string
	host    string
	mode    Mode
	roots   *x509.CertPool
	pins    []string
	file    string
	notices io.Writer

	// mu serialises the uses of the known_servers file; the Verifiers of
	// one list share it, since they share the file.
	mu       *sync.Mutex
	trustNew bool
}

// New returns a Verifier for the server at addr ("host:port"). With
// Insecure it writes a warning to opts.Notices, every time.
func New(addr string, opts Options) (*Verifier, error) {
	vs, err := NewList([]string{addr}, opts)
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// NewList returns a Verifier for each of addrs, the addresses of one
// service, with the same options: --ca and --fingerprint apply to every
// address, and trust on first use remembers each address with its own
// certificate. The options are checked and the --ca file read once, and
// the --insecure warning, naming every address, is written once.
func NewList(addrs []string, opts Options) ([]*Verifier, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no server address")
	}
	proto, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	if proto.mode == ModeInsecure {
		what := "the identity of " + addrs[0] + " is"
		if len(addrs) > 1 {
			what = "the identities of " + strings.Join(addrs, ", ") + " are"
		}
		fmt.Fprintf(proto.notices, "messager: warning: --insecure: %s not verified; anyone on the network path can read and change your messages\n", what)
	}
	vs := make([]*Verifier, len(addrs))
	for i, addr := range addrs {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("server address %q: %w", addr, err)
		}
		if proto.mode == ModeKnown {
			if _, err := NormalizeAddr(addr); err != nil {
				return nil, err
			}
		}
		v := *proto
		v.addr, v.host = addr, host
		vs[i] = &v
	}
	return vs, nil
}

// newSettings checks opts and returns a Verifier with everything but
// the address.
func newSettings(opts Options) (*Verifier, error) {
	v := &Verifier{trustNew: opts.TrustNew, notices: opts.Notices, mu: new(sync.Mutex)}
	if v.notices == nil {
		v.notices = io.Discard
	}
	var err error
	set := 0
	for _, b := range []bool{opts.CAFile != "", opts.Fingerprint != "", opts.Insecure} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("choose one of --ca, --fingerprint and --insecure")
	}
	switch {
	case opts.Insecure:
		v.mode = ModeInsecure
	case opts.CAFile != "":
		v.mode = ModeCA
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		v.roots = x509.NewCertPool()
		if !v.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read --ca: %s holds no PEM certificate", opts.CAFile)
		}
	case opts.Fingerprint != "":
		v.mode = ModePin
		if v.pins, err = ParseFingerprints(opts.Fingerprint); err != nil {
			return nil, fmt.Errorf("--fingerprint: %w", err)
		}
	default:
		v.mode = ModeKnown
		dir := opts.Dir
		if dir == "" {
			if dir, err = DefaultDir(); err != nil {
				return nil, err
			}
		}
		v.file = filepath.Join(dir, KnownServersName)
	}
	return v, nil
}

// ParseFingerprints parses one fingerprint or several separated by commas
// ("sha256:<hex>,sha256:<hex>"), as --fingerprint takes them, into their
// canonical form. Spaces around each are dropped; an empty one and one
// given twice are errors, so that a slip in the list is not silently
// taken for a shorter list.
func ParseFingerprints(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	pins := make([]string, 0, len(parts))
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			if len(parts) == 1 {
				return nil, errors.New("no fingerprint")
			}
			return nil, fmt.Errorf("fingerprint %d of %d is empty (fingerprints are separated by single commas)", i+1, len(parts))
		}
		fp, err := certs.CanonicalFingerprint(part)
		if err != nil {
			return nil, err
		}
		for _, seen := range pins {
			if seen == fp {
				return nil, fmt.Errorf("fingerprint %s is listed twice", fp)
			}
		}
		pins = append(pins, fp)
	}
	return pins, nil
}

// Mode returns how the Verifier checks certificates.
func (v *Verifier) Mode() Mode { return v.mode }

// KnownServersFile returns the path of the known_servers file, or "" when
// the mode does not use it.
func (v *Verifier) KnownServersFile() string { return v.file }

// TLSConfig returns the client TLS configuration that applies the
// Verifier's checks during the handshake.
func (v *Verifier) TLSConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: v.host}
	switch v.mode {
	case ModeCA:
		// The standard verification, against the given roots only.
		cfg.RootCAs = v.roots
	case ModeInsecure:
		cfg.InsecureSkipVerify = true
	default:
		// A self-signed certificate would fail the standard checks; the
		// fingerprint is the identity instead, checked below.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = v.verify
	}
	return cfg
}

func (v *Verifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	got := certs.Fingerprint(cs.PeerCertificates[0].Raw)
	if v.mode == ModePin {
		for _, pin := range v.pins {
			if got == pin {
				return nil
			}
		}
		return &PinError{Addr: v.addr, Want: v.pins, Got: got}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	known, err := LoadKnownServers(v.file)
	if err != nil {
		return err
	}
	if fp, ok := known.Lookup(v.addr); ok {
		if fp != got {
			return &ChangedError{Addr: v.addr, Known: fp, Got: got, File: v.file}
		}
		return nil
	}
	if !v.trustNew {
		return &UnknownError{Addr: v.addr, Fingerprint: got}
	}
	known.Set(v.addr, got)
	if err := SaveKnownServers(v.file, known); err != nil {
		return err
	}
	fmt.Fprintf(v.notices, "messager: trusting %s on first use, certificate fingerprint %s (remembered in %s)\n", v.addr, got, v.file)
	return nil
}

// Trust remembers fp as the fingerprint of the Verifier's server, after a
// person accepted it; the next handshake with that certificate passes.
func (v *Verifier) Trust(fp string) error {
	fp, err := certs.CanonicalFingerprint(fp)
	if err != nil {
		return err
	}
	if v.mode != ModeKnown {
		return errors.New("trust: not in known servers mode")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	known, err := LoadKnownServers(v.file)
	if err != nil {
		return err
	}
	if old, ok := known.Lookup(v.addr); ok && old != fp {
		return &ChangedError{Addr: v.addr, Known: old, Got: fp, File: v.file}
	}
	known.Set(v.addr, fp)
	return SaveKnownServers(v.file, known)
}

// UnknownError reports a server seen for the first time when the client
// may not trust it without asking.
type UnknownError struct {
	Addr, Fingerprint string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("server %s is not known yet; its certificate fingerprint is %s\n"+
		"compare it with the one the server printed when it started, or that \"messager cert fingerprint\" prints on the server,\n"+
		"then run again with --trust-new, or pin it with --fingerprint",
		e.Addr, e.Fingerprint)
}

// Permanent marks the error as one that connecting again cannot fix.
func (e *UnknownError) Permanent() bool { return true }

// ChangedError reports a server whose certificate is not the one
// remembered: an attack, or a new certificate on the server.
type ChangedError struct {
	Addr, Known, Got, File string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("WARNING: THE CERTIFICATE OF %s HAS CHANGED\n"+
		"  remembered fingerprint: %s\n"+
		"  presented fingerprint:  %s\n"+
		"someone may be intercepting the connection, or the server has a new certificate.\n"+
		"the client did not log in. if the change is expected, remove the line for %s from %s and connect again",
		e.Addr, e.Known, e.Got, e.Addr, e.File)
}

// Permanent marks the error as one that connecting again cannot fix.
func (e *ChangedError) Permanent() bool { return true }

// PinError reports a certificate that does not match --fingerprint.
type PinError struct {
	// Addr is the server's address, Got the fingerprint it presented.
	Addr, Got string
	// Want are the fingerprints pinned, any of which would have passed.
	Want []string
}

func (e *PinError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the certificate fingerprint of %s did not match --fingerprint\n", e.Addr)
	if len(e.Want) == 1 {
		fmt.Fprintf(&b, "  expected: %s\n  got:      %s\n", e.Want[0], e.Got)
	} else {
		for i, w := range e.Want {
			label := "  expected one of: "
			if i > 0 {
				label = "                   "
			}
			fmt.Fprintf(&b, "%s%s\n", label, w)
		}
		fmt.Fprintf(&b, "  got:             %s\n", e.Got)
	}
	b.WriteString("the client did not log in: this is another server, someone is intercepting the connection, or the server has a new certificate")
	return b.String()
}

// Permanent marks the error as one that connecting again cannot fix.
func (e *PinError) Permanent() bool { return true }
