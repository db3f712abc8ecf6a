package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"
)

// runResult holds the figures of one adapter running one scenario for one round.
type runResult struct {
	scenario string
	adapter  string
	round    int

	elapsed      time.Duration
	acquisitions int64
	perGoroutine []int64
	byRole       [numRoles]int64 // acquisitions that asked for a read lock, and the others

	p50, p99    time.Duration           // acquire latency: Lock called → Lock returned, retries after errors included
	maxWait     time.Duration           // longest wait, including a wait still unfinished when the round ended
	maxWaitRole [numRoles]time.Duration // the same, per role

	// In the scenarios that record turns (scenario.turns): handoffs to a goroutine of another
	// client, and to one of the same client; and the lock's idle time between two holders.
	handoffCross, handoffLocal handoffFigures
	idle                       handoffFigures // early is always 0

	peak       int64 // most holders inside at once (permits in use, for a semaphore)
	violations int64
	lockErrs   int64
	unlockErrs int64
	firstErr   error

	mallocs   uint64 // summed over the clients' processes, as is bytes
	bytes     uint64 // runtime.MemStats.TotalAlloc delta
	cmds      map[string]int64
	clientCPU time.Duration // the clients' processes (library + harness), user + system
	serverCPU time.Duration // the scenario's redis-servers, user + system

	processes int           // the OS processes the clients ran in: 1 (this one) or one each
	startLag  time.Duration // how late the last client began after the common start instant
}

func (r *runResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.acquisitions) / r.elapsed.Seconds()
}

// handoffFigures summarise the handoffs of one kind in a run.
type handoffFigures struct {
	n, early  int64 // early: the next holder's Lock returned before the previous Unlock did
	mean, p99 time.Duration
}

// fig is d as a figure, NaN when there was no handoff of this kind.
func (h handoffFigures) fig(d time.Duration) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	return float64(d)
}

func (r *runResult) allocsPerOp() float64 { return perAcq(float64(r.mallocs), r.acquisitions) }
func (r *runResult) bytesPerOp() float64  { return perAcq(float64(r.bytes), r.acquisitions) }

// secPerOp is the round's wall time per acquisition: for one goroutine, the time of one
// acquire+release.
func (r *runResult) secPerOp() float64 { return perAcq(r.elapsed.Seconds(), r.acquisitions) }

func (r *runResult) roleOpsPerSec(ro role) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.byRole[ro]) / r.elapsed.Seconds()
}

// clientCPUPerOp and serverCPUPerOp are in ns per acquisition.
func (r *runResult) clientCPUPerOp() float64 { return perAcq(float64(r.clientCPU), r.acquisitions) }
func (r *runResult) serverCPUPerOp() float64 { return perAcq(float64(r.serverCPU), r.acquisitions) }

func perAcq(x float64, acq int64) float64 {
	if acq == 0 {
		return 0
	}
	return x / float64(acq)
}

func (r *runResult) cmdsPerAcq() float64 {
	if r.acquisitions == 0 {
		return 0
	}
	var n int64
	for name, c := range r.cmds {
		if !notCounted[name] {
			n += c
		}
	}
	return float64(n) / float64(r.acquisitions)
}

// mostFewest returns the most and the fewest acquisitions any goroutine got.
func (r *runResult) mostFewest() (most, fewest int64) {
	for i, n := range r.perGoroutine {
		if i == 0 || n < fewest {
			fewest = n
		}
		most = max(most, n)
	}
	return most, fewest
}

// fairness returns most/fewest acquisitions over the goroutines (+Inf when one starved) and how
// many goroutines got none.
func (r *runResult) fairness() (ratio float64, starved int) {
	for _, n := range r.perGoroutine {
		if n == 0 {
			starved++
		}
	}
	hi, lo := r.mostFewest()
	if lo <= 0 {
		if hi == 0 {
			return 0, starved
		}
		return inf, starved
	}
	return float64(hi) / float64(lo), starved
}

// tally is what one benchmark goroutine counted. A child process sends its goroutines' tallies to
// the harness as JSON, hence the exported fields.
type tally struct {
	ID          int // the goroutine's index in the scenario
	Acq         int64
	ByRole      [numRoles]int64
	Lat         hist
	MaxWait     time.Duration
	MaxWaitRole [numRoles]time.Duration
	Peak        int64
	Violations  int64
	LockErrs    int64
	UnlockErrs  int64
	FirstErr    string
}

