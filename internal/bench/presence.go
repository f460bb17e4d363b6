package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messager/messager/internal/protocol"
)

// Presence mode. Sessions watching sessions each watch Watch names among
// ChurnUsers churning users, half of whom are online at any time: every
// second Churn of them log in and Churn log out, the one offline longest
// and the one online longest, so the number online stays the same. Pairs
// of 1:1 sessions relay in a closed loop throughout, first for Duration
// without the churn, then for Duration with it, so that one run compares
// the two relay rates on the same server.
//
// A user's state is known to the bench: it changes when the bench writes
// its AUTH or END, and is settled once the server has answered (ACCEPT,
// or the closed connection). A watcher is right when its last PRESENCE
// for every watched name matches; it is checked continuously for the
// names settled at least presenceDeadline ago, and once for every name
// presenceDeadline after the churn has stopped.
const (
	// presenceDeadline is how soon a watcher must know of a change.
	presenceDeadline = 1500 * time.Millisecond
	// checkEvery is the interval of the continuous check.
	checkEvery = 200 * time.Millisecond
	// churnTick is how often the churn's timetable releases what is due.
	churnTick = 5 * time.Millisecond
	// logoutTimeout bounds the wait for the server to close a session
	// after END.
	logoutTimeout = 5 * time.Second
	// watchTimeout bounds the wait for the answers to every WATCH.
	watchTimeout = time.Minute
)

// unsettled in a user's truth: a login or logout is under way.
const unsettled = math.MaxUint64 >> 1

// churnUser is one user of the churning pool.
type churnUser struct {
	name string
	// truth is the clock offset from which the state is settled,
	// shifted left by one, with the low bit set while online.
	truth atomic.Uint64
	// onAt and offAt are when its last AUTH and END were written.
	onAt, offAt atomic.Uint64
	s           *session // while online; owned by whoever runs its next change
}

func (u *churnUser) settle(at uint64, online bool) {
	v := at << 1
	if online {
		v |= 1
	}
	u.truth.Store(v)
}

// watcher is one watching session.
type watcher struct {
	s       *session
	watched []int32 // churning users' indices, sorted
	// belief is what the server last said of each watched name: 0
	// nothing yet, beliefOff or beliefOn.
	belief    []atomic.Uint32
	known     atomic.Int32  // entries with a belief
	lastCheck atomic.Uint64 // clock offset of the last CHECK it got
	everWrong bool          // owned by the checker
}

const (
	beliefOff = 1
	beliefOn  = 2
)

// presenceRun is one run of the presence mode.
type presenceRun struct {
	cfg         *Config
	t           *target
	clock       time.Time
	churnPrefix []byte

	users    []churnUser
	watchers []*watcher

	// The churn's queues: users offline and online, longest first.
	mu              sync.Mutex
	offline, online []int32
	inFlight        int

	// The measured interval of the churn phase, as clock offsets; until it
	// is fixed both are the maximum, so nothing counts.
	measureStart, measureEnd atomic.Uint64
	lines, names             atomic.Uint64 // PRESENCE lines and names received in it
	logins, logouts          atomic.Uint64 // changes completed in it
	churnFailed              atomic.Uint64
	lastChange               atomic.Uint64 // clock offset of the last completed change
	loginsOK                 atomic.Uint64 // every login of the run, for the server's settling
	delay                    *shardedHist
	lag                      *shardedHist

	closing atomic.Bool
	errs    errorLog
	readers sync.WaitGroup

	roundsMu sync.Mutex
	rounds   []round
}

func (r *presenceRun) now() uint64 { return uint64(time.Since(r.clock)) }

func (r *presenceRun) inMeasured(at uint64) bool {
	return at >= r.measureStart.Load() && at < r.measureEnd.Load()
}

