package wsframe

import "testing"

// frame returns one frame: fin and opcode, masked or not, with n payload
// bytes, in the shortest length form.
func frame(first byte, masked bool, n int) []byte {
	b := []byte{first}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// TestCounter feeds a stream of frames of every length form, masked and
// not, with a ping and a fragmented message, cut at every byte, and
// checks the count and Clean after each byte.
func TestCounter(t *testing.T) {
	var stream []byte
	var ends []int // where data messages end
	add := func(b []byte, endsMessage bool) {
		stream = append(stream, b...)
		if endsMessage {
			ends = append(ends, len(stream))
		}
	}
	add(frame(0x81, true, 5), true)
	add(frame(0x81, false, 0), true)
	add(frame(0x01, true, 3), false) // a fragment
	add(frame(0x89, true, 2), false) // a ping between
	add(frame(0x80, true, 200), true)
	add(frame(0x82, false, 70000), true)
	for split := 1; split <= 7; split++ {
		var c Counter
		want := uint64(0)
		for i := 0; i < len(stream); i += split {
			end := min(i+split, len(stream))
			c.Feed(stream[i:end])
			want = 0
			clean := false
			for _, e := range ends {
				if e <= end {
					want++
				}
				clean = clean || e == end
			}
			if c.Messages != want {
				t.Fatalf("split %d: %d messages after %d bytes, want %d", split, c.Messages, end, want)
			}
			if c.Clean != clean {
				t.Fatalf("split %d: clean %v after %d bytes, want %v", split, c.Clean, end, clean)
			}
		}
	}
}

func TestHeaderLen(t *testing.T) {
	for _, tt := range []struct {
		b1   byte
		want int
	}{{5, 2}, {0x85, 6}, {126, 4}, {0x80 | 126, 8}, {127, 10}, {0x80 | 127, 14}} {
		if got := HeaderLen(tt.b1); got != tt.want {
			t.Errorf("HeaderLen(%#x) = %d, want %d", tt.b1, got, tt.want)
		}
	}
}