// worker is one benchmark goroutine; only that goroutine writes it.
type worker struct {
	tally
	client   Client
	clientID int
	key      string
	occ      occupancy // the exclusion check of the worker's key
	keyBuf   []byte
}

// clientReport is one client's part of a run: its goroutines' tallies and its process's figures
// over the measured window.
type clientReport struct {
	Workers []tally
	Mallocs uint64
	Bytes   uint64
	CPU     time.Duration
	Began   int64 // machine-wide clock (monoNow): when its goroutines began…
	Ended   int64 // …and when the last of them returned
	Pid     int
}

const (
	// setupTimeout bounds the clients' set-up: starting, connecting and warming up.
	setupTimeout = 30 * time.Second
	// startLead is how far ahead of the start message the clients' common start instant lies, so
	// that every client has read it before the instant comes.
	startLead = 5 * time.Millisecond
)

// runOne runs scenario sc with adapter ad for d and measures it. Only this adapter runs meanwhile,
// so the allocation and CPU figures of its clients' processes and the servers' command counts are
// its own. The one client of a single-client scenario runs in this process; with several, each
// client is a child process of its own (see child.go). Every client connects and warms up, then
// all begin at one instant of the machine-wide clock and stop at one deadline, and share the
// exclusion checks and the turn records through the run's arena.
func runOne(parent context.Context, srv *servers, sc scenario, ad Adapter, round int, d time.Duration) (*runResult, error) {
	nodes := srv.list[:sc.nodes]
	ar, err := newArena(shapeOf(sc, d))
	if err != nil {
		return nil, err
	}
	defer ar.close()
	p := plan{Adapter: ad.Name(), Scenario: wireOf(sc), Addrs: srv.addrs(sc.nodes),
		Prefix: fmt.Sprintf("b:%s:%s:r%d", sc.name, ad.Name(), round), Duration: d}
	clients, err := startClients(parent, p, ad, ar)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range clients {
			c.stop()
		}
	}()

	setup, cancelSetup := context.WithTimeout(parent, setupTimeout)
	defer cancelSetup()
	for _, c := range clients {
		if err := c.ready(setup); err != nil {
			return nil, err
		}
	}
	if err := resetStats(setup, nodes); err != nil {
		return nil, err
	}
	srvCPU0, err := serverCPU(setup, nodes)
	if err != nil {
		return nil, err
	}
	start := monoNow() + int64(startLead)
	for _, c := range clients {
		if err := c.start(start, start+int64(d)); err != nil {
			return nil, err
		}
	}
	wait, cancelWait := context.WithTimeout(parent, startLead+d+setupTimeout)
	defer cancelWait()
	reps := make([]*clientReport, len(clients))
	for i, c := range clients {
		if reps[i], err = c.report(wait); err != nil {
			return nil, err
		}
	}
	if parent.Err() != nil {
		return nil, parent.Err()
	}

	// The servers' figures are read while the clients are still open, as nothing a library does
	// when it closes belongs to its cost per lock; then they may close.
	stats, cancelStats := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer cancelStats()
	srvCPU1, err := serverCPU(stats, nodes)
	if err != nil {
		return nil, err
	}
	res := &runResult{scenario: sc.name, adapter: ad.Name(), round: round, serverCPU: srvCPU1 - srvCPU0}
	if res.cmds, err = commandStats(stats, nodes); err != nil {
		return nil, err
	}
	for _, c := range clients {
		if err := c.finish(wait); err != nil {
			return nil, err
		}
	}
	res.merge(reps, start)
	if sc.turns() {
		res.handoffCross, res.handoffLocal, res.idle = ar.turnFigures()
	}
	return res, nil
}

