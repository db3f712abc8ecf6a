package engine_test

// Passing a claim from goroutine to goroutine of one process (a direct FIFO handoff), bounded
// by the handoff budget so that other processes are served in turn.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// contend runs goroutines of q in a Acquire/Release loop on name for d and returns how many
// acquisitions each made; inside counts holders at once (exclusion).
func contend(t *testing.T, qs []*engine.Quorum, goroutines int, name string, d time.Duration) []int {
	t.Helper()
	counts := make([]int, goroutines)
	var inside, most atomic.Int32
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				l, err := qs[g%len(qs)].Acquire(context.Background(), name)
				if !assert.NoError(t, err) {
					return
				}
				if n := inside.Add(1); n > most.Load() {
					most.Store(n)
				}
				counts[g]++
				inside.Add(-1)
				if !assert.NoError(t, l.Release(context.Background())) {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, most.Load(), "holders at once")
	return counts
}

func sum(xs []int) (n int) {
	for _, x := range xs {
		n += x
	}
	return n
}

// Goroutines of one process that contend for a name pass it to each other without a round trip:
// far fewer scripts run on the server than acquisitions happen. With the budget at 0 every
// acquisition goes to the servers.
func TestContendingGoroutinesPassTheLeaseWithoutRoundTrips(t *testing.T) {
	nodes := redistest.Start(t, 1)
	c := nodes[0].Client()
	for _, budget := range []time.Duration{engine.DefaultHandoff, 0} {
		q := newQuorum(t, nodes, engine.WithHandoff(budget))
		require.NoError(t, c.ConfigResetStat(context.Background()).Err())
		counts := contend(t, []*engine.Quorum{q}, 8, "pass", 500*time.Millisecond)
		stats := c.Info(context.Background(), "commandstats").Val()
		served := callsOf(stats, "set") + callsOf(stats, "evalsha")
		t.Logf("budget %v: %d acquisitions, %d SETs and scripts on the server; per goroutine %v", budget, sum(counts), served, counts)
		if budget == 0 {
			assert.GreaterOrEqual(t, served, sum(counts), "with no budget every acquisition goes to the server")
		} else {
			assert.Less(t, served, sum(counts)/2, "most acquisitions should be passed locally")
		}
		least, most := counts[0], counts[0]
		for _, n := range counts {
			least, most = min(least, n), max(most, n)
		}
		require.Positive(t, least, "a goroutine starved: %v", counts)
		assert.LessOrEqual(t, float64(most)/float64(least), 3.0, "most/least acquisitions: %v", counts)
	}
}

