package rwmutex_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/rwmutex"
)

// sizes are the quorum sizes every behaviour is checked on.
var sizes = []int{1, 3}

func forEachSize(t *testing.T, f func(t *testing.T, nodes []*redistest.Node)) {
	for _, n := range sizes {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) { f(t, redistest.Start(t, n)) })
	}
}

// maxOf keeps the highest value it is given.
type maxOf struct{ v atomic.Int32 }

func (m *maxOf) see(x int32) {
	for old := m.v.Load(); x > old && !m.v.CompareAndSwap(old, x); old = m.v.Load() {
	}
}

// Readers do not exclude each other: 8 readers from 3 clients hold at once.
func TestReadersOverlap(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		qs := []*lease.Quorum{newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)}
		const readers = 8
		var inside atomic.Int32
		var most maxOf
		all := make(chan struct{})
		var wg sync.WaitGroup
		for i := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rw := rwmutex.New(qs[i%len(qs)], "overlap")
				if !assert.NoError(t, rw.RLock(context.Background())) {
					return
				}
				most.see(inside.Add(1))
				if inside.Load() == readers {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(5 * time.Second):
				}
				inside.Add(-1)
				assert.NoError(t, rw.RUnlock(context.Background()))
			}()
		}
		wg.Wait()
		assert.EqualValues(t, readers, most.v.Load(), "readers holding at once")
		noKeysLeft(t, nodes, time.Second)
	})
}

// Go's TestParallelReadLocking, across processes: readers that each wait for all the others to
// hold before they let go can only finish if they hold together.
func TestParallelReaders(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		const n = 6
		var holding sync.WaitGroup
		holding.Add(n)
		var done sync.WaitGroup
		for i := range n {
			q := newQuorum(t, nodes)
			done.Add(1)
			go func() {
				defer done.Done()
				rw := rwmutex.New(q, "parallel")
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if !assert.NoError(t, rw.RLock(ctx), "reader %d", i) {
					holding.Done()
					return
				}
				holding.Done()
				holding.Wait()
				assert.NoError(t, rw.RUnlock(ctx))
			}()
		}
		done.Wait()
	})
}

// TryLock and TryRLock in every state, from the same process and from another.
func TestTryLockAndTryRLockInEveryState(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		ctx := context.Background()
		here := newQuorum(t, nodes)
		there := newQuorum(t, nodes)
		rw := rwmutex.New(here, "try")
		try := func(q *lease.Quorum) (w, r error) {
			other := rwmutex.New(q, "try")
			w = other.TryLock(ctx)
			if w == nil {
				require.NoError(t, other.Unlock(ctx))
			}
			r = other.TryRLock(ctx)
			if r == nil {
				require.NoError(t, other.RUnlock(ctx))
			}
			return w, r
		}
		// Unlocked: both succeed.
		for _, q := range []*lease.Quorum{here, there} {
			w, r := try(q)
			require.NoError(t, w)
			require.NoError(t, r)
		}
		// Read-locked: readers get in, writers do not.
		require.NoError(t, rw.TryRLock(ctx))
		for _, q := range []*lease.Quorum{here, there} {
			w, r := try(q)
			require.ErrorIs(t, w, lease.ErrNotAcquired)
			require.NoError(t, r)
		}
		require.NoError(t, rw.RUnlock(ctx))
		// Write-locked: nobody gets in.
		require.NoError(t, rw.TryLock(ctx))
		for _, q := range []*lease.Quorum{here, there} {
			w, r := try(q)
			require.ErrorIs(t, w, lease.ErrNotAcquired)
			require.ErrorIs(t, r, lease.ErrNotAcquired)
		}
		require.NoError(t, rw.Unlock(ctx))
		noKeysLeft(t, nodes, time.Second)
	})
}