// merge adds up the clients' reports; start is their common start instant.
func (r *runResult) merge(reps []*clientReport, start int64) {
	var ts []*tally
	pids := map[int]bool{}
	began, lastBegan, ended := reps[0].Began, reps[0].Began, reps[0].Ended
	for _, rep := range reps {
		for i := range rep.Workers {
			ts = append(ts, &rep.Workers[i])
		}
		r.mallocs += rep.Mallocs
		r.bytes += rep.Bytes
		r.clientCPU += rep.CPU
		began, lastBegan, ended = min(began, rep.Began), max(lastBegan, rep.Began), max(ended, rep.Ended)
		pids[rep.Pid] = true
	}
	r.elapsed = time.Duration(ended - began)
	r.startLag = time.Duration(lastBegan - start)
	r.processes = len(pids)
	slices.SortFunc(ts, func(a, b *tally) int { return a.ID - b.ID })

	var lat hist
	for _, t := range ts {
		r.acquisitions += t.Acq
		r.perGoroutine = append(r.perGoroutine, t.Acq)
		lat.merge(&t.Lat)
		r.maxWait = max(r.maxWait, t.MaxWait)
		for ro := range numRoles {
			r.byRole[ro] += t.ByRole[ro]
			r.maxWaitRole[ro] = max(r.maxWaitRole[ro], t.MaxWaitRole[ro])
		}
		r.peak = max(r.peak, t.Peak)
		r.violations += t.Violations
		r.lockErrs += t.LockErrs
		r.unlockErrs += t.UnlockErrs
		if r.firstErr == nil && t.FirstErr != "" {
			r.firstErr = errors.New(t.FirstErr)
		}
	}
	r.p50, r.p99 = lat.quantile(0.50), lat.quantile(0.99)
}

// handshake is how a client talks with the harness: channels for a client in this process, pipes
// for a child process.
type handshake interface {
	signalReady() error
	// awaitStart returns the start instant and the deadline, on the machine-wide clock.
	awaitStart(ctx context.Context) (start, deadline int64, err error)
	sendReport(rep *clientReport) error
	// awaitClose returns when the harness has read the servers' figures: the client may close.
	awaitClose(ctx context.Context)
}

// runClient is one client's life in a run: connect, warm up, say it is ready, wait for the start
// instant, run its goroutines until the deadline, report, and close when the harness says so.
func runClient(ctx context.Context, p plan, ad Adapter, ar *arena, hs handshake) (err error) {
	sc := p.Scenario.scenario()
	setup, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	c, err := ad.NewClient(setup, p.Addrs)
	if err != nil {
		return fmt.Errorf("%s: new client: %w", ad.Name(), err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close client: %w", ad.Name(), cerr)
		}
	}()
	workers := p.workers(sc, c, ar)
	if err := warmUp(setup, sc, ad.Name(), p.Prefix, workers); err != nil {
		return err
	}
	// The readings before the run are taken before the ready signal, so that nothing heavier than
	// a clock read lies between the start instant and the goroutines' start: every client's
	// ReadMemStats stopping its world at that instant, with more clients than cores, delayed
	// some by milliseconds. The wait for the start allocates nothing but the run's ctx, and
	// takes no CPU but the wake-ups.
	rep := &clientReport{Pid: os.Getpid()}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU()
	if err := hs.signalReady(); err != nil {
		return err
	}
	start, deadline, err := hs.awaitStart(ctx)
	if err != nil {
		return err
	}
	run, cancel := context.WithDeadline(ctx, monoTime(deadline))
	defer cancel()
	time.Sleep(time.Duration(start - monoNow()))
	rep.Began = monoNow()
	err = parallel(len(workers), func(i int) error {
		workers[i].loop(run, sc, ar)
		return nil
	})
	rep.Ended = monoNow()
	rep.CPU = processCPU() - cpu0
	runtime.ReadMemStats(&after)
	if err != nil {
		return err
	}
	rep.Mallocs, rep.Bytes = after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
	for _, w := range workers {
		rep.Workers = append(rep.Workers, w.tally)
	}
	if err := hs.sendReport(rep); err != nil {
		return err
	}
	hs.awaitClose(ctx)
	return nil
}

// workers returns the goroutines of client p.Client: goroutine g belongs to client g % clients.
func (p plan) workers(sc scenario, c Client, ar *arena) []*worker {
	var ws []*worker
	for g := p.Client; g < sc.goroutines; g += sc.clients {
		w := &worker{tally: tally{ID: g}, client: c, clientID: p.Client, key: p.Prefix, occ: ar.occupancy(0)}
		if sc.keys != keyShared {
			w.key, w.occ = p.Prefix+":g"+strconv.Itoa(g), ar.occupancy(1+g)
		}
		ws = append(ws, w)
	}
	return ws
}

// warmUp opens the connections each goroutine will use and gets the scripts of every access it
// will ask for into the servers' caches, so that neither is counted.
func warmUp(ctx context.Context, sc scenario, adapter, prefix string, workers []*worker) error {
	return parallel(len(workers), func(i int) error {
		w := workers[i]
		wants := []access{sc.load.access(w.ID, 0)}
		if sc.load.mixed() {
			wants = []access{{mode: shared}, exclusiveAccess}
		}
		for _, want := range wants {
			lk, _ := lockerFor(w.client, prefix+":warm:g"+strconv.Itoa(w.ID), want)
			for range 3 {
				if err := lk.Lock(ctx); err != nil {
					return fmt.Errorf("%s: warm-up lock (%v): %w", adapter, want, err)
				}
				if err := lk.Unlock(ctx); err != nil {
					return fmt.Errorf("%s: warm-up unlock (%v): %w", adapter, want, err)
				}
			}
		}
		return nil
	})
}

