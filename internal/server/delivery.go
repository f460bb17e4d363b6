package server

// delivery is what one reader has queued on other sessions during one
// network read (a session's reader, or a cluster's inbound stream): the
// target lock it keeps across a run of messages to one target, the
// writers to wake once the read is handled, the members found too slow,
// and the count of messages queued. It belongs to that reader alone.
type delivery struct {
	stats   *Stats
	held    *sendQueue // whose lock is kept between messages
	touched []*Session // writers to wake once the read is handled
	slow    []*Session // members found too slow during a group message
	relayed int64
}

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

// fanOutLocked queues a formatted group line on every member of g but
// skip; g.mu is held, and no queue lock.
func (d *delivery) fanOutLocked(g *group, line []byte, skip *Session) {
	for _, m := range g.members {
		if m == skip {
			continue
		}
		m.q.mu.Lock()
		queued, wake, urgent, tooSlow := m.q.appendBytesLocked(line)
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
			d.relayed++
		}
	}
}

// finish ends a read: it lets go of the lock kept, wakes the writers
// touched, finishes the closes of members found too slow, and adds the
// messages queued to the counters.
func (d *delivery) finish() {
	d.release()
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
