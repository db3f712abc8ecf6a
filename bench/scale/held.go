package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// Row 1: one process, one quorum of one node, holding n leases on distinct names for a few
// renewal ticks.

type heldResult struct {
	Leases      int
	TTL         time.Duration
	Acquire     time.Duration // to obtain all n, 64 at a time
	Release     time.Duration
	Ticks       float64       // length of the measured window, in TTL/3 ticks
	Trips       int64         // round trips in the window (pipelines + commands sent alone)
	Renewals    int64         // renewals in the window (commands inside the pipelines)
	MaxPipe     int64         // the largest pipeline seen during the whole row
	BatchMax    time.Duration // the longest renewal batch in the window (first pipeline sent → last answered)
	BatchMaxAll time.Duration // … during the whole row, acquisition included
	Batches     int           // renewal batches in the window
	PipeMean    time.Duration // mean time of one renewal pipeline in the window, send to answer
	ClientBytes float64       // Go heap per held lease
	RedisBytes  float64       // used_memory per held name
	KeysPerName float64
	KeyUsage    int64 // MEMORY USAGE of one name's keys, summed
	RedisCPU    time.Duration
	ClientCPU   time.Duration
	Lost        int // leases not valid at the end of the window
	Errors      int
	FirstErr    string
	Left        int // keys of the names left after the release
}

// TripsPerTick is the round trips per node per TTL/3 tick, normalized by the renewals seen: each
// held lease is renewed once per tick, so trips/renewals × leases does not depend on how many
// batches the window's edges cut.
func (r heldResult) TripsPerTick() float64 {
	if r.Renewals == 0 {
		return 0
	}
	return float64(r.Trips) / float64(r.Renewals) * float64(r.Leases)
}

// RenewedPerTick is the renewals per tick divided by the leases held: about 1 when every lease is
// renewed once per tick.
func (r heldResult) RenewedPerTick() float64 {
	return float64(r.Renewals) / r.Ticks / float64(r.Leases)
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// heldWorkers is how many goroutines obtain (and release) the leases at once. The tests lower it:
// under the race detector 64 goroutines on 2 cores queue for the CPU past the 250ms node timeout.
var heldWorkers = 64

func runHeld(ctx context.Context, n int, ttl time.Duration, settleTicks, measureTicks int) (heldResult, error) {
	res := heldResult{Leases: n, TTL: ttl}
	p, err := startRedis(ctx)
	if err != nil {
		return res, err
	}
	defer p.stop()
	var tc tripCounter
	q, c, err := newQuorum(ctx, p.addr, heldWorkers+8, ttl, &tc)
	if err != nil {
		return res, err
	}
	defer c.Close()
	closed := false
	defer func() {
		if !closed {
			_ = q.Close(context.Background())
		}
	}()
	tick := ttl / 3
	const pattern = "quorumsync:{h:*"

	// Warm up first: 64 goroutines at once open the client's pool connections (with their
	// buffers, on both sides), which are not a per-lease cost.
	var warmErr atomic.Value
	parallel(10*heldWorkers, heldWorkers, func(i int) {
		l, err := mutex.New(q, "warm:"+strconv.Itoa(i)).Obtain(ctx)
		if err == nil {
			err = l.Release(ctx)
		}
		if err != nil {
			warmErr.Store(err)
		}
	})
	if err, ok := warmErr.Load().(error); ok {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	h0 := heapAfterGC()
	m0, err := infoInt(ctx, p, "memory", "used_memory")
	if err != nil {
		return res, err
	}
	k0, err := p.ctl.DBSize(ctx).Result()
	if err != nil {
		return res, err
	}

	all := &spanLog{}
	tc.spans.Store(all)
	leases := make([]*lease.Lease, n)
	var errs atomic.Int64
	var firstErr atomic.Value
	t := time.Now()
	parallel(n, heldWorkers, func(i int) {
		l, err := mutex.New(q, "h:"+strconv.Itoa(i)).Obtain(ctx)
		if err != nil {
			if errs.Add(1) == 1 {
				firstErr.Store(err.Error())
			}
			return
		}
		leases[i] = l
	})
	res.Acquire = time.Since(t)
	if e := errs.Load(); e > 0 {
		return res, fmt.Errorf("%d of %d leases not obtained; first: %v", e, n, firstErr.Load())
	}

	h1 := heapAfterGC()
	res.ClientBytes = float64(int64(h1)-int64(h0)) / float64(n)
	m1, err := infoInt(ctx, p, "memory", "used_memory")
	if err != nil {
		return res, err
	}
	res.RedisBytes = float64(m1-m0) / float64(n)
	k1, err := p.ctl.DBSize(ctx).Result()
	if err != nil {
		return res, err
	}
	res.KeysPerName = float64(k1-k0) / float64(n)
	keys, err := p.ctl.Keys(ctx, "quorumsync:{h:0}*").Result()
	if err != nil {
		return res, err
	}
	for _, k := range keys {
		u, err := p.ctl.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			return res, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
		}
		res.KeyUsage += u
	}

	// Let the renewals settle into their batches, then count a few ticks.
	sleepUntil(ctx, mono()+int64(settleTicks)*int64(tick))
	s0, c0, w0, m0w := tc.snap(), processCPU(), time.Now(), mono()
	r0, err := serverCPU(ctx, p)
	if err != nil {
		return res, err
	}
	sleepUntil(ctx, mono()+int64(measureTicks)*int64(tick))
	s1, c1, w1, m1w := tc.snap(), processCPU(), time.Now(), mono()
	r1, err := serverCPU(ctx, p)
	if err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	d := s1.sub(s0)
	all.Lock()
	var inWin [][2]int64
	for _, sp := range all.list {
		if sp[0] >= m0w && sp[0] <= m1w {
			inWin = append(inWin, sp)
		}
	}
	for _, b := range bursts(all.list, int64(tick/4)) {
		res.BatchMaxAll = max(res.BatchMaxAll, b)
	}
	all.Unlock()
	if len(inWin) > 0 {
		var sum int64
		for _, sp := range inWin {
			sum += sp[1] - sp[0]
		}
		res.PipeMean = time.Duration(sum / int64(len(inWin)))
	}
	bs := bursts(inWin, int64(tick/4))
	res.Batches = len(bs)
	for _, b := range bs {
		res.BatchMax = max(res.BatchMax, b)
	}
	res.Ticks = float64(w1.Sub(w0)) / float64(tick)
	res.Trips, res.Renewals = d.trips(), d.piped
	res.ClientCPU = time.Duration(float64(c1-c0) / res.Ticks)
	res.RedisCPU = time.Duration(float64(r1-r0) / res.Ticks)
	for _, l := range leases {
		if l.Err() != nil || !l.Valid() {
			res.Lost++
		}
	}

	t = time.Now()
	errs.Store(0)
	parallel(n, heldWorkers, func(i int) {
		if err := leases[i].Release(ctx); err != nil {
			if errs.Add(1) == 1 {
				firstErr.Store(err.Error())
			}
		}
	})
	res.Release = time.Since(t)
	res.Errors = int(errs.Load())
	if res.Errors > 0 {
		res.FirstErr, _ = firstErr.Load().(string)
	}
	res.MaxPipe = tc.maxPipe.Load()
	closed = true
	if err := q.Close(ctx); err != nil {
		return res, fmt.Errorf("close quorum: %w", err)
	}
	if res.Left, err = countKeys(ctx, p, pattern); err != nil {
		return res, err
	}
	return res, nil
}
