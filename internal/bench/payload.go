package bench

import (
	"errors"
	"math/bits"
)

// A message's text carries its sequence number and the time it was sent,
// both in lowercase hex and each followed by a dot, then padding up to the
// message size: "1f.3b9aca00.xxxx…". Hex keeps encoding and decoding cheap
// and the text free of spaces and control characters.

// MinSize is the smallest message text the bench sends: room for a 32-bit
// sequence number and a 52-bit timestamp (about 52 days in nanoseconds).
const MinSize = 24

// padding is sliced for the filler of a message; MaxSize bounds the slice.
var padding = func() []byte {
	b := make([]byte, MaxSize)
	for i := range b {
		b[i] = 'x'
	}
	return b
}()

// MaxSize is the largest message text the bench sends; the MSG line around
// it must stay within the protocol's line limit whatever the names.
const MaxSize = 4000

// errPayload reports a message text the bench did not write.
var errPayload = errors.New("not a bench payload")

// AppendPayload appends a message text of size bytes carrying seq and the
// send time sent (nanoseconds since the bench's clock started). When the
// two numbers need more than size bytes the text is longer than size; with
// size at least MinSize that does not happen in practice.
func AppendPayload(dst []byte, seq, sent uint64, size int) []byte {
	start := len(dst)
	dst = appendHex(dst, seq)
	dst = append(dst, '.')
	dst = appendHex(dst, sent)
	dst = append(dst, '.')
	if n := size - (len(dst) - start); n > 0 {
		dst = append(dst, padding[:min(n, len(padding))]...)
	}
	return dst
}

// appendHex appends v in lowercase hex without leading zeros; it is the
// sender's hot path, about twice as fast as strconv.AppendUint.
func appendHex(dst []byte, v uint64) []byte {
	n := max(1, (bits.Len64(v)+3)/4)
	dst = append(dst, "0000000000000000"[:n]...)
	out := dst[len(dst)-n:]
	for i := n - 1; i >= 0; i-- {
		out[i] = "0123456789abcdef"[v&0xf]
		v >>= 4
	}
	return dst
}

// ParsePayload returns the sequence number and send time carried by a
// message text written by AppendPayload.
func ParsePayload(text []byte) (seq, sent uint64, err error) {
	seq, rest, ok := parseHex(text)
	if !ok {
		return 0, 0, errPayload
	}
	sent, _, ok = parseHex(rest)
	if !ok {
		return 0, 0, errPayload
	}
	return seq, sent, nil
}

// parseHex reads 1 to 16 lowercase hex digits followed by a dot and returns
// the value and what follows the dot.
func parseHex(b []byte) (v uint64, rest []byte, ok bool) {
	for i, c := range b {
		d := hexValue[c]
		if d == notHex {
			if c == '.' && i > 0 {
				return v, b[i+1:], true
			}
			return 0, nil, false
		}
		if i == 16 {
			return 0, nil, false
		}
		v = v<<4 | uint64(d)
	}
	return 0, nil, false
}

const notHex = 0xff

// hexValue maps a lowercase hex digit to its value and anything else to
// notHex: one table load per byte on the receive path.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = notHex
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()