// loop locks, checks exclusion, holds, and unlocks until ctx ends. Where the scenario records
// turns, each acquisition opens one in the arena and records it once Unlock has returned; in the
// handoff scenarios the goroutine then waits until someone else has acquired before it locks
// again.
func (w *worker) loop(ctx context.Context, sc scenario, ar *arena) {
	// Unlock gets a ctx that the end of the round does not cancel: a held lock is always released.
	uctx := context.WithoutCancel(ctx)
	// One Locker per role, made when first needed (a new one per acquisition with keyPerOp), with
	// the access it grants.
	var lockers [numRoles]Locker
	var grants [numRoles]access
	// The round is over at its deadline even if ctx has not noticed yet: a socket deadline taken
	// from ctx can fire (an i/o timeout) a moment before ctx.Err() turns non-nil, and that error
	// is the end of the round, not a failure of the library.
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	turns := sc.turns()
	var seq int64
	for i := int64(0); !over(); i++ {
		want := sc.load.access(w.ID, i)
		ro := roleWrite
		if want.mode == shared {
			ro = roleRead
		}
		if sc.keys == keyPerOp {
			seq++
			w.keyBuf = strconv.AppendInt(append(append(w.keyBuf[:0], w.key...), ':'), seq, 10)
			lockers[ro], grants[ro] = lockerFor(w.client, string(w.keyBuf), want)
		} else if lockers[ro] == nil {
			lockers[ro], grants[ro] = lockerFor(w.client, w.key, want)
		}
		lk, got := lockers[ro], grants[ro]
		t0 := time.Now()
		var err error
		for {
			tryStart := time.Now()
			if err = lk.Lock(ctx); err == nil || over() {
				break
			}
			// A library that gives up (redsync's default 32 tries) or fails: count it and try
			// again, as a caller that needs the lock would; never spin on an instant error.
			w.LockErrs++
			if w.FirstErr == "" {
				w.FirstErr = "lock: " + err.Error()
			}
			if time.Since(tryStart) < time.Millisecond {
				time.Sleep(time.Millisecond)
			}
		}
		now := time.Now()
		wait := now.Sub(t0)
		w.MaxWait = max(w.MaxWait, wait)
		w.MaxWaitRole[ro] = max(w.MaxWaitRole[ro], wait)
		if err != nil {
			break // the round ended while this goroutine waited: not an acquisition
		}
		w.Lat.record(wait)
		ok, inside := w.occ.enter(got)
		if !ok {
			w.Violations++
		}
		w.Peak = max(w.Peak, inside)
		var turn uint32
		if turns {
			turn = ar.openTurn(sc.handoff)
		}
		if sc.hold > 0 {
			time.Sleep(sc.hold)
		}
		var left int64
		if turns {
			left = monoNow()
		}
		w.occ.leave(got)
		if err := lk.Unlock(uctx); err != nil {
			w.UnlockErrs++
			if w.FirstErr == "" {
				w.FirstErr = "unlock: " + err.Error()
			}
		}
		if turns {
			ar.record(turn, turnRecord{client: int64(w.clientID), locked: monoOf(now), left: left, unlocked: monoNow()})
		}
		w.Acq++
		w.ByRole[ro]++
		if sc.handoff {
			// Do not compete for the lock just released: wait until someone else holds it.
			ar.awaitTurnAfter(ctx, turn)
		}
	}
}

// handoffHist gathers the handoffs of one kind in a run (see arena.turnFigures).
type handoffHist struct {
	lat   hist
	early int64
}

func (h *handoffHist) figures() handoffFigures {
	return handoffFigures{n: h.lat.n, early: h.early, mean: h.lat.mean(), p99: h.lat.quantile(0.99)}
}

// parallel runs f(0..n-1) in n goroutines and waits for all. A panic in one of them is recovered
// and returned as an error, so that the caller's cleanup (killing the servers) still runs.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("panic in goroutine %d: %v\n%s", i, p, debug.Stack())
				}
			}()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
