package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The loops every load mode runs around its senders: waiting for what is
// in flight at the end, and a live progress line.

// waitDrained waits, polling, until pending reports false, d has passed,
// or ctx ends.
func waitDrained(ctx context.Context, d time.Duration, pending func() bool) {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for pending() && time.Now().Before(deadline) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// showProgress writes a live line to w once a second until stop is
// closed, then clears it; with no w it only waits. count is what the
// line gives a rate of; text makes the line from that rate.
func showProgress(w io.Writer, stop chan struct{}, count func() uint64, text func(rate float64) string) {
	if w == nil {
		<-stop
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	lastAt := time.Now()
	for {
		select {
		case <-stop:
			fmt.Fprint(w, "\r\033[K")
			return
		case now := <-tick.C:
			n := count()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			fmt.Fprint(w, "\r\033[Kbench: "+text(rate))
		}
	}
}

// phase names where a run is at time at (on its own clock).
func phase(at, measureStart, measureEnd uint64) string {
	switch {
	case at < measureStart:
		return "warming up"
	case at >= measureEnd:
		return "draining"
	}
	return "measuring"
}