// runPresence runs the presence mode. It is one of the run modes; the
// others live beside it.
func runPresence(ctx context.Context, cfg *Config, t *target, rep *Report, fileLimit uint64) error {
	r := &presenceRun{
		cfg:         cfg,
		t:           t,
		clock:       time.Now(),
		churnPrefix: []byte(cfg.UserPrefix + "c-"),
		users:       make([]churnUser, cfg.ChurnUsers),
		delay:       newShardedHist(maxShards),
		lag:         newShardedHist(1),
	}
	r.measureStart.Store(math.MaxUint64)
	r.measureEnd.Store(math.MaxUint64)
	pr := &PresenceReport{
		Sessions:     cfg.Sessions,
		Watch:        cfg.Watch,
		WatchEntries: cfg.Sessions * cfg.Watch,
		ChurnUsers:   cfg.ChurnUsers,
		Churn:        cfg.Churn,
	}
	rep.Presence = pr
	for i := range r.users {
		r.users[i].name = churnName(cfg.UserPrefix, i)
	}
	defer r.closeAll()

	loginStart := time.Now()
	progress := r.progress("logging in")
	err := r.loginChurners(ctx)
	if err == nil {
		err = r.loginWatchers(ctx, fileLimit)
	}
	relayCfg := *cfg
	relayCfg.Progress = nil
	// The relay's latency window spans both phases.
	relayCfg.Duration = 2*cfg.Duration + 2*cfg.Warmup
	relay := newLoadRun(&relayCfg)
	if err == nil {
		err = relay.login(ctx, t)
		r.loginsOK.Add(uint64(2 * relayCfg.Pairs))
	}
	progress()
	if err != nil {
		return err
	}
	defer relay.closeAll()
	relay.cores(t)
	pr.LoginSeconds = time.Since(loginStart).Seconds()

	// The server's memory before any watch, once it has settled after the
	// logins; then with the watches, settled again after a burst of churn
	// that makes enough logins for it to.
	stopRounds := make(chan struct{})
	defer close(stopRounds)
	go r.trackRounds(stopRounds)
	if t.pid != 0 {
		progress = r.progress("waiting for the server's liveness round")
		pr.RSSBefore, pr.MemorySettled = r.settle(ctx)
		progress()
	}
	if err := r.watchAll(ctx); err != nil {
		return err
	}
	if t.pid != 0 && ctx.Err() == nil {
		progress = r.progress("churn burst before reading memory")
		r.burst(ctx)
		progress()
		progress = r.progress("waiting for the server's liveness round")
		rss, settled := r.settle(ctx)
		progress()
		pr.RSSWatched, pr.MemorySettled = rss, pr.MemorySettled && settled
		pr.BytesPerEntry = perEntry(pr.RSSBefore, rss, pr.WatchEntries)
	}

	// Quiet phase: the relay alone.
	progress = r.progress("relay without churn")
	relay.start(relay.now() + uint64(time.Millisecond))
	ok := sleepUntil(ctx, relay.now, relay.measureStart)
	q0 := relay.sample(t)
	ok = ok && sleepUntil(ctx, relay.now, q0.at+uint64(cfg.Duration))
	q1 := relay.sample(t)
	progress()

	// Churn phase: the relay goes on, the churn starts.
	progress = r.progress("relay with churn")
	churnStart := r.now()
	r.measureStart.Store(churnStart + uint64(cfg.Warmup))
	r.measureEnd.Store(churnStart + uint64(cfg.Warmup+cfg.Duration))
	stopChurn := make(chan struct{})
	churnDone := make(chan struct{})
	go func() { defer close(churnDone); r.churn(ctx, churnStart, stopChurn) }()
	checkerDone := make(chan struct{})
	go func() { defer close(checkerDone); r.checkContinuously(ctx, pr) }()
	ok = ok && sleepUntil(ctx, r.now, r.measureStart.Load())
	c0 := relay.sample(t)
	ok = ok && sleepUntil(ctx, r.now, r.measureEnd.Load())
	c1 := relay.sample(t)
	close(stopChurn)
	<-churnDone
	<-checkerDone
	relay.finish(ctx)
	progress()

	relay.fill(rep, t, c0, c1)
	if rep.ServerUsage != nil {
		rep.ServerUsage.CPUPerMsg = 0 // the server's CPU here is not the relay's alone
	}
	pr.Quiet = phaseOf(q0, q1)
	pr.Churned = phaseOf(c0, c1)
	if pr.Quiet.RelayMsgsPerSec > 0 {
		pr.RelayRatio = pr.Churned.RelayMsgsPerSec / pr.Quiet.RelayMsgsPerSec
	}
	pr.ChurnServerCPU, pr.ServerBoundRatio = churnShare(pr.Quiet, pr.Churned, len(relay.serverCores))
	r.fillChurn(pr, c0, c1)

	// Every watcher must be right presenceDeadline after the last change.
	progress = r.progress("final check")
	sleepUntil(ctx, r.now, r.lastChange.Load()+uint64(presenceDeadline))
	pr.FinalCorrect = r.checkAll()
	pr.FinalShare = float64(pr.FinalCorrect) / float64(len(r.watchers))
	progress()

	if t.pid != 0 && ctx.Err() == nil {
		progress = r.progress("waiting for the server's liveness round")
		rss, settled := r.settle(ctx)
		progress()
		pr.RSSAfter, pr.MemorySettled = rss, pr.MemorySettled && settled
		pr.BytesPerEntryAfter = perEntry(pr.RSSBefore, rss, pr.WatchEntries)
	}
	if t.pid != 0 && !pr.MemorySettled {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the server's memory was read without a settle (a liveness round within %s after %d logins): it may hold garbage", cfg.SettleWait, settleLogins))
	}
	rep.Errors, rep.ErrorList = mergeErrors(&r.errs, &relay.errs)
	if pr.FinalCorrect < len(r.watchers) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d of %d watching sessions had a wrong state %s after the churn stopped", len(r.watchers)-pr.FinalCorrect, len(r.watchers), presenceDeadline))
	}
	if !ok {
		rep.Warnings = append(rep.Warnings, "interrupted before the end of the run: figures cover the time it ran")
	}
	return nil
}

