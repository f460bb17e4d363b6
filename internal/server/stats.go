package server

import "sync/atomic"

// Stats are the server's counters. Readers add to them once per network
// read, not once per message, so the counters cost the relay path little.
type Stats struct {
	LoginsOK      atomic.Int64
	LoginsFailed  atomic.Int64
	LoginsRefused atomic.Int64 // throttled, full, or too many connections
	Relayed       atomic.Int64 // MSG lines queued on a target's session
	NotOnline     atomic.Int64 // MSG lines answered with CNT
	// Forwarded counts MSG lines handed to another node of a cluster,
	// whose Relayed counts them when they are queued on the target.
	Forwarded atomic.Int64
	// Dropped counts relayed messages lost with the queue of a session
	// that was closed before they were written (too slow, write failed):
	// Relayed minus Dropped is what reached the receivers' sockets.
	Dropped atomic.Int64
	// Signups and SignupsRefused count sign-ups that made an account
	// and those answered TRY.
	Signups, SignupsRefused atomic.Int64
	BytesIn                 atomic.Int64
	BytesOut                atomic.Int64
	QueueHighWater          atomic.Int64 // the largest send queue seen, in bytes
	Closes                  [numReasons]atomic.Int64
}

// ClosesByReason returns how many connections ended for each reason, by
// the reason's name.
func (s *Stats) ClosesByReason() map[string]int64 {
	m := make(map[string]int64, numReasons)
	for r := closeReason(1); r < numReasons; r++ {
		m[r.String()] = s.Closes[r].Load()
	}
	return m
}

// CloseCount returns how many connections ended for the named reason.
func (s *Stats) CloseCount(name string) int64 { return s.ClosesByReason()[name] }

func (s *Stats) noteQueue(n int) {
	if int64(n) > s.QueueHighWater.Load() {
		for {
			cur := s.QueueHighWater.Load()
			if int64(n) <= cur || s.QueueHighWater.CompareAndSwap(cur, int64(n)) {
				return
			}
		}
	}
}
