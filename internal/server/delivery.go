package server

import "github.com/messager/messager/internal/protocol"

// delivery is what one reader has queued on other sessions during one
// network read (a session's reader, or a cluster's inbound stream): the
// target lock it keeps across a run of messages to one target, the run of
// group messages not yet fanned out, the writers to wake once the read is
// handled, the members found too slow, and the count of messages queued.
// It belongs to that reader alone.
type delivery struct {
	stats   *Stats
	held    *sendQueue // whose lock is kept between messages
	touched []*Session // writers to wake once the read is handled
	slow    []*Session // members found too slow during a group message
	relayed int64

	// A run of consecutive messages of one read to one group, formatted
	// and kept here, and queued on each member at once when the run ends:
	// one lock and one copy per member for the run, not per message,
	// which is what keeps a large group's cost per delivery that of a
	// small one. runGroup is nil when no run is open.
	runGroup *group
	runSkip  *Session // the sender, who is not sent its own messages
	run      *sharedRun
	runMsgs  int64
}

// maxRun bounds the bytes of a run of group messages: a longer run is
// fanned out and a new one begun. Half the smallest queue bound
// (MinMaxQueue), so a run, a line longer, stays within the bound of an
// empty queue: one run alone never takes a queue past its bound. (A
// session's read brings at most 32 KiB, but a batch from another node of
// a cluster can bring more.)
const maxRun = MinMaxQueue / 2

// queueRelay queues a RELAY line on t. The target's lock is kept across
// a run of messages to the same target in one read (a sender usually
// writes to one person at a time), and let go when the target changes
// and before the read ends. False means t is closing or was found too
// slow (and is now closed); the lock is then let go.
func (d *delivery) queueRelay(t *Session, target, sender, text []byte) bool {
	if d.held != &t.q {
		d.release()
		t.q.mu.Lock()
		d.held = &t.q
	}
	queued, wake, urgent, tooSlow := t.q.appendRelayLocked(target, sender, text)
	if queued {
		d.relayed++
		if n := t.q.sizeLocked(); n > 64<<10 {
			d.stats.noteQueue(n)
		}
		switch {
		case urgent:
			d.release()
			t.nudge()
		case wake:
			d.touched = append(d.touched, t)
		}
		return true
	}
	d.release()
	if tooSlow {
		t.finishClose(reasonTooSlow)
	}
	return false
}

// release lets go of the target lock kept, if any.
func (d *delivery) release() {
	if d.held != nil {
		d.held.mu.Unlock()
		d.held = nil
	}
}

// queueGroup adds a message of g from sender, sent by skip (nil for
// none), to the open run, or to a new run once any run of another group
// is fanned out; a run grown to maxRun is fanned out at once.
func (d *delivery) queueGroup(g *group, skip *Session, sender, text []byte) {
	if d.runGroup != g || d.runSkip != skip {
		d.endRun()
		d.runGroup, d.runSkip = g, skip
		d.run = newSharedRun()
	}
	d.run.b = protocol.AppendRelay(d.run.b, []byte(g.name), sender, text)
	d.runMsgs++
	if len(d.run.b) >= maxRun {
		d.endRun()
	}
}

// endRun fans the open run of group messages, if any, out to the group's
// members. It must be called before the reader handles anything but
// another message to the same group, so that a sender's lines keep their
// order at a member who also gets its other lines, and before the read
// ends. No queue lock is held after it.
func (d *delivery) endRun() {
	d.release()
	g := d.runGroup
	if g == nil {
		return
	}
	g.mu.Lock()
	d.fanOutLocked(g, d.run, d.runMsgs, d.runSkip)
	g.mu.Unlock()
	d.run.release()
	d.runGroup, d.runSkip, d.run, d.runMsgs = nil, nil, nil, 0
}

// fanOutLocked queues run, msgs formatted group messages, on every
// member of g but skip; g.mu is held, and no queue lock. Holding g.mu
// across the whole fan-out is what gives every member one order.
func (d *delivery) fanOutLocked(g *group, run *sharedRun, msgs int64, skip *Session) {
	for _, m := range g.members {
		if m == skip {
			continue
		}
		m.q.mu.Lock()
		queued, wake, urgent, tooSlow := m.q.appendRunLocked(run)
		m.q.mu.Unlock()
		switch {
		case urgent:
			m.nudge()
		case wake:
			d.touched = append(d.touched, m)
		case tooSlow:
			d.slow = append(d.slow, m)
		}
		if queued {
			d.relayed += msgs
		}
	}
}

// finish ends a read: it fans out the open run of group messages, lets go
// of the lock kept, wakes the writers touched, finishes the closes of
// members found too slow, and adds the messages queued to the counters.
func (d *delivery) finish() {
	d.endRun()
	for i, t := range d.touched {
		t.nudge()
		d.touched[i] = nil
	}
	d.touched = d.touched[:0]
	for i, t := range d.slow {
		t.finishClose(reasonTooSlow)
		d.slow[i] = nil
	}
	d.slow = d.slow[:0]
	if d.relayed > 0 {
		d.stats.Relayed.Add(d.relayed)
		d.relayed = 0
	}
}
