package main

import (
	"context"
	"math"
	"os"
	"testing"
	"time"
)

// The tests run the quick variants of the rows and check what must hold whatever the figures.
// They need redis-server and redis-cli in PATH and fail without them. Children of rows 2 and 3 are
// this test binary started again (TestMain hands them to childMain).

func TestMain(m *testing.M) {
	if js := os.Getenv(childEnv); js != "" {
		os.Exit(childMain(js))
	}
	if err := checkTools(); err != nil {
		println(err.Error())
		os.Exit(1)
	}
	code := m.Run()
	killAll()
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Row 1: every lease held through the renewal ticks and released, no key left, and one round
// trip per 2,000 renewals.
func TestHeldLeases(t *testing.T) {
	ctx := testCtx(t)
	heldWorkers = 16
	defer func() { heldWorkers = 64 }()
	for _, n := range []int{100, 3000} {
		r, err := runHeld(ctx, n, 3*time.Second, 1, 2)
		if err != nil {
			t.Fatalf("%d leases: %v", n, err)
		}
		if r.Lost != 0 || r.Errors != 0 || r.Left != 0 {
			t.Errorf("%d leases: %d lost, %d release errors (%s), %d keys left", n, r.Lost, r.Errors, r.FirstErr, r.Left)
		}
		if r.Renewals == 0 || r.KeysPerName != 1 {
			t.Errorf("%d leases: %d renewals in the window, %v keys per name", n, r.Renewals, r.KeysPerName)
		}
		if want := math.Ceil(float64(n) / 2000); r.TripsPerTick() > want+1 || r.MaxPipe > 2000 {
			t.Errorf("%d leases: %.2f round trips per tick (want about %v), largest pipeline %d", n, r.TripsPerTick(), want, r.MaxPipe)
		}
	}
}

// Row 2: every waiter acquires, never two at once (shared counter and timestamps), nothing left,
// one PUBLISH per release.
func TestWaiters(t *testing.T) {
	ctx := testCtx(t)
	p, err := startRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	for _, n := range []int{1, 12} {
		r, err := runWaiters(ctx, p, waitersPlan{Waiters: n, TTL: 10 * time.Second, Hold: time.Millisecond,
			Warm: 300 * time.Millisecond, Window: time.Second, MaxWin: 20 * time.Second})
		if err != nil {
			t.Fatalf("%d waiters: %v", n, err)
		}
		if r.Ever != n || r.Acqs == 0 || r.Violations != 0 || r.Overlaps != 0 || r.Left != 0 {
			t.Errorf("%d waiters: %d served, %d acquisitions in the window, %d violations, %d overlaps (largest %v), %d keys left",
				n, r.Ever, r.Acqs, r.Violations, r.Overlaps, time.Duration(r.OverlapNs), r.Left)
		}
		if n > 1 && (r.Wakes == 0 || r.per(r.Publishes, r.Releases) > 1.1 || r.Procs != 8) {
			t.Errorf("%d waiters: %d wake-ups, %.2f PUBLISH per release, %d processes", n, r.Wakes, r.per(r.Publishes, r.Releases), r.Procs)
		}
	}
}

// The checks catch two holders at once: a "lock" that excludes nobody, in 2 processes × 2
// goroutines, must be caught by both the shared counter and the timestamps.
func TestExclusionCheckCatchesOverlap(t *testing.T) {
	ctx := testCtx(t)
	p, err := startRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	r, err := runContend(ctx, p, contendPlan{Procs: 2, Goroutines: 2, Hold: time.Millisecond, Warm: 100 * time.Millisecond, Window: 300 * time.Millisecond}, "none")
	if err != nil {
		t.Fatal(err)
	}
	if r.Violations == 0 || r.Overlaps == 0 {
		t.Fatalf("a lock that excludes nobody went unnoticed: %d violations, %d overlaps in %d acquisitions", r.Violations, r.Overlaps, r.Acqs)
	}
}

// Rows 3 and 4 in small: both locks exclude, and a 2-shard cluster spreads the names.
func TestContendAndCluster(t *testing.T) {
	ctx := testCtx(t)
	rs, err := runContendRows(ctx, []int{3}, 1, contendPlan{Goroutines: 2, Hold: time.Millisecond, Warm: 100 * time.Millisecond, Window: 500 * time.Millisecond}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	for lib, runs := range rs[0].Runs {
		for _, r := range runs {
			if r.Acqs == 0 || r.Violations != 0 || r.Overlaps != 0 || r.Left != 0 {
				t.Errorf("%s: %d acquisitions, %d violations, %d overlaps (largest %v), %d keys left", lib, r.Acqs, r.Violations, r.Overlaps, time.Duration(r.OverlapNs), r.Left)
			}
		}
	}
	c, err := runCluster(ctx, 2, 500, 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.Errors != 0 || c.Left != 0 || len(c.Calls) != 2 {
		t.Fatalf("cluster: %d errors (%s), %d keys left, %d shards counted", c.Errors, c.FirstErr, c.Left, len(c.Calls))
	}
	for i, s := range c.shares() {
		if s < 35 || s > 65 {
			t.Errorf("cluster: shard %d has %.1f%% of the commands", i, s)
		}
	}
}
