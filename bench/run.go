package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
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

	// Handoffs to a goroutine of another client, and to one of the same client.
	handoffCross, handoffLocal handoffFigures

	peak       int64 // most holders inside at once (permits in use, for a semaphore)
	violations int64
	lockErrs   int64
	unlockErrs int64
	firstErr   error

	mallocs   uint64
	bytes     uint64 // runtime.MemStats.TotalAlloc delta
	cmds      map[string]int64
	clientCPU time.Duration // this process (library + harness), user + system
	serverCPU time.Duration // the scenario's redis-servers, user + system
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

// worker is the state of one benchmark goroutine; only that goroutine writes it.
type worker struct {
	id       int
	client   Client
	clientID int
	key      string
	occ      *occupancy // the exclusion check of the worker's key

	acq         int64
	byRole      [numRoles]int64
	lat         hist
	maxWait     time.Duration
	maxWaitRole [numRoles]time.Duration
	peak        int64
	violations  int64
	lockErrs    int64
	unlockErrs  int64
	firstErr    error
	keyBuf      []byte
}

// runOne runs scenario sc with adapter ad for d and measures it. Only this adapter runs meanwhile,
// so the process-wide allocation count and the servers' command counts are its own.
func runOne(parent context.Context, srv *servers, sc scenario, ad Adapter, round int, d time.Duration) (res *runResult, err error) {
	nodes := srv.list[:sc.nodes]
	addrs := srv.addrs(sc.nodes)
	res = &runResult{scenario: sc.name, adapter: ad.Name(), round: round}

	setup, cancelSetup := context.WithTimeout(parent, 30*time.Second)
	defer cancelSetup()
	clients := make([]Client, 0, sc.clients)
	defer func() {
		for _, c := range clients {
			if cerr := c.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("%s: close client: %w", ad.Name(), cerr)
			}
		}
	}()
	for range sc.clients {
		c, err := ad.NewClient(setup, addrs)
		if err != nil {
			return nil, fmt.Errorf("%s: new client: %w", ad.Name(), err)
		}
		clients = append(clients, c)
	}

	prefix := fmt.Sprintf("b:%s:%s:r%d", sc.name, ad.Name(), round)
	sharedOcc := new(occupancy)
	workers := make([]*worker, sc.goroutines)
	for g := range workers {
		w := &worker{id: g, clientID: g % sc.clients, client: clients[g%sc.clients], key: prefix, occ: sharedOcc}
		if sc.keys != keyShared {
			w.key = prefix + ":g" + strconv.Itoa(g)
			w.occ = new(occupancy)
		}
		workers[g] = w
	}

	// Warm-up: open the connections each goroutine will use and get the scripts of every access it
	// will ask for into the servers' caches, so that neither is counted.
	if err := parallel(len(workers), func(g int) error {
		w := workers[g]
		wants := []access{sc.load.access(g, 0)}
		if sc.load.mixed() {
			wants = []access{{mode: shared}, exclusiveAccess}
		}
		for _, want := range wants {
			lk, _ := lockerFor(w.client, prefix+":warm:g"+strconv.Itoa(g), want)
			for range 3 {
				if err := lk.Lock(setup); err != nil {
					return fmt.Errorf("%s: warm-up lock (%v): %w", ad.Name(), want, err)
				}
				if err := lk.Unlock(setup); err != nil {
					return fmt.Errorf("%s: warm-up unlock (%v): %w", ad.Name(), want, err)
				}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := resetStats(setup, nodes); err != nil {
		return nil, err
	}

	var ho *handoffState
	if sc.handoff {
		ho = &handoffState{next: make(chan struct{}), relTurn: -1, holder: -1}
	}
	srvCPU0, err := serverCPU(setup, nodes)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU()
	start := time.Now()
	err = parallel(len(workers), func(g int) error {
		workers[g].loop(ctx, sc, ho)
		return nil
	})
	res.elapsed = time.Since(start)
	res.clientCPU = processCPU() - cpu0
	runtime.ReadMemStats(&after)
	if err != nil {
		return nil, err
	}
	if parent.Err() != nil {
		return nil, parent.Err()
	}
	res.mallocs = after.Mallocs - before.Mallocs
	res.bytes = after.TotalAlloc - before.TotalAlloc

	stats, cancelStats := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer cancelStats()
	srvCPU1, err := serverCPU(stats, nodes)
	if err != nil {
		return nil, err
	}
	res.serverCPU = srvCPU1 - srvCPU0
	if res.cmds, err = commandStats(stats, nodes); err != nil {
		return nil, err
	}

	var lat hist
	for _, w := range workers {
		res.acquisitions += w.acq
		res.perGoroutine = append(res.perGoroutine, w.acq)
		lat.merge(&w.lat)
		res.maxWait = max(res.maxWait, w.maxWait)
		for ro := range numRoles {
			res.byRole[ro] += w.byRole[ro]
			res.maxWaitRole[ro] = max(res.maxWaitRole[ro], w.maxWaitRole[ro])
		}
		res.peak = max(res.peak, w.peak)
		res.violations += w.violations
		res.lockErrs += w.lockErrs
		res.unlockErrs += w.unlockErrs
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
	}
	res.p50, res.p99 = lat.quantile(0.50), lat.quantile(0.99)
	if ho != nil {
		res.handoffCross, res.handoffLocal = ho.cross.figures(), ho.local.figures()
	}
	return res, nil
}

// loop locks, checks exclusion, holds, and unlocks until ctx ends.
func (w *worker) loop(ctx context.Context, sc scenario, ho *handoffState) {
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
	var seq int64
	for i := int64(0); !over(); i++ {
		want := sc.load.access(w.id, i)
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
			w.lockErrs++
			if w.firstErr == nil {
				w.firstErr = fmt.Errorf("lock: %w", err)
			}
			if time.Since(tryStart) < time.Millisecond {
				time.Sleep(time.Millisecond)
			}
		}
		now := time.Now()
		wait := now.Sub(t0)
		w.maxWait = max(w.maxWait, wait)
		w.maxWaitRole[ro] = max(w.maxWaitRole[ro], wait)
		if err != nil {
			break // the round ended while this goroutine waited: not an acquisition
		}
		w.lat.record(wait)
		ok, inside := w.occ.enter(got)
		if !ok {
			w.violations++
		}
		w.peak = max(w.peak, inside)
		var turn int64
		var next chan struct{}
		if ho != nil {
			turn, next = ho.acquired(w.clientID, now)
		}
		if sc.hold > 0 {
			time.Sleep(sc.hold)
		}
		w.occ.leave(got)
		if err := lk.Unlock(uctx); err != nil {
			w.unlockErrs++
			if w.firstErr == nil {
				w.firstErr = fmt.Errorf("unlock: %w", err)
			}
		}
		w.acq++
		w.byRole[ro]++
		if ho != nil {
			ho.released(turn, time.Now())
			// Do not compete for the lock just released: wait until someone else holds it.
			select {
			case <-next:
			case <-ctx.Done():
			}
		}
	}
}

// handoffState measures handoff latency: the time from one holder's Unlock returning to the next
// holder's Lock returning. Each acquisition opens a turn; a handoff is to another client when the
// new holder's client is not the previous holder's, and local otherwise (another goroutine of the
// same client). If the next Lock returns before the previous Unlock has (the servers had already
// let the lock go), the handoff counts as 0 and as "early".
type handoffState struct {
	mu       sync.Mutex
	turn     int64
	holder   int           // the client of the current turn's holder
	next     chan struct{} // closed when the turn after the current one starts
	relTurn  int64         // the last turn whose Unlock has returned
	relAt    time.Time
	pendTurn int64 // a turn whose acquisition came before the previous turn's release
	pendX    bool  // whether that pending turn's handoff is to another client
	cross    handoffHist
	local    handoffHist
}

type handoffHist struct {
	lat   hist
	early int64
}

func (h *handoffHist) figures() handoffFigures {
	return handoffFigures{n: h.lat.n, early: h.early, mean: h.lat.mean(), p99: h.lat.quantile(0.99)}
}

func (h *handoffState) hist(cross bool) *handoffHist {
	if cross {
		return &h.cross
	}
	return &h.local
}

// acquired opens a new turn for client at time at; it returns the turn and a channel closed when
// the next turn opens.
func (h *handoffState) acquired(client int, at time.Time) (int64, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.turn++
	cross := h.holder != client
	h.holder = client
	if h.turn > 1 {
		if h.relTurn == h.turn-1 {
			h.hist(cross).lat.record(at.Sub(h.relAt))
		} else {
			h.pendTurn, h.pendX = h.turn, cross
		}
	}
	close(h.next)
	h.next = make(chan struct{})
	return h.turn, h.next
}

// released records that the Unlock of turn returned at time at.
func (h *handoffState) released(turn int64, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.relTurn, h.relAt = turn, at
	if h.pendTurn == turn+1 {
		hh := h.hist(h.pendX)
		hh.lat.record(0)
		hh.early++
		h.pendTurn = 0
	}
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
