package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
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

	p50, p99 time.Duration // acquire latency: Lock called → Lock returned, retries after errors included
	maxWait  time.Duration // longest wait, including a wait still unfinished when the round ended

	handoffs               int64
	handoffMean, handoffP9 time.Duration
	handoffEarly           int64 // next holder's Lock returned before the previous Unlock did

	violations int64
	lockErrs   int64
	unlockErrs int64
	firstErr   error

	mallocs   uint64
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

func (r *runResult) allocsPerOp() float64 {
	if r.acquisitions == 0 {
		return 0
	}
	return float64(r.mallocs) / float64(r.acquisitions)
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

// fairness returns max/min acquisitions over the goroutines (+Inf when one starved) and how many
// goroutines got none.
func (r *runResult) fairness() (ratio float64, starved int) {
	lo, hi := int64(-1), int64(0)
	for _, n := range r.perGoroutine {
		if n == 0 {
			starved++
		}
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
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
	inCS     *atomic.Int32

	acq        int64
	lat        hist
	maxWait    time.Duration
	violations int64
	lockErrs   int64
	unlockErrs int64
	firstErr   error
	keyBuf     []byte
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
	shared := new(atomic.Int32)
	workers := make([]*worker, sc.goroutines)
	for g := range workers {
		w := &worker{id: g, clientID: g % sc.clients, client: clients[g%sc.clients], key: prefix, inCS: shared}
		if sc.keys != keyShared {
			w.key = prefix + ":g" + strconv.Itoa(g)
			w.inCS = new(atomic.Int32)
		}
		workers[g] = w
	}

	// Warm-up: open the connections each goroutine will use and get the scripts into the servers'
	// caches, so that neither is counted.
	if err := parallel(len(workers), func(g int) error {
		w := workers[g]
		lk := w.client.NewLocker(prefix + ":warm:g" + strconv.Itoa(g))
		for range 3 {
			if err := lk.Lock(setup); err != nil {
				return fmt.Errorf("%s: warm-up lock: %w", ad.Name(), err)
			}
			if err := lk.Unlock(setup); err != nil {
				return fmt.Errorf("%s: warm-up unlock: %w", ad.Name(), err)
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
		ho = &handoffState{next: make(chan struct{}), relTurn: -1}
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
		res.violations += w.violations
		res.lockErrs += w.lockErrs
		res.unlockErrs += w.unlockErrs
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
	}
	res.p50, res.p99 = lat.quantile(0.50), lat.quantile(0.99)
	if ho != nil {
		res.handoffs = ho.lat.n
		res.handoffMean, res.handoffP9 = ho.lat.mean(), ho.lat.quantile(0.99)
		res.handoffEarly = ho.early
	}
	return res, nil
}

// loop locks, checks exclusion, holds, and unlocks until ctx ends.
func (w *worker) loop(ctx context.Context, sc scenario, ho *handoffState) {
	// Unlock gets a ctx that the end of the round does not cancel: a held lock is always released.
	uctx := context.WithoutCancel(ctx)
	var lk Locker
	if sc.keys != keyPerOp {
		lk = w.client.NewLocker(w.key)
	}
	// The round is over at its deadline even if ctx has not noticed yet: a socket deadline taken
	// from ctx can fire (an i/o timeout) a moment before ctx.Err() turns non-nil, and that error
	// is the end of the round, not a failure of the library.
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	var seq int64
	for !over() {
		if sc.keys == keyPerOp {
			seq++
			w.keyBuf = strconv.AppendInt(append(append(w.keyBuf[:0], w.key...), ':'), seq, 10)
			lk = w.client.NewLocker(string(w.keyBuf))
		}
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
		if err != nil {
			break // the round ended while this goroutine waited: not an acquisition
		}
		w.lat.record(wait)
		if w.inCS.Add(1) != 1 {
			w.violations++
		}
		var turn int64
		var next chan struct{}
		if ho != nil {
			turn, next = ho.acquired(w.clientID, now)
		}
		if sc.hold > 0 {
			time.Sleep(sc.hold)
		}
		w.inCS.Add(-1)
		if err := lk.Unlock(uctx); err != nil {
			w.unlockErrs++
			if w.firstErr == nil {
				w.firstErr = fmt.Errorf("unlock: %w", err)
			}
		}
		w.acq++
		if ho != nil {
			ho.released(turn, time.Now())
			// Do not compete for the lock just released: wait until another client holds it.
			select {
			case <-next:
			case <-ctx.Done():
			}
		}
	}
}

// handoffState measures handoff latency: the time from one holder's Unlock returning to the next
// holder's Lock returning, in another client. Each acquisition opens a turn. If the next Lock
// returns before the previous Unlock has (the servers had already let the lock go), the handoff
// counts as 0 and as "early".
type handoffState struct {
	mu         sync.Mutex
	turn       int64
	holder     int
	next       chan struct{} // closed when the turn after the current one starts
	relTurn    int64         // the last turn whose Unlock has returned
	relAt      time.Time
	pendTurn   int64 // a turn whose acquisition came before the previous turn's release
	pendAt     time.Time
	lat        hist
	early      int64
	sameClient int64
}

// acquired opens a new turn for client at time at; it returns the turn and a channel closed when
// the next turn opens.
func (h *handoffState) acquired(client int, at time.Time) (int64, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.turn++
	prev := h.holder
	h.holder = client
	if h.turn > 1 {
		switch {
		case prev == client:
			h.sameClient++ // cannot happen by construction; kept as a check
		case h.relTurn == h.turn-1:
			h.lat.record(at.Sub(h.relAt))
		default:
			h.pendTurn, h.pendAt = h.turn, at
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
		h.lat.record(0)
		h.early++
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
