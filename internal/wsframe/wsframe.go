// Package wsframe follows WebSocket frames (RFC 6455) in a byte stream
// that a WebSocket library reads, without parsing them for it: it tells
// how many data messages have arrived whole, so that the reader knows a
// message is in memory and taking it will not wait for the network. The
// server's transport and the bench's client both read this way.
package wsframe

// Counter counts the data messages (a text, binary or continuation frame
// with FIN set ends one) whose last byte has gone by in the bytes fed to
// it, from the first frame's first byte. Its zero value is ready.
type Counter struct {
	// Messages is how many data messages have ended.
	Messages uint64
	// Clean reports whether the bytes so far end at the end of a data
	// message (or before any frame): no part of a frame is pending.
	Clean bool

	head     [14]byte // the frame header being read
	headLen  int      // bytes of it so far
	payload  uint64   // payload bytes of the current frame still to come
	endsData bool     // the current frame ends a data message
	started  bool     // a byte has been fed
}

// Feed follows p, the next bytes of the stream.
func (c *Counter) Feed(p []byte) {
	if !c.started {
		c.started, c.Clean = true, true
	}
	for len(p) > 0 {
		if c.payload > 0 {
			k := min(c.payload, uint64(len(p)))
			c.payload -= k
			p = p[k:]
			if c.payload == 0 {
				c.frameDone()
			}
			continue
		}
		c.head[c.headLen] = p[0]
		c.headLen++
		c.Clean = false
		p = p[1:]
		if c.headLen >= 2 && c.headLen == HeaderLen(c.head[1]) {
			c.startFrame()
		}
	}
}

// HeaderLen is the length of a frame header from its second byte: two
// bytes, the extended length, the mask key.
func HeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// startFrame takes a header read whole.
func (c *Counter) startFrame() {
	h := c.head[:c.headLen]
	c.headLen = 0
	c.endsData = h[0]&0x80 != 0 && h[0]&0x0f <= 2 // final continuation, text or binary
	switch n := h[1] & 0x7f; n {
	case 126:
		c.payload = uint64(h[2])<<8 | uint64(h[3])
	case 127:
		c.payload = 0
		for _, b := range h[2:10] {
			c.payload = c.payload<<8 | uint64(b)
		}
	default:
		c.payload = uint64(n)
	}
	if c.payload == 0 {
		c.frameDone()
	}
}

func (c *Counter) frameDone() {
	c.Clean = c.endsData
	if c.endsData {
		c.Messages++
	}
}
