package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/messager/messager/internal/atomicfile"
	"github.com/messager/messager/internal/certs"
)

// KnownServers is the content of a known_servers file: the fingerprint
// trusted for each server address, in the order of the file.
type KnownServers struct {
	addrs []string
	fps   map[string]string
}

// maxKnownServersFile bounds what is read, so a corrupted file cannot
// exhaust memory.
const maxKnownServersFile = 4 << 20

// ParseKnownServers parses a known_servers file: one "host:port sha256:hex"
// per line; blank lines and lines starting with # are skipped. Errors name
// the line.
func ParseKnownServers(r io.Reader) (*KnownServers, error) {
	k := &KnownServers{fps: make(map[string]string)}
	sc := bufio.NewScanner(io.LimitReader(r, maxKnownServersFile))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"host:port sha256:hex\"", n)
		}
		addr, err := NormalizeAddr(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		// The file is written by this program: it holds canonical
		// fingerprints only, prefix included.
		fp, err := certs.CanonicalFingerprint(fields[1])
		if err != nil || fp != fields[1] {
			return nil, fmt.Errorf("line %d: fingerprint %q: want sha256: and 64 lowercase hex digits", n, fields[1])
		}
		if _, dup := k.fps[addr]; dup {
			return nil, fmt.Errorf("line %d: %s is listed twice", n, addr)
		}
		k.Set(addr, fp)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return k, nil
}

// NormalizeAddr checks a "host:port" address and lowercases the host, so
// that one server is one entry.
func NormalizeAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, " \t#") {
		return "", fmt.Errorf("address %q: want host:port", addr)
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

// Lookup returns the fingerprint trusted for addr, if any.
func (k *KnownServers) Lookup(addr string) (string, bool) {
	if k == nil {
		return "", false
	}
	a, err := NormalizeAddr(addr)
	if err != nil {
		return "", false
	}
	fp, ok := k.fps[a]
	return fp, ok
}

// Set records fp as the fingerprint of addr, replacing any other.
func (k *KnownServers) Set(addr, fp string) {
	if a, err := NormalizeAddr(addr); err == nil {
		addr = a
	}
	if k.fps == nil {
		k.fps = make(map[string]string)
	}
	if _, ok := k.fps[addr]; !ok {
		k.addrs = append(k.addrs, addr)
	}
	k.fps[addr] = fp
}

// Len returns the number of servers known.
func (k *KnownServers) Len() int { return len(k.addrs) }

// Format returns the file content for k.
func (k *KnownServers) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# messager known servers: host:port sha256:fingerprint\n")
	for _, a := range k.addrs {
		fmt.Fprintf(&b, "%s %s\n", a, k.fps[a])
	}
	return b.Bytes()
}

// LoadKnownServers reads the known_servers file at path; a missing file is
// an empty list.
func LoadKnownServers(path string) (*KnownServers, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &KnownServers{fps: make(map[string]string)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read known servers: %w", err)
	}
	defer f.Close()
	k, err := ParseKnownServers(f)
	if err != nil {
		return nil, fmt.Errorf("read known servers: %s: %w", path, err)
	}
	return k, nil
}

// SaveKnownServers writes k to path atomically: a temporary file in the
// same directory, synced, then renamed over the old one. The directory is
// created 0700 and the file is 0600.
func SaveKnownServers(path string, k *KnownServers) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save known servers: %w", err)
	}
	if err := atomicfile.Write(path, k.Format(), 0o600); err != nil {
		return fmt.Errorf("save known servers: %w", err)
	}
	return nil
}