// Go's HammerRWMutex, across 3 clients: a writer is always alone, a reader never sees a writer.
func TestHammerWritersAloneReadersNeverSeeAWriter(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		qs := []*lease.Quorum{newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)}
		var activity atomic.Int32 // +1 per reader, +10000 per writer
		var reads, writes atomic.Int32
		var wg sync.WaitGroup
		const goroutines, iterations = 12, 12
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rw := rwmutex.New(qs[g%len(qs)], "hammer")
				ctx := context.Background()
				for i := 0; i < iterations; i++ {
					if g%4 == 0 {
						if !assert.NoError(t, rw.Lock(ctx)) {
							return
						}
						if n := activity.Add(10000); n != 10000 {
							t.Errorf("writer in with activity %d", n)
						}
						time.Sleep(200 * time.Microsecond)
						activity.Add(-10000)
						writes.Add(1)
						assert.NoError(t, rw.Unlock(ctx))
						continue
					}
					if !assert.NoError(t, rw.RLock(ctx)) {
						return
					}
					if n := activity.Add(1); n >= 10000 {
						t.Errorf("reader in with a writer: activity %d", n)
					}
					time.Sleep(200 * time.Microsecond)
					activity.Add(-1)
					reads.Add(1)
					assert.NoError(t, rw.RUnlock(ctx))
				}
			}()
		}
		wg.Wait()
		assert.EqualValues(t, goroutines/4*iterations, writes.Load())
		assert.EqualValues(t, (goroutines-goroutines/4)*iterations, reads.Load())
		noKeysLeft(t, nodes, time.Second)
	})
}

// RLocker is a sync.Locker over read locks: several hold it at once.
func TestRLockerIsASyncLockerOfReadLocks(t *testing.T) {
	nodes := redistest.Start(t, 1)
	rw := rwmutex.New(newQuorum(t, nodes), "rlocker")
	var l sync.Locker = rw.RLocker()
	l.Lock()
	l.Lock() // a second reader, not a deadlock
	require.Error(t, rw.TryLock(context.Background()), "a writer got in under two read locks")
	l.Unlock()
	l.Unlock()
	require.NoError(t, rw.TryLock(context.Background()))
	var w sync.Locker = rw.Locker()
	w.Unlock()
	noKeysLeft(t, nodes, time.Second)
}

// Misuse returns typed errors and never panics.
func TestMisuseIsTypedNeverPanics(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	rw := rwmutex.New(q, "misuse")

	require.ErrorIs(t, rw.RUnlock(ctx), rwmutex.ErrNotRLocked, "RUnlock without RLock")
	require.ErrorIs(t, rw.Unlock(ctx), rwmutex.ErrNotLocked, "Unlock without Lock")

	require.NoError(t, rw.RLock(ctx))
	err := rw.Unlock(ctx)
	require.ErrorIs(t, err, rwmutex.ErrNotLocked, "Unlock of a read lock")
	assert.Contains(t, err.Error(), "read-locked; use RUnlock")
	require.NoError(t, rw.RUnlock(ctx))
	require.ErrorIs(t, rw.RUnlock(ctx), rwmutex.ErrNotRLocked, "double RUnlock")

	require.NoError(t, rw.Lock(ctx))
	err = rw.RUnlock(ctx)
	require.ErrorIs(t, err, rwmutex.ErrNotRLocked, "RUnlock of a write lock")
	assert.Contains(t, err.Error(), "write-locked; use Unlock")
	require.NoError(t, rw.Unlock(ctx))
	require.ErrorIs(t, rw.Unlock(ctx), rwmutex.ErrNotLocked, "double Unlock")

	var nilRW *rwmutex.RWMutex
	var zero rwmutex.RWMutex
	bad := map[string]error{
		"nil RLock":      nilRW.RLock(ctx),
		"nil Lock":       nilRW.Lock(ctx),
		"nil RUnlock":    nilRW.RUnlock(ctx),
		"nil Unlock":     nilRW.Unlock(ctx),
		"nil RDo":        nilRW.RDo(ctx, func(context.Context) error { return nil }),
		"zero RLock":     zero.RLock(ctx),
		"zero TryLock":   zero.TryLock(ctx),
		"zero RUnlock":   zero.RUnlock(ctx), // not "not read-locked": a zero value is no RWMutex at all
		"zero Unlock":    zero.Unlock(ctx),
		"nil quorum":     rwmutex.New(nil, "x").RLock(ctx),
		"empty name":     rwmutex.New(q, "").Lock(ctx),
		"nil fn RDo":     rw.RDo(ctx, nil),
		"nil fn Do":      rw.Do(ctx, nil),
		"bad ttl":        rwmutex.New(q, "x", rwmutex.WithTTL(time.Millisecond)).RLock(ctx),
		"nil ctx RLock":  rw.RLock(nil),  //nolint:staticcheck // checking that a nil ctx is refused
		"nil ctx Unlock": rw.Unlock(nil), //nolint:staticcheck // checking that a nil ctx is refused
	}
	for name, err := range bad {
		assert.ErrorIs(t, err, lease.ErrInvalidArgument, name)
	}
	obtains := map[string]func(context.Context) (*lease.Lease, error){
		"nil Obtain":        nilRW.Obtain,
		"nil TryObtain":     nilRW.TryObtain,
		"nil ObtainRead":    nilRW.ObtainRead,
		"nil TryObtainRead": nilRW.TryObtainRead,
	}
	for name, obtain := range obtains {
		l, err := obtain(ctx)
		assert.ErrorIs(t, err, lease.ErrInvalidArgument, name)
		assert.Nil(t, l, name)
	}
	noKeysLeft(t, nodes, time.Second)
}