// loginChurners logs in the first half of the churning users, which are
// online when the churn starts; the rest wait offline.
func (r *presenceRun) loginChurners(ctx context.Context) error {
	n := len(r.users) / 2
	err := loginAll(ctx, n, func(ctx context.Context, i int) error {
		s, err := r.t.dial.login(ctx, r.users[i].name, r.cfg.Password, loginOptions{})
		if err != nil {
			return err
		}
		r.users[i].s = s
		r.users[i].settle(r.now(), true)
		r.loginsOK.Add(1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("log in churning users: %w", err)
	}
	for i := range r.users {
		if i < n {
			r.online = append(r.online, int32(i))
		} else {
			r.offline = append(r.offline, int32(i))
		}
	}
	return nil
}

// loginWatchers logs in the watching sessions (version 2) and starts
// their readers. Each picks its names now, at random, without repeats.
func (r *presenceRun) loginWatchers(ctx context.Context, fileLimit uint64) error {
	n := r.cfg.Sessions
	r.watchers = make([]*watcher, n)
	loopback := isLoopback(r.t.addr)
	err := loginAll(ctx, n, func(ctx context.Context, i int) error {
		var local net.IP
		if k := i / sessionsPerAddr; loopback && k > 0 {
			local = loopbackAddr(k)
		}
		s, err := r.t.dial.login(ctx, idleName(r.cfg.UserPrefix, i), r.cfg.Password, loginOptions{local: local, version2: true})
		if err != nil {
			return err
		}
		r.loginsOK.Add(1)
		w := &watcher{s: s, belief: make([]atomic.Uint32, r.cfg.Watch)}
		r.watchers[i] = w
		switch f := s.features; {
		case f.Presence == 0:
			return errors.New("the server does not offer presence (serve --presence)")
		case f.Presence < r.cfg.Watch:
			return fmt.Errorf("the server lets a session watch at most %d names and this run watches %d (serve --max-watch %d)", f.Presence, r.cfg.Watch, r.cfg.Watch)
		}
		rng := rand.New(rand.NewPCG(uint64(i), 0x9e3779b97f4a7c15))
		for _, k := range rng.Perm(len(r.users))[:r.cfg.Watch] {
			w.watched = append(w.watched, int32(k))
		}
		slices.Sort(w.watched)
		r.readers.Add(1)
		go func() { defer r.readers.Done(); r.read(w) }()
		return nil
	})
	if err != nil {
		var le *loginError
		if errors.As(err, &le) || errors.Is(err, context.Canceled) {
			return fmt.Errorf("log in watching sessions: %w", err)
		}
		ir := &idleRun{cfg: r.cfg, pid: r.t.pid}
		return fmt.Errorf("log in watching sessions: %s", ir.explain(err, fileLimit))
	}
	return nil
}

// watchAll sends every watcher's WATCH lines and waits until each knows
// the state of all its names.
func (r *presenceRun) watchAll(ctx context.Context) error {
	var buf []byte
	names := make([]string, 0, protocol.MaxWatchNames)
	for _, w := range r.watchers {
		buf = buf[:0]
		for i := 0; i < len(w.watched); i += protocol.MaxWatchNames {
			names = names[:0]
			for _, k := range w.watched[i:min(i+protocol.MaxWatchNames, len(w.watched))] {
				names = append(names, r.users[k].name)
			}
			buf = protocol.AppendWatch(buf, names)
		}
		if _, err := w.s.conn.Write(buf); err != nil {
			return fmt.Errorf("watch: %s: %w", w.s.user, err)
		}
	}
	deadline := time.Now().Add(watchTimeout)
	for {
		waiting := 0
		for _, w := range r.watchers {
			if int(w.known.Load()) < len(w.watched) {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if n, samples := r.errs.snapshot(); n > 0 {
			return fmt.Errorf("watch: %d sessions still waiting for their state: %v", waiting, samples)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("watch: %d sessions did not learn the state of all their names within %s", waiting, watchTimeout)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read reads a watcher: PRESENCE lines update what it believes and, for
// changes in the measured interval, are timed from the change.
func (r *presenceRun) read(w *watcher) {
	delays := make([]int64, 0, 64)
	for {
		raw, err := w.s.reader.ReadLine()
		if err != nil {
			if !r.closing.Load() {
				r.errs.add("watching session %s: %v", w.s.user, err)
			}
			return
		}
		now := r.now()
		sl, err := protocol.ParseServerLine(protocol.TrimLine(raw))
		if err != nil {
			r.errs.add("watching session %s: malformed line from the server", w.s.user)
			continue
		}
		switch sl.Kind {
		case protocol.KindPresence:
			counted := r.inMeasured(now)
			state := uint32(beliefOff)
			if sl.On {
				state = beliefOn
			}
			delays = delays[:0]
			var n uint64
			for name, rest := protocol.NextName(sl.Names); len(name) > 0; name, rest = protocol.NextName(rest) {
				k, ok := r.churnIndex(name)
				pos, found := slices.BinarySearch(w.watched, int32(k))
				if !ok || !found {
					r.errs.add("watching session %s: PRESENCE of a name it does not watch", w.s.user)
					continue
				}
				n++
				if w.belief[pos].Swap(state) == 0 {
					w.known.Add(1)
				}
				at := r.users[k].offAt.Load()
				if sl.On {
					at = r.users[k].onAt.Load()
				}
				if at != 0 && r.inMeasured(at) {
					delays = append(delays, int64(now)-int64(at))
				}
			}
			if counted {
				r.lines.Add(1)
				r.names.Add(n)
			}
			if len(delays) > 0 {
				r.delay.record(int(w.watched[0]), delays)
			}
		case protocol.KindCheck:
			w.lastCheck.Store(now)
		case protocol.KindFail:
			r.errs.add("watching session %s: FAIL %s %s <%s>", w.s.user, sl.Verb, sl.Subject, sl.Reason)
		case protocol.KindEnd:
			if !r.closing.Load() {
				r.errs.add("watching session %s: server closed the session: END <%s>", w.s.user, sl.Reason)
			}
		case protocol.KindRelay, protocol.KindCNT:
			r.errs.add("watching session %s: unexpected %s", w.s.user, sl.Kind)
		}
	}
}

// churnIndex reads a churning user's index from its name.
func (r *presenceRun) churnIndex(name []byte) (int, bool) {
	if len(name) <= len(r.churnPrefix) || string(name[:len(r.churnPrefix)]) != string(r.churnPrefix) {
		return 0, false
	}
	n := 0
	for _, c := range name[len(r.churnPrefix):] {
		if c < '0' || c > '9' || n > len(r.users) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > len(r.users) {
		return 0, false
	}
	return n - 1, true
}

// churnJob is one change due at a time of the churn's timetable.
type churnJob struct {
	user int32
	due  uint64
}

// Changes under way at once. A messager server checks at most ten logins
// of one address at a time and queues the rest, and closes an address's
// connections beyond 64 not yet logged in; a busy bench needs many
// logins in flight to keep the churn's pace, since each waits for its
// turn on the bench's core several times.
const (
	churnLogins  = 32
	churnLogouts = 16
)

// churn logs users in and out at cfg.Churn each a second, from clock
// offset start, until stop is closed; it returns when every change under
// way has finished.
func (r *presenceRun) churn(ctx context.Context, start uint64, stop <-chan struct{}) {
	logins := make(chan churnJob, 1024)
	logouts := make(chan churnJob, 1024)
	var workers sync.WaitGroup
	for range churnLogins {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range logins {
				r.logIn(ctx, j)
			}
		}()
	}
	for range churnLogouts {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range logouts {
				r.logOut(j)
			}
		}()
	}
	tick := time.NewTicker(churnTick)
	defer tick.Stop()
	perChange := 1e9 / float64(2*r.cfg.Churn) // logins and logouts alternate
	var released uint64
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		due := uint64(float64(r.now()-start)/perChange) + 1
		for ; released < due; released++ {
			at := start + uint64(float64(released)*perChange)
			login := released%2 == 0
			r.mu.Lock()
			queue := &r.online
			if login {
				queue = &r.offline
			}
			if len(*queue) == 0 {
				// Everyone is busy changing: skip this change.
				r.mu.Unlock()
				continue
			}
			k := (*queue)[0]
			*queue = (*queue)[1:]
			r.inFlight++
			r.mu.Unlock()
			job := churnJob{user: k, due: at}
			if login {
				logins <- job
			} else {
				logouts <- job
			}
		}
	}
	close(logins)
	close(logouts)
	workers.Wait()
}

// logIn logs a churning user in and puts it at the end of the online
// queue; a failed login puts it back offline.
func (r *presenceRun) logIn(ctx context.Context, j churnJob) {
	u := &r.users[j.user]
	r.recordLag(j)
	s, err := r.t.dial.login(ctx, u.name, r.cfg.Password, loginOptions{beforeAuth: func() {
		u.truth.Store(unsettled << 1)
		u.onAt.Store(r.now())
	}})
	now := r.now()
	r.mu.Lock()
	r.inFlight--
	if err != nil {
		r.offline = append(r.offline, j.user)
	} else {
		u.s = s
		r.online = append(r.online, j.user)
	}
	r.mu.Unlock()
	u.settle(now, err == nil)
	r.lastChange.Store(max(r.lastChange.Load(), now))
	if err != nil {
		r.churnFailed.Add(1)
		if !r.closing.Load() && ctx.Err() == nil {
			r.errs.add("churn: %v", err)
		}
		return
	}
	r.loginsOK.Add(1)
	if r.inMeasured(now) {
		r.logins.Add(1)
	}
}

// logOut ends a churning user's session with END and waits for the server
// to close it (so the closed connection waits out its time on the
// server's side, not in the bench's ports), then puts the user at the end
// of the offline queue.
func (r *presenceRun) logOut(j churnJob) {
	u := &r.users[j.user]
	r.recordLag(j)
	r.mu.Lock()
	s := u.s
	u.s = nil
	r.mu.Unlock()
	u.truth.Store(unsettled << 1)
	u.offAt.Store(r.now())
	_ = s.conn.SetDeadline(time.Now().Add(logoutTimeout))
	_, err := s.conn.Write(protocol.AppendEndQuery(nil))
	for err == nil {
		_, err = s.reader.ReadLine()
	}
	_ = s.conn.Close()
	now := r.now()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.churnFailed.Add(1)
		r.errs.add("churn: %s: the server did not close the session within %s of END", u.name, logoutTimeout)
	}
	r.mu.Lock()
	r.inFlight--
	r.offline = append(r.offline, j.user)
	r.mu.Unlock()
	u.settle(now, false)
	r.lastChange.Store(max(r.lastChange.Load(), now))
	if r.inMeasured(now) {
		r.logouts.Add(1)
	}
}

// recordLag records how late a change of the measured interval started
// against the timetable.
func (r *presenceRun) recordLag(j churnJob) {
	if r.inMeasured(j.due) {
		r.lag.record(0, []int64{int64(r.now()) - int64(j.due)})
	}
}

// checkContinuously checks every watcher each checkEvery during the
// measured interval: each name settled at least presenceDeadline ago must
// have the state the server last told.
func (r *presenceRun) checkContinuously(ctx context.Context, pr *PresenceReport) {
	if !sleepUntil(ctx, r.now, r.measureStart.Load()) {
		return
	}
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		now := r.now()
		if now >= r.measureEnd.Load() {
			break
		}
		pr.Samples++
		for _, w := range r.watchers {
			wrong := false
			for i, k := range w.watched {
				truth := r.users[k].truth.Load()
				if truth>>1+uint64(presenceDeadline) > now {
					continue // changed too recently, or changing
				}
				pr.EntriesChecked++
				if w.belief[i].Load() != beliefOf(truth) {
					pr.EntriesWrong++
					wrong = true
				}
			}
			if wrong {
				pr.WatcherSamplesWrong++
				w.everWrong = true
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
	for _, w := range r.watchers {
		if w.everWrong {
			pr.WatchersEverWrong++
		}
	}
	if len(r.watchers) > 0 {
		pr.CorrectShare = 1 - float64(pr.WatchersEverWrong)/float64(len(r.watchers))
	}
}

func beliefOf(truth uint64) uint32 {
	if truth&1 != 0 {
		return beliefOn
	}
	return beliefOff
}

// checkAll returns how many watchers are right about every name.
func (r *presenceRun) checkAll() int {
	right := 0
	for _, w := range r.watchers {
		ok := true
		for i, k := range w.watched {
			if w.belief[i].Load() != beliefOf(r.users[k].truth.Load()) {
				ok = false
				break
			}
		}
		if ok {
			right++
		}
	}
	return right
}

// round is a liveness round of the server, as its CHECK lines reached
// every watcher: when the last one had it, and the bench's logins by then.
type round struct {
	at, logins uint64
}

// trackRounds notes each round of the server until stop is closed.
func (r *presenceRun) trackRounds(stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		complete := len(r.watchers) > 0
		for _, w := range r.watchers {
			if w.lastCheck.Load() <= last {
				complete = false
				break
			}
		}
		if complete {
			last = r.now()
			r.roundsMu.Lock()
			r.rounds = append(r.rounds, round{at: last, logins: r.loginsOK.Load()})
			r.roundsMu.Unlock()
		}
	}
}

// settle waits for a liveness round of the server after which it
// collected garbage and returned memory to the system (a messager server
// does when there were settleLogins logins since its previous round),
// running a burst of churn first when too few logins came since; then it
// returns the server's resident memory once that stops falling. The flag
// is false when no such round came within SettleWait.
func (r *presenceRun) settle(ctx context.Context) (uint64, bool) {
	settled := false
	for attempt := 0; attempt < 2 && !settled && ctx.Err() == nil; attempt++ {
		r.roundsMu.Lock()
		seen := len(r.rounds)
		r.roundsMu.Unlock()
		deadline := time.Now().Add(r.cfg.SettleWait)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			r.roundsMu.Lock()
			n := len(r.rounds)
			var k, prev round
			if n > seen {
				k = r.rounds[n-1]
				if n > 1 {
					prev = r.rounds[n-2]
				}
			}
			r.roundsMu.Unlock()
			if n > seen {
				settled = k.logins-prev.logins >= settleLogins
				break
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		if !settled && attempt == 0 && r.burstTime() > time.Second {
			r.burst(ctx)
		}
	}
	var last uint64
	for range 30 {
		s, err := readProc(r.t.pid)
		if err != nil {
			r.errs.add("read server memory: %v", err)
			return 0, false
		}
		if last != 0 && s.RSS+64<<10 >= last && s.RSS <= last+64<<10 {
			return s.RSS, settled
		}
		last = s.RSS
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return last, false
		}
	}
	return last, settled
}

// burst runs the churn for burstTime, outside any measured interval.
func (r *presenceRun) burst(ctx context.Context) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); r.churn(ctx, r.now(), stop) }()
	sleepUntil(ctx, r.now, r.now()+uint64(r.burstTime()))
	close(stop)
	<-done
}

// burstTime is how long the churn runs before the memory is read with
// the watches: long enough for settleLogins logins at the churn's rate.
// A churn too slow for that within maxBurst gets a token second, and the
// memory is then read unsettled.
func (r *presenceRun) burstTime() time.Duration {
	d := time.Duration(float64(settleLogins)/float64(r.cfg.Churn)*float64(time.Second)) + 500*time.Millisecond
	if d > maxBurst {
		return time.Second
	}
	return d
}

const maxBurst = 10 * time.Second

// settleLogins is how many logins since it last did make a messager
// server collect garbage and return memory to the system after its next
// liveness round.
const settleLogins = 1000

func perEntry(before, after uint64, entries int) float64 {
	if before == 0 || after == 0 || entries == 0 {
		return 0
	}
	return (float64(after) - float64(before)) / float64(entries)
}

// churnShare estimates what the churn cost the server and the relay
// ratio the server alone would allow, for when the bench, not the
// server, bounds the relay: the server's CPU per relayed message without
// the churn gives what the relay cost in the churn phase, the rest of
// that phase's CPU is the churn's (in cores), and the server's cores less
// the churn's are what would be left to relay with. The ratio is zero
// when the server's cores are not known.
func churnShare(quiet, churned PresencePhase, cores int) (churnCPU, ratio float64) {
	if quiet.RelayMsgsPerSec == 0 || quiet.ServerCPU == 0 {
		return 0, 0
	}
	perMsg := quiet.ServerCPU / quiet.RelayMsgsPerSec
	churnCPU = max(0, churned.ServerCPU-churned.RelayMsgsPerSec*perMsg)
	if cores == 0 {
		return churnCPU, 0
	}
	return churnCPU, min(1, max(0, (float64(cores)-churnCPU)/float64(cores)))
}

// fillChurn writes the churn phase's presence figures.
func (r *presenceRun) fillChurn(pr *PresenceReport, before, after sample) {
	secs := time.Duration(after.at - before.at).Seconds()
	pr.Logins, pr.Logouts = r.logins.Load(), r.logouts.Load()
	pr.Lines, pr.Names = r.lines.Load(), r.names.Load()
	if secs > 0 {
		pr.LoginsPerSec = float64(pr.Logins) / secs
		pr.LogoutsPerSec = float64(pr.Logouts) / secs
		pr.LinesPerSec = float64(pr.Lines) / secs
		pr.NamesPerSec = float64(pr.Names) / secs
	}
	pr.ChurnFailed = r.churnFailed.Load()
	pr.Delay = summarize(r.delay.merged())
	pr.ChurnLag = summarize(r.lag.merged())
}

func phaseOf(before, after sample) PresencePhase {
	secs := time.Duration(after.at - before.at).Seconds()
	if secs <= 0 {
		return PresencePhase{}
	}
	p := PresencePhase{
		Seconds:         secs,
		RelayMsgsPerSec: float64(after.delivered-before.delivered) / secs,
		BenchCPU:        (after.benchCPU - before.benchCPU).Seconds() / secs,
	}
	if before.serverErr == nil && after.serverErr == nil && after.server.CPU > 0 {
		p.ServerCPU = (after.server.CPU - before.server.CPU).Seconds() / secs
	}
	return p
}

// progress shows the phase once a second, with counts, until the
// returned function is called.
func (r *presenceRun) progress(phase string) (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-tick.C:
				errs, _ := r.errs.snapshot()
				fmt.Fprintf(w, "\r\033[Kbench: %s  presence lines %s  logins %s  errors %d",
					phase, countText(r.lines.Load()), countText(r.logins.Load()), errs)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// closeAll closes the watchers and the churning users' sessions.
func (r *presenceRun) closeAll() {
	if r.closing.Swap(true) {
		return
	}
	var sessions []*session
	for _, w := range r.watchers {
		if w != nil {
			sessions = append(sessions, w.s)
		}
	}
	r.mu.Lock()
	for i := range r.users {
		if s := r.users[i].s; s != nil {
			sessions = append(sessions, s)
			r.users[i].s = nil
		}
	}
	r.mu.Unlock()
	closeSessions(sessions)
	r.readers.Wait()
}

// mergeErrors counts the errors of two logs and keeps their samples.
func mergeErrors(a, b *errorLog) (uint64, []string) {
	n, samples := a.snapshot()
	m, more := b.snapshot()
	samples = append(samples, more...)
	return n + m, samples[:min(len(samples), maxErrorSamples)]
}
