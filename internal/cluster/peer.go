package cluster

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// peer is another node of the cluster, as this node knows it.
type peer struct {
	id   string
	link *link
	seen atomic.Int64 // when it was last heard from, in Unix nanoseconds
	// fresh is set for a node met through its own request for our state,
	// which was sent at once: its H needs no second answer.
	fresh atomic.Bool
	// gone is set once the node is forgotten: a record of it still being
	// handled then must not leave anything behind.
	gone atomic.Bool

	mu     sync.Mutex // guards the fields below
	name   string
	digest string               // of its user table
	epoch  int64                // its current full state; records are tagged with it
	claims map[string]peerClaim // its sessions, by user
	// members are its group memberships ({group, user}), tagged with
	// the epoch that last stated them.
	members map[[2]string]int64
}

type peerClaim struct {
	stamp, epoch int64
}

func newPeer(n *Node, id string) *peer {
	p := &peer{
		id:      id,
		claims:  make(map[string]peerClaim),
		members: make(map[[2]string]int64),
	}
	p.link = &link{node: n, subject: n.inbox(id), wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.link.header = append(append([]byte{'@'}, n.id...), '\n')
	p.link.buf = append([]byte(nil), p.link.header...)
	return p
}

// link is the stream of records to one other node: the node's
// Forwarder. Records are appended to a buffer under the lock, never
// waiting on the network; one goroutine publishes the buffer, as one
// NATS message per batch, on a connection of the link's own.
type link struct {
	node    *Node
	subject string
	header  []byte // the batch header, "@<this node's id>\n"
	wake    chan struct{}
	done    chan struct{}
	nc      *nats.Conn

	mu sync.Mutex // guards buf, records, closed and started
	// buf is the header, then the records queued: the first batch
	// goes out from it as it is, without a copy.
	buf     []byte
	records int64 // queued since the start, for the closing log
	closed  bool
	started bool
	// refused counts messages refused because the link was full.
	refused atomic.Int64
	sent    atomic.Int64 // batches published
}

// Forward takes a message for a user on the link's node.
func (l *link) Forward(target, sender, text []byte) bool {
	return l.message(recRelay, "", target, sender, text)
}

// ForwardGroup takes a group message for the members on the link's node.
func (l *link) ForwardGroup(group string, sender, text []byte) bool {
	return l.message(recGroup, group, nil, sender, text)
}

func (l *link) message(kind byte, to string, toB, sender, text []byte) bool {
	l.mu.Lock()
	if l.closed || len(l.buf) > maxLinkQueue {
		l.mu.Unlock()
		l.refused.Add(1)
		return false
	}
	wasEmpty := len(l.buf) == len(l.header)
	l.buf = appendMessage(l.buf, kind, to, toB, sender, text)
	l.records++
	l.mu.Unlock()
	if wasEmpty {
		l.signal()
	}
	return true
}

// control appends a record that must not be lost to a full link (a
// login, a join): past the bound it is still queued, since such records
// are few and each is small.
func (l *link) control(appendRecord func([]byte) []byte) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	wasEmpty := len(l.buf) == len(l.header)
	l.buf = appendRecord(l.buf)
	l.records++
	l.mu.Unlock()
	if wasEmpty {
		l.signal()
	}
}

func (l *link) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// start starts publishing on nc.
func (l *link) start(nc *nats.Conn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nc.Close()
		return
	}
	l.nc, l.started = nc, true
	l.mu.Unlock()
	l.node.wg.Add(1)
	go l.run()
	l.signal()
}

// run publishes what is queued until the link closes, then what is left.
func (l *link) run() {
	defer l.node.wg.Done()
	defer l.nc.Close()
	var spare []byte
	for {
		select {
		case <-l.wake:
		case <-l.done:
		}
		// Let the readers that are ready run first: what they relay
		// joins this batch. A NATS message costs both nodes about the
		// same whatever it carries, and the receiving node wakes each
		// user's writer once a batch, so fewer, bigger batches cost
		// less; with nothing else to run this costs nothing.
		runtime.Gosched()
		l.mu.Lock()
		taken, closed := l.buf, l.closed
		l.buf = append(spare[:0], l.header...)
		l.mu.Unlock()
		l.publish(taken)
		// The two buffers take turns, so a steady load grows neither;
		// one much bigger than this round needed (a burst's) is let go.
		spare = taken[:0]
		if cap(taken) > 4*maxBatch && len(taken) < cap(taken)/8 {
			spare = nil
		}
		if closed {
			// What is left goes out if the NATS server is there; a dead
			// one does not hold up the shutdown.
			_ = l.nc.FlushTimeout(time.Second)
			l.mu.Lock()
			records := l.records
			l.mu.Unlock()
			l.node.log.Info("cluster link closed", "subject", l.subject, "records", records, "batches", l.sent.Load(), "refused", l.refused.Load())
			return
		}
	}
}

// publish sends b, the header and then whole records, as batches of at
// most maxBatch bytes of records, each with the header in front. Publish copies
// the data before it returns, so each batch after the first gets its
// header by writing it over the end of the batch before, already sent:
// no batch is copied here.
func (l *link) publish(b []byte) {
	h := len(l.header)
	for start := h; start < len(b); {
		n := len(b) - start
		if n > maxBatch {
			// Cut at the last whole record that fits.
			n = lastLineEnd(b[start:start+maxBatch]) + 1
			if n == 0 {
				n = lastLineEnd(b[start:]) + 1 // one record longer than a batch
			}
			if n == 0 {
				n = len(b) - start // records end with a line end; never here
			}
		}
		batch := b[start-h : start+n]
		copy(batch, l.header)
		if err := l.nc.Publish(l.subject, batch); err != nil {
			l.node.log.Warn("cluster: sending to another node failed", "subject", l.subject, "err", err)
		}
		l.sent.Add(1)
		start += n
	}
}

func lastLineEnd(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

// close stops the link once what is queued is sent.
func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
}