// A read lock cannot be upgraded: asked for with RDo's ctx, the write lock is refused at once
// rather than waiting for itself.
func TestUpgradeReturnsItsError(t *testing.T) {
	nodes := redistest.Start(t, 1)
	rw := rwmutex.New(newQuorum(t, nodes), "upgrade")
	err := rw.RDo(context.Background(), func(ctx context.Context) error {
		start := time.Now()
		err := rw.Lock(ctx)
		assert.Less(t, time.Since(start), time.Second, "the upgrade waited")
		require.ErrorIs(t, err, rwmutex.ErrUpgrade)
		require.ErrorIs(t, rw.TryLock(ctx), rwmutex.ErrUpgrade)
		require.ErrorIs(t, rw.Do(ctx, func(context.Context) error { return nil }), rwmutex.ErrUpgrade)
		// A write lock on another name is no upgrade.
		other := rwmutex.New(newQuorum(t, nodes), "other")
		require.NoError(t, other.Lock(ctx))
		return other.Unlock(ctx)
	})
	require.NoError(t, err)

	// Once RDo has returned, its read lock is gone: work it started, with its ctx detached, may
	// take the write lock.
	var kept context.Context
	require.NoError(t, rw.RDo(context.Background(), func(ctx context.Context) error {
		kept = context.WithoutCancel(ctx)
		return nil
	}))
	require.NoError(t, rw.Lock(kept), "a write lock with the ctx of an RDo that has returned")
	require.NoError(t, rw.Unlock(kept))
	noKeysLeft(t, nodes, time.Second)
}

// A writer is not starved by a continuous stream of overlapping readers from several processes:
// once it waits, readers that come after it wait for it, so it gets in once the readers already in
// are done — within one reader hold time, plus a handoff.
func TestWriterIsNotStarvedByAStreamOfReaders(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		const hold = 100 * time.Millisecond
		// The bound: the readers in front of the writer finish within one hold time; the
		// handoffs (their releases, the writer's wake-up and acquire) take milliseconds. The rest
		// is margin for a loaded machine. Without writer preference the wait has no bound at all:
		// the readers' holds overlap, so the lock is never free of readers.
		const bound = hold + 400*time.Millisecond
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var wg sync.WaitGroup
		var readsDuring atomic.Int32
		for c := range 3 {
			q := newQuorum(t, nodes)
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rw := rwmutex.New(q, "stream")
					time.Sleep(time.Duration(c*3+g) * hold / 9) // staggered: the holds overlap
					for ctx.Err() == nil {
						if err := rw.RLock(ctx); err != nil {
							return
						}
						readsDuring.Add(1)
						time.Sleep(hold)
						_ = rw.RUnlock(context.Background())
					}
				}()
			}
		}
		time.Sleep(3 * hold) // the stream is flowing
		w := rwmutex.New(newQuorum(t, nodes), "stream")
		for i := 0; i < 3; i++ {
			before := readsDuring.Load()
			start := time.Now()
			require.NoError(t, w.Lock(context.Background()))
			waited := time.Since(start)
			assert.Less(t, waited, bound, "writer %d waited %v behind readers holding %v each", i, waited, hold)
			time.Sleep(10 * time.Millisecond)
			require.NoError(t, w.Unlock(context.Background()))
			time.Sleep(2 * hold)
			assert.Greater(t, readsDuring.Load(), before, "readers stopped flowing")
		}
		stop()
		wg.Wait()
		noKeysLeft(t, nodes, time.Second)
	})
}

