package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Row 3: procs processes contending for one name, each with one lease.Quorum (go-redis's default
// pool) and 2 goroutines, each its own mutex.New(q, name), looping Lock → 1ms hold → Unlock; and
// the raw baseline (SET NX PX retried every 1ms, compare-and-delete) with the same processes and
// goroutines, in the same run, interleaved.

type contendPlan struct {
	Procs      int
	Goroutines int
	Hold       time.Duration
	Warm       time.Duration
	Window     time.Duration
}

type contendRun struct {
	Lib        string
	Ops        float64 // acquisitions per second in the window
	Acqs       int
	Trips      int64
	WorstWait  time.Duration // the longest Lock call that returned in the window
	Wait99     time.Duration
	Fewest     int
	Most       int
	Violations int
	Overlaps   int
	OverlapNs  int64           // the largest overlap, for the error
	TopWaits   []time.Duration // the 5 longest Lock calls, for the progress line
	Errors     int
	FirstErr   string
	Left       int
}

func runContend(ctx context.Context, p *redisProc, pl contendPlan, lib string) (contendRun, error) {
	res := contendRun{Lib: lib}
	sh, shmPath, done, err := newShm()
	if err != nil {
		return res, err
	}
	defer done()
	name := fmt.Sprintf("c%d", pl.Procs)
	base := childSpec{Lib: lib, Addr: p.addr, Name: name, Goroutines: pl.Goroutines, TTL: 10 * time.Second,
		Hold: pl.Hold, Shm: shmPath}
	specs := spread(base, pl.Procs, pl.Procs)
	var from, to int64
	results, err := runChildren(ctx, specs, sh, func(start int64) error {
		sleepUntil(ctx, start+int64(pl.Warm))
		from = mono()
		sh.phase().Store(phaseWindow)
		sleepUntil(ctx, from+int64(pl.Window))
		to = mono()
		return ctx.Err()
	})
	if err != nil {
		return res, err
	}
	var all [][4]int64
	for _, r := range results {
		all = append(all, r.Acqs...)
		res.Trips += r.Single + r.Pipes
		res.Errors += r.Errors
		if res.FirstErr == "" {
			res.FirstErr = r.FirstErr
		}
	}
	st := analyze(all, pl.Procs*pl.Goroutines, from, to)
	res.Acqs, res.Overlaps, res.OverlapNs = st.InWindow, st.Overlaps, st.OverlapNs
	res.Ops = float64(st.InWindow) / st.Span.Seconds()
	if len(st.Waits) > 0 {
		res.WorstWait = time.Duration(slices.Max(st.Waits))
	}
	res.Wait99 = pct(st.Waits, 99)
	waits := slices.Clone(st.Waits)
	slices.Sort(waits)
	for i := len(waits) - 1; i >= 0 && i >= len(waits)-5; i-- {
		res.TopWaits = append(res.TopWaits, time.Duration(waits[i]).Round(time.Millisecond))
	}
	res.Fewest, res.Most = minMax(st.PerLocker)
	res.Violations = int(sh.violations().Load())
	pattern := "quorumsync:{" + name + "}*"
	if lib != "quorumsync" {
		pattern = lib + ":" + name
	}
	if res.Left, err = countKeys(ctx, p, pattern); err != nil {
		return res, err
	}
	return res, nil
}

// contendResult is one size of row 3: every round of both locks.
type contendResult struct {
	contendPlan
	Runs map[string][]contendRun
}

func (c contendResult) median(lib string) float64 {
	var xs []float64
	for _, r := range c.Runs[lib] {
		xs = append(xs, r.Ops)
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func (c contendResult) worst(lib string) (w, p99 time.Duration) {
	for _, r := range c.Runs[lib] {
		w, p99 = max(w, r.WorstWait), max(p99, r.Wait99)
	}
	return w, p99
}

func (c contendResult) sum(lib string, f func(contendRun) int) int {
	n := 0
	for _, r := range c.Runs[lib] {
		n += f(r)
	}
	return n
}

func (c contendResult) tripsPerAcq(lib string) float64 {
	var t int64
	var a int
	for _, r := range c.Runs[lib] {
		t += r.Trips
		a += r.Acqs
	}
	if a == 0 {
		return 0
	}
	return float64(t) / float64(a)
}

// runContendRows runs every size, rounds times, quorumsync and raw back to back in an order that
// alternates by round, on one server.
func runContendRows(ctx context.Context, sizes []int, rounds int, pl contendPlan, progress func(string)) ([]contendResult, error) {
	p, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	out := make([]contendResult, len(sizes))
	for i, n := range sizes {
		out[i] = contendResult{contendPlan: pl, Runs: map[string][]contendRun{}}
		out[i].Procs = n
	}
	for round := range rounds {
		for i := range sizes {
			libs := []string{"quorumsync", "raw"}
			if (round+i)%2 == 1 {
				libs = []string{"raw", "quorumsync"}
			}
			for _, lib := range libs {
				r, err := runContend(ctx, p, out[i].contendPlan, lib)
				if err != nil {
					return nil, fmt.Errorf("contend %d procs, %s: %w", sizes[i], lib, err)
				}
				progress(fmt.Sprintf("row 3: round %d, %d processes, %s: %.0f acq/s, longest waits %v", round+1, sizes[i], lib, r.Ops, r.TopWaits))
				out[i].Runs[lib] = append(out[i].Runs[lib], r)
			}
		}
	}
	return out, nil
}
