package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// newQuorum returns a quorum over fresh clients of nodes, as one more process would have it.
func newQuorum(t *testing.T, nodes []*redistest.Node, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	q, err := lease.NewQuorum(context.Background(), redistest.Clients(nodes), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// TestMutualExclusionHammer runs 16 goroutines over 3 quorum clients (as if 3 processes) that
// each do a non-atomic read-modify-write of a Redis counter under the mutex. The in-section
// count must never exceed 1 and the counter must end exact.
func TestMutualExclusionHammer(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			qs := []*lease.Quorum{newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)}
			counter := nodes[0].Client()
			const goroutines, iterations = 16, 15
			var inside, maxInside atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := mutex.New(qs[g%len(qs)], "hammer")
					ctx := context.Background()
					for i := 0; i < iterations; i++ {
						if err := m.Lock(ctx); err != nil {
							errs <- err
							return
						}
						now := inside.Add(1)
						for old := maxInside.Load(); now > old && !maxInside.CompareAndSwap(old, now); old = maxInside.Load() {
						}
						v, _ := counter.Get(ctx, "counter").Int()
						time.Sleep(100 * time.Microsecond)
						counter.Set(ctx, "counter", v+1, 0)
						inside.Add(-1)
						if err := m.Unlock(ctx); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("lock/unlock: %v", err)
			}
			assert.EqualValues(t, 1, maxInside.Load(), "goroutines inside the critical section at once")
			got, err := counter.Get(context.Background(), "counter").Int()
			require.NoError(t, err)
			assert.Equal(t, goroutines*iterations, got, "counter; lost updates mean exclusion failed")
			redistest.RequireNoKeys(t, nodes, "quorumsync:*")
		})
	}
}