// A release wakes whoever it served: every reader at the head of the queue at once.
func TestWriterReleaseWakesEveryWaitingReaderAtOnce(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		// A 10s TTL: the readers' fallback timers are ~5s, so only the wake-up can be fast.
		w := rwmutex.New(newQuorum(t, nodes), "wake")
		require.NoError(t, w.Lock(context.Background()))
		const readers = 5
		got := make(chan time.Time, readers)
		for range readers {
			q := newQuorum(t, nodes)
			go func() {
				rw := rwmutex.New(q, "wake")
				if assert.NoError(t, rw.RLock(context.Background())) {
					got <- time.Now()
					time.Sleep(300 * time.Millisecond) // all hold together
					assert.NoError(t, rw.RUnlock(context.Background()))
				}
			}()
		}
		require.Eventually(t, func() bool {
			return nodes[0].Client().ZCard(context.Background(), "quorumsync:{wake}:rw:q").Val() == readers
		}, 5*time.Second, 5*time.Millisecond, "readers queued")
		time.Sleep(200 * time.Millisecond) // subscribed
		released := time.Now()
		require.NoError(t, w.Unlock(context.Background()))
		for range readers {
			at := <-got
			assert.Less(t, at.Sub(released), time.Second, "a reader got in %v after the release (fallback ~5s)", at.Sub(released))
		}
		time.Sleep(400 * time.Millisecond)
		noKeysLeft(t, nodes, time.Second)
	})
}

// In one process too, a waiting writer holds up the readers that come after it.
func TestWaitingWriterHoldsUpLaterLocalReaders(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	first := rwmutex.New(q, "local")
	require.NoError(t, first.RLock(ctx))
	writer := make(chan error, 1)
	go func() { writer <- rwmutex.New(q, "local").Lock(ctx) }()
	time.Sleep(200 * time.Millisecond) // the writer waits at the local gate
	later := rwmutex.New(q, "local")
	require.ErrorIs(t, later.TryRLock(ctx), lease.ErrNotAcquired, "a reader overtook a waiting writer")
	require.NoError(t, first.RUnlock(ctx))
	require.NoError(t, <-writer)
}

// A cancelled writer that waited lets the readers queued behind it in.
func TestCancelledWriterLetsTheReadersBehindItIn(t *testing.T) {
	forEachSize(t, func(t *testing.T, nodes []*redistest.Node) {
		ctx := context.Background()
		reader := rwmutex.New(newQuorum(t, nodes), "cancel")
		require.NoError(t, reader.RLock(ctx))
		wctx, cancel := context.WithCancel(ctx)
		writer := make(chan error, 1)
		go func() { writer <- rwmutex.New(newQuorum(t, nodes), "cancel").Lock(wctx) }()
		require.Eventually(t, func() bool {
			return nodes[0].Client().ZCard(ctx, "quorumsync:{cancel}:rw:iw").Val() == 1
		}, 5*time.Second, 5*time.Millisecond, "writer waiting")
		late := make(chan time.Time, 1)
		go func() {
			rw := rwmutex.New(newQuorum(t, nodes), "cancel")
			if assert.NoError(t, rw.RLock(ctx)) {
				late <- time.Now()
				assert.NoError(t, rw.RUnlock(ctx))
			}
		}()
		time.Sleep(300 * time.Millisecond)
		select {
		case <-late:
			t.Fatal("a reader overtook the waiting writer")
		default:
		}
		cancelled := time.Now()
		cancel()
		require.ErrorIs(t, <-writer, lease.ErrNotAcquired)
		select {
		case at := <-late:
			assert.Less(t, at.Sub(cancelled), time.Second, "the reader behind the cancelled writer waited %v", at.Sub(cancelled))
		case <-time.After(5 * time.Second):
			t.Fatal("the reader behind a cancelled writer never got in")
		}
		require.NoError(t, reader.RUnlock(ctx))
		noKeysLeft(t, nodes, time.Second)
	})
}

