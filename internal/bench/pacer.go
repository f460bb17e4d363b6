package bench

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// schedule is the open loop's timetable. Message g of the whole run
// (counting over all senders) is due at start + g·perMsg nanoseconds and
// belongs to sender g mod pairs; sender i's k-th message is g = k·pairs+i.
// Spreading consecutive messages over senders keeps every sender's gaps
// even.
type schedule struct {
	start  uint64  // clock offset of message 0
	perMsg float64 // nanoseconds between messages
	pairs  uint64
}

// dueBy returns how many messages are due at clock offset now.
func (s *schedule) dueBy(now uint64) uint64 {
	if now < s.start {
		return 0
	}
	return uint64(float64(now-s.start)/s.perMsg) + 1
}

// at returns when message g is due.
func (s *schedule) at(g uint64) uint64 { return s.start + uint64(float64(g)*s.perMsg) }

// due returns when sender i's k-th message is due.
func (s *schedule) due(i int, k uint64) uint64 { return s.at(k*s.pairs + uint64(i)) }

// allowed returns how many of sender i's messages are among the first
// released ones.
func (s *schedule) allowed(i int, released uint64) uint64 {
	if released <= uint64(i) {
		return 0
	}
	return (released - uint64(i) + s.pairs - 1) / s.pairs
}

// Pacing. Go's timers sleep about a millisecond too long for sub-
// millisecond waits (the poller waits in whole milliseconds), which would
// make the open loop late by design. A timerfd wakes the poller at the
// exact time instead and needs no thread of its own. The pacer still
// sleeps at least minSlot, so that at high rates it releases messages in
// batches rather than spinning.
const (
	minSlot = 50 * time.Microsecond
	maxSlot = 10 * time.Millisecond // so that stopping is prompt
)

// pace releases messages as they fall due and wakes their senders, until
// the run stops.
func (r *loadRun) pace() {
	sleep := newPreciseSleeper()
	defer sleep.close()
	var released uint64
	pairs := uint64(len(r.pairs))
	// The timetable ends with the measured interval, however late the
	// run is stopped.
	last := r.sched.dueBy(r.measureEnd - 1)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		if due := min(r.sched.dueBy(r.now()), last); due > released {
			// Publish before waking, so a woken sender sees its share.
			r.released.Store(due)
			if due-released >= pairs {
				for _, p := range r.pairs {
					nudge(p.wake)
				}
			} else {
				for g := released; g < due; g++ {
					nudge(r.pairs[g%pairs].wake)
				}
			}
			released = due
		}
		wait := time.Duration(int64(r.sched.at(released)) - int64(r.now()))
		sleep.sleep(min(max(wait, minSlot), maxSlot))
	}
}

// preciseSleeper sleeps on a timerfd through the runtime's poller, falling
// back to time.Sleep when no timerfd is to be had.
type preciseSleeper struct {
	fd   int
	file *os.File
	buf  [8]byte
}

func newPreciseSleeper() *preciseSleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &preciseSleeper{fd: -1}
	}
	return &preciseSleeper{fd: fd, file: os.NewFile(uintptr(fd), "timerfd")}
}

func (s *preciseSleeper) sleep(d time.Duration) {
	if s.file != nil {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		if unix.TimerfdSettime(s.fd, 0, &spec, nil) == nil {
			if _, err := s.file.Read(s.buf[:]); err == nil {
				return
			}
		}
	}
	time.Sleep(d)
}

func (s *preciseSleeper) close() {
	if s.file != nil {
		_ = s.file.Close()
	}
}