// A waiter in another process is not starved by a process whose goroutines pass the name among
// themselves: it gets in within the handoff budget plus a few handoffs.
func TestPassingIsBoundedForOtherProcesses(t *testing.T) {
	nodes := redistest.Start(t, 1)
	busy := newQuorum(t, nodes)
	other := newQuorum(t, nodes)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l, err := busy.Acquire(ctx, "bounded")
				if err != nil {
					return
				}
				_ = l.Release(context.Background())
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	var worst time.Duration
	for range 10 {
		start := time.Now()
		l, err := other.Acquire(context.Background(), "bounded")
		require.NoError(t, err)
		worst = max(worst, time.Since(start))
		require.NoError(t, l.Release(context.Background()))
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	wg.Wait()
	// The budget is 1ms; the rest is a few handoffs and a loaded machine.
	assert.Less(t, worst, 200*time.Millisecond, "the other process waited %v at worst", worst)
	t.Logf("the other process waited %v at worst", worst)
}

// A passed lease: the old handle reads as released, the next holds the same claim, valid and
// renewed.
func TestPassedLeaseHandles(t *testing.T) {
	nodes := redistest.Start(t, 1)
	// A budget long enough for the test to line the waiter up behind the holder.
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond), engine.WithNodeTimeout(20*time.Millisecond), engine.WithHandoff(10*time.Second))
	first, err := q.Acquire(context.Background(), "handles")
	require.NoError(t, err)
	got := make(chan *engine.Lease, 1)
	go func() {
		l, err := q.Acquire(context.Background(), "handles")
		if assert.NoError(t, err) {
			got <- l
		}
	}()
	time.Sleep(50 * time.Millisecond) // waiting at the local gate
	c := nodes[0].Client()
	require.NoError(t, c.ConfigResetStat(context.Background()).Err())
	require.NoError(t, first.Release(context.Background()))
	next := <-got
	stats := c.Info(context.Background(), "commandstats").Val()
	assert.Zero(t, callsOf(stats, "evalsha")+callsOf(stats, "set"), "the pass went to the server: %s", stats)
	assert.ErrorIs(t, first.Err(), engine.ErrReleased)
	assert.False(t, first.Valid())
	select {
	case <-first.Done():
	default:
		t.Fatal("the passed handle's Done is open")
	}
	assert.ErrorIs(t, first.Release(context.Background()), engine.ErrReleased)
	assert.Equal(t, first.Token(), next.Token(), "the same claim")
	time.Sleep(time.Second) // three TTLs: renewed under the new handle
	require.NoError(t, next.Err())
	assert.True(t, next.Valid())
	require.NoError(t, next.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// A loss after a pass reaches the handle that holds the claim: the next holder's Done closes and
// its OnLost runs; the passed handle's does not.
func TestALossAfterAPassReachesTheNextHolder(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond), engine.WithNodeTimeout(20*time.Millisecond), engine.WithHandoff(10*time.Second))
	var firstLost, nextLost atomic.Int32
	first, err := q.Acquire(context.Background(), "lost after pass", engine.OnLost(func(error) { firstLost.Add(1) }))
	require.NoError(t, err)
	got := make(chan *engine.Lease, 1)
	go func() {
		l, err := q.Acquire(context.Background(), "lost after pass", engine.OnLost(func(error) { nextLost.Add(1) }))
		if assert.NoError(t, err) {
			got <- l
		}
	}()
	time.Sleep(50 * time.Millisecond) // waiting at the local gate
	require.NoError(t, first.Release(context.Background()))
	next := <-got
	require.Equal(t, first.Token(), next.Token(), "passed, not acquired anew")

	nodes[0].Stop() // SIGSTOP: renewals time out, the lease runs out
	defer nodes[0].Continue()
	select {
	case <-next.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the next holder's Done did not close after its lease ran out")
	}
	assert.ErrorIs(t, next.Err(), engine.ErrLost)
	assert.Eventually(t, func() bool { return nextLost.Load() == 1 }, 2*time.Second, 5*time.Millisecond, "the next holder's OnLost")
	assert.Zero(t, firstLost.Load(), "the passed handle's OnLost ran")
	assert.ErrorIs(t, first.Err(), engine.ErrReleased, "the passed handle reads as released")
}

// A lease near the end of its validity is not passed: the next goroutine acquires anew, with a
// token of its own and its full validity ahead.
func TestALeaseWithLittleValidityLeftIsNotPassed(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond), engine.WithNodeTimeout(20*time.Millisecond), engine.WithHandoff(10*time.Second))
	first, err := q.Acquire(context.Background(), "late pass")
	require.NoError(t, err)
	got := make(chan *engine.Lease, 1)
	go func() {
		l, err := q.Acquire(context.Background(), "late pass")
		if assert.NoError(t, err) {
			got <- l
		}
	}()
	nodes[0].Stop() // no renewal: validity runs down to under half the TTL
	time.Sleep(200 * time.Millisecond)
	nodes[0].Continue()
	require.Less(t, time.Until(first.Until()), 150*time.Millisecond, "the test needs a lease with under TTL/2 left")
	_ = first.Release(context.Background())
	next := <-got
	assert.NotEqual(t, first.Token(), next.Token(), "passed with under half its TTL left")
	require.NoError(t, next.Release(context.Background()))
}