func TestTryLockUnderContention(t *testing.T) {
	nodes := redistest.Start(t, 3)
	a, b := newQuorum(t, nodes), newQuorum(t, nodes)
	ma, mb := mutex.New(a, "t"), mutex.New(b, "t")
	ctx := context.Background()

	require.NoError(t, ma.TryLock(ctx))
	err := mb.TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	// Same process, another Mutex value for the same name: refused locally.
	require.ErrorIs(t, mutex.New(a, "t").TryLock(ctx), lease.ErrNotAcquired)

	require.NoError(t, ma.Unlock(ctx))
	require.NoError(t, mb.TryLock(ctx))
	require.NoError(t, mb.Unlock(ctx))

	// Many concurrent TryLocks: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	ms := make([]*mutex.Mutex, 8)
	for i := range ms {
		ms[i] = mutex.New(newQuorum(t, nodes), "t")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ms[i].TryLock(ctx) == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, wins.Load(), "TryLock winners")
	unlocked := 0
	for _, m := range ms {
		err := m.Unlock(ctx)
		if errors.Is(err, mutex.ErrNotLocked) { // a loser: it holds nothing
			continue
		}
		require.NoError(t, err)
		unlocked++
	}
	assert.Equal(t, 1, unlocked, "mutexes that held the lock after the TryLocks")
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestLockCtxEndReturnsBothErrorsAndLeavesNoKey(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holder := mutex.New(newQuorum(t, nodes), "c")
	require.NoError(t, holder.Lock(context.Background()))
	waiterQ := newQuorum(t, nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := mutex.New(waiterQ, "c").Lock(ctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	err = mutex.New(waiterQ, "c").Lock(ctx2)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.ErrorIs(t, err, context.Canceled)

	// A waiter queued locally behind a holder of the same process leaves the queue too.
	local := mutex.New(waiterQ, "d")
	require.NoError(t, local.Lock(context.Background()))
	ctx3, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel3()
	require.ErrorIs(t, mutex.New(waiterQ, "d").Lock(ctx3), context.DeadlineExceeded)
	require.NoError(t, local.Unlock(context.Background()))

	require.NoError(t, holder.Unlock(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestOneOfThreePausedStillLocks(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, lease.WithTTL(time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	nodes[1].Stop()
	defer nodes[1].Continue()
	m := mutex.New(q, "p1")
	for i := 0; i < 5; i++ {
		require.NoError(t, m.Lock(context.Background()))
		require.NoError(t, m.Unlock(context.Background()))
	}
}

func TestTwoOfThreePausedLockFailsByCtxAndLeavesNothing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, lease.WithTTL(time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	nodes[0].Stop()
	nodes[2].Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := mutex.New(q, "p2").Lock(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable, "too few nodes answered: unavailable, not busy")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The live node got every attempt and every undo: nothing there now.
	redistest.RequireNoKeys(t, nodes[1:2], "*")

	// The paused nodes may still run the requests queued in their sockets when they resume (an
	// acquire and its undo arrive on different connections, in either order). Whatever they do,
	// the TTL bounds it: within one TTL no key is left anywhere.
	nodes[0].Continue()
	nodes[2].Continue()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if keys, err := n.Keys(context.Background()); err != nil || len(keys) > 0 {
				return false
			}
		}
		return true
	}, time.Second+500*time.Millisecond, 20*time.Millisecond, "keys left after one TTL")
}

func TestWatchdogKeepsShortTTLLockHeld(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond))
	m := mutex.New(q, "w")
	l, err := m.Obtain(context.Background())
	require.NoError(t, err)
	other := mutex.New(newQuorum(t, nodes), "w")
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		require.NoError(t, l.Err(), "lease lost while the watchdog should renew it")
		require.ErrorIs(t, other.TryLock(context.Background()), lease.ErrNotAcquired, "another client took a held lock")
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, l.Release(context.Background()))
}

func TestLostLeaseClosesDoneAndCancelsDo(t *testing.T) {
	nodes := redistest.Start(t, 3)
	lost := make(chan error, 1)
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithNodeTimeout(30*time.Millisecond))
	m := mutex.New(q, "lost", mutex.WithErrorHandler(func(err error) { lost <- err }))

	// Do's lease is out of reach, but its Until is bounded: no renewal that began after a
	// majority was paused can succeed, and a lease is valid until at most its last renewal's
	// start + TTL.
	var until, doneAt time.Time
	err := m.Do(context.Background(), func(ctx context.Context) error {
		nodes[0].Stop()
		nodes[1].Stop()
		until = time.Now().Add(300 * time.Millisecond)
		select {
		case <-ctx.Done():
			doneAt = time.Now()
			return context.Cause(ctx)
		case <-time.After(3 * time.Second):
			return errors.New("ctx not cancelled 3s after a majority paused")
		}
	})
	nodes[0].Continue()
	nodes[1].Continue()
	require.ErrorIs(t, err, lease.ErrLost, "Do's result")
	assert.NotContains(t, err.Error(), "\n", "Do's error is one line")
	assert.Equal(t, 1, strings.Count(err.Error(), "expired"), "Do's error says the cause once: %q", err)
	assert.False(t, doneAt.After(until.Add(100*time.Millisecond)), "ctx cancelled %v after Until", doneAt.Sub(until))
	select {
	case err := <-lost:
		t.Fatalf("Do returned the loss, and the error handler was told too: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	assert.ErrorIs(t, m.Unlock(context.Background()), mutex.ErrNotLocked, "Do left the mutex locked")
}

func TestDoCancelsWithCauseOnlyOnLossAndUnlocks(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	m := mutex.New(q, "do")
	want := errors.New("work failed")
	err := m.Do(context.Background(), func(ctx context.Context) error {
		require.NoError(t, ctx.Err())
		return want
	})
	require.ErrorIs(t, err, want)
	assert.ErrorIs(t, m.Unlock(context.Background()), mutex.ErrNotLocked, "Do left the mutex locked")
	redistest.RequireNoKeys(t, nodes, "*")
	require.ErrorIs(t, m.Do(context.Background(), nil), lease.ErrInvalidArgument)
}

func TestUnlockAfterExpiryAndDoubleUnlockAreDistinct(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(200*time.Millisecond), lease.WithNodeTimeout(20*time.Millisecond))
	lost := make(chan error, 1)
	m := mutex.New(q, "u", mutex.WithErrorHandler(func(err error) {
		select {
		case lost <- err:
		default:
		}
	}))
	ctx := context.Background()

	require.NoError(t, m.Lock(ctx))
	nodes[0].Stop()
	select { // expired: no renewal could reach the node (the handler hears of it after Done closes)
	case err := <-lost:
		require.ErrorIs(t, err, lease.ErrLost)
	case <-time.After(3 * time.Second):
		t.Fatal("the lock was not lost 3s after its only node paused")
	}
	nodes[0].Continue()
	expired := m.Unlock(ctx)
	require.ErrorIs(t, expired, lease.ErrLost)
	require.NotErrorIs(t, expired, mutex.ErrNotLocked)

	double := m.Unlock(ctx)
	require.ErrorIs(t, double, mutex.ErrNotLocked)
	require.NotErrorIs(t, double, lease.ErrLost)

	require.ErrorIs(t, mutex.New(q, "never").Unlock(ctx), mutex.ErrNotLocked)
}

func TestBadInputIsTypedNeverPanics(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	var nilM *mutex.Mutex
	var zero mutex.Mutex
	cases := map[string]func() error{
		"nil quorum Lock":    func() error { return mutex.New(nil, "x").Lock(ctx) },
		"nil quorum TryLock": func() error { return mutex.New(nil, "x").TryLock(ctx) },
		"empty name":         func() error { return mutex.New(q, "").Lock(ctx) },
		"nil ctx": func() error {
			//lint:ignore SA1012 checking that a nil ctx is refused
			return mutex.New(q, "x").Lock(nil) //nolint:staticcheck
		},
		"nil mutex Lock":   func() error { return nilM.Lock(ctx) },
		"nil mutex Unlock": func() error { return nilM.Unlock(ctx) },
		"nil mutex Do":     func() error { return nilM.Do(ctx, func(context.Context) error { return nil }) },
		"zero mutex Lock":  func() error { return zero.Lock(ctx) },
		// Not "not locked": a zero value is no mutex at all.
		"zero mutex Unlock": func() error { return zero.Unlock(ctx) },
		"nil ctx TryDo": func() error {
			return mutex.New(q, "x").TryDo(nil, func(context.Context) error { return nil }) //nolint:staticcheck
		},
		"nil fn TryDo": func() error { return mutex.New(q, "x").TryDo(ctx, nil) },
		"nil ctx Obtain": func() error {
			_, err := mutex.New(q, "x").Obtain(nil) //nolint:staticcheck
			return err
		},
		"nil mutex TryDo":      func() error { return nilM.TryDo(ctx, func(context.Context) error { return nil }) },
		"zero mutex TryObtain": func() error { _, err := zero.TryObtain(ctx); return err },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, f(), lease.ErrInvalidArgument)
		})
	}
	l, err := nilM.Obtain(ctx)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.Nil(t, l)
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestLockerIsASyncLockerAndReportsErrors(t *testing.T) {
	nodes := redistest.Start(t, 3)
	var reported []error
	var mu sync.Mutex
	handler := func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
	var l sync.Locker = mutex.New(newQuorum(t, nodes), "locker", mutex.WithErrorHandler(handler)).Locker()

	counter := 0
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				l.Lock()
				counter++
				l.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 40, counter)

	l.Unlock() // not locked: reported, not panicked
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 1)
	require.ErrorIs(t, reported[0], mutex.ErrNotLocked)
}

func TestLockerRetriesThroughRedisOutage(t *testing.T) {
	nodes := redistest.Start(t, 1)
	var reported atomic.Int32
	q := newQuorum(t, nodes, lease.WithTTL(time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	l := mutex.New(q, "outage", mutex.WithErrorHandler(func(err error) {
		assert.ErrorIs(t, err, lease.ErrUnavailable)
		reported.Add(1)
	})).Locker()
	nodes[0].Stop()
	time.AfterFunc(300*time.Millisecond, nodes[0].Continue)
	start := time.Now()
	l.Lock() // blocks through the outage, then holds
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "Lock returned while the only node was paused")
	l.Unlock()
	// The failed rounds of the outage are reported, folded into at most one report a second: one
	// for a 300ms outage, two if the machine stretched it past a second.
	assert.GreaterOrEqual(t, reported.Load(), int32(1), "no report of a 300ms outage")
	assert.LessOrEqual(t, reported.Load(), int32(2), "reports of a 300ms outage")
}