// A reader whose process dies — paused like a stopped VM, or killed — stops blocking a writer
// once its lease runs out: its entry is scored by the server's clock.
func TestDeadReaderStopsBlockingAWriterAfterItsTTL(t *testing.T) {
	for _, how := range []string{"paused", "killed"} {
		t.Run(how, func(t *testing.T) {
			nodes := redistest.Start(t, 3)
			const ttl = time.Second
			p := holdInChild(t, "r", ttl, "dead", nodes)
			w := rwmutex.New(newQuorum(t, nodes, lease.WithTTL(ttl)), "dead")
			require.ErrorIs(t, w.TryLock(context.Background()), lease.ErrNotAcquired, "the reader holds")
			died := time.Now()
			if how == "paused" {
				p.Stop()
			} else {
				p.Kill()
			}
			require.NoError(t, w.Lock(context.Background()))
			waited := time.Since(died)
			assert.Less(t, waited, ttl+700*time.Millisecond, "a dead reader blocked the writer %v (TTL %v)", waited, ttl)
			require.NoError(t, w.Unlock(context.Background()))
			p.Kill()
		})
	}
}

// One node of three paused: both modes work. Two of three: both fail by their ctx, and nothing is
// left behind once the nodes answer again.
func TestMinorityPausedWorksMajorityPausedFailsCleanly(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, lease.WithTTL(2*time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	rw := rwmutex.New(q, "paused")
	ctx := context.Background()
	nodes[2].Stop()
	for i := 0; i < 3; i++ {
		require.NoError(t, rw.RLock(ctx))
		require.NoError(t, rw.RUnlock(ctx))
		require.NoError(t, rw.Lock(ctx))
		require.NoError(t, rw.Unlock(ctx))
	}
	nodes[1].Stop()
	for _, lock := range []func(context.Context) error{rw.RLock, rw.Lock} {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := lock(cctx)
		cancel()
		require.ErrorIs(t, err, lease.ErrUnavailable, "too few nodes answered: unavailable, not busy")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var ne *lease.NodeError
		require.ErrorAs(t, err, &ne, "the outage shows in the error: %v", err)
	}
	nodes[1].Continue()
	nodes[2].Continue()
	noKeysLeft(t, nodes, 3*time.Second)
}

// RDo and Do: fn's ctx is cancelled when the lease is lost, and the outcomes are told apart.
func TestRDoAndDo(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond))
	rw := rwmutex.New(q, "do")
	ctx := context.Background()
	failed := errors.New("failed")
	require.ErrorIs(t, rw.RDo(ctx, func(context.Context) error { return failed }), failed)
	require.ErrorIs(t, rw.Do(ctx, func(context.Context) error { return failed }), failed)
	require.NoError(t, rw.RDo(ctx, func(ctx context.Context) error {
		// Readers of RDo hold together.
		return rwmutex.New(q, "do").RDo(ctx, func(context.Context) error { return nil })
	}))
	err := rw.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, nodes[0].Client().Del(ctx, "quorumsync:{do}:rw:w").Err())
		<-ctx.Done()
		return context.Cause(ctx)
	})
	require.ErrorIs(t, err, lease.ErrLost)
	assert.NotContains(t, err.Error(), "\n")
	assert.ErrorIs(t, rw.Unlock(ctx), rwmutex.ErrNotLocked, "Do's lock is its own: it left nothing on rw to unlock")
	noKeysLeft(t, nodes, time.Second)
}

// Errors name this package.
func TestErrorsNameThePackage(t *testing.T) {
	nodes := redistest.Start(t, 1)
	a := rwmutex.New(newQuorum(t, nodes), "named")
	b := rwmutex.New(newQuorum(t, nodes), "named")
	require.NoError(t, a.Lock(context.Background()))
	err := b.TryRLock(context.Background())
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	assert.Regexp(t, `^rwmutex: not acquired "named"`, err.Error())
	require.NoError(t, a.Unlock(context.Background()))
}
