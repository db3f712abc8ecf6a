package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// interval is one acquisition's time inside: from Acquire's return to just before Release.
type interval struct {
	from, to time.Time
	weight   int64
}

type recorder struct {
	mu  sync.Mutex
	got []interval
}

func (r *recorder) add(iv interval) {
	r.mu.Lock()
	r.got = append(r.got, iv)
	r.mu.Unlock()
}

// peak sweeps the recorded intervals and returns the highest sum of weights held at one instant.
// An interval's end sorts before another's start at the same instant (the release comes first).
func peak(ivs []interval) int64 {
	type event struct {
		at    time.Time
		delta int64
	}
	var evs []event
	for _, iv := range ivs {
		evs = append(evs, event{iv.from, iv.weight}, event{iv.to, -iv.weight})
	}
	slices.SortFunc(evs, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.delta - b.delta) // ends (negative) first
	})
	var now, most int64
	for _, e := range evs {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// The capacity is never exceeded: 24 workers over 3 clients, random weights, a sweep over every
// recorded interval.
func TestCapacityIsNeverExceeded(t *testing.T) {
	for _, n := range []int{1, 3} {
		for _, capacity := range []int64{1, 2, 5} {
			t.Run(fmt.Sprintf("N=%d/C=%d", n, capacity), func(t *testing.T) {
				nodes := redistest.Start(t, n)
				qs := []*lease.Quorum{newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)}
				var rec recorder
				stop := time.Now().Add(1200 * time.Millisecond)
				var wg sync.WaitGroup
				for g := range 24 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rng := rand.New(rand.NewPCG(uint64(g), uint64(capacity)))
						s := semaphore.New(qs[g%3], "capacity", capacity)
						ctx := context.Background()
						for time.Now().Before(stop) {
							w := 1 + rng.Int64N(capacity)
							if !assert.NoError(t, s.Acquire(ctx, w)) {
								return
							}
							from := time.Now()
							time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
							rec.add(interval{from, time.Now(), w})
							if !assert.NoError(t, s.Release(ctx, w)) {
								return
							}
						}
					}()
				}
				wg.Wait()
				require.NotEmpty(t, rec.got)
				got := peak(rec.got)
				assert.LessOrEqual(t, got, capacity, "sum of weights held at once over %d acquisitions", len(rec.got))
				assert.Positive(t, got)
				t.Logf("%d acquisitions, peak %d of %d", len(rec.got), got, capacity)
				noKeysLeft(t, nodes, time.Second)
			})
		}
	}
}

// naiveHolders models the obvious design that is wrong: each node lets in up to capacity holders,
// and a holder needs a majority. reach[i] are the nodes client i's request reaches (in that order,
// which does not matter). It returns how many clients end up holding.
func naiveHolders(nodes, capacity int, reach [][]int) int {
	count := make([]int, nodes)
	holders := 0
	for _, r := range reach {
		votes := 0
		for _, n := range r {
			if count[n] < capacity {
				count[n]++
				votes++
			}
		}
		if votes > nodes/2 {
			holders++
		}
	}
	return holders
}

// The counterexample to the obvious design: N = 3, C = 2, and each client's request reaches a
// different pair of nodes (the third is hung for it). Per-node counting lets three holders in with
// no fault but the ordering; slots never let more than two.
func TestCounterexampleNeverLetsAThirdHolderIn(t *testing.T) {
	reach := [][]int{{0, 1}, {1, 2}, {0, 2}}
	require.Equal(t, 3, naiveHolders(3, 2, reach), "the model of the naive design must exceed the capacity, or this test proves nothing")

	nodes := redistest.Start(t, 3)
	opts := []lease.Option{lease.WithTTL(5 * time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}
	var held []*lease.Lease
	for i, r := range reach {
		q := newQuorum(t, nodes, opts...)
		s := semaphore.New(q, "pairs", 2)
		out := 3 - r[0] - r[1] // the node this client does not reach
		nodes[out].Stop()
		// A first request marks the hung node suspect for this client: the real one then goes
		// to the other two only (nothing is left queued in the hung node to run when it wakes).
		_ = semaphore.New(q, fmt.Sprintf("warm%d", i), 1).TryAcquire(context.Background(), 1)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		l, err := s.Obtain(ctx, 1)
		cancel()
		nodes[out].Continue()
		if err == nil {
			held = append(held, l)
		} else if !errors.Is(err, lease.ErrUnavailable) { // the last round was short of the hung node
			require.ErrorIs(t, err, lease.ErrNotAcquired, "client %d", i)
		}
		time.Sleep(600 * time.Millisecond) // the node answers pings again: the next client reaches it
	}
	valid := 0
	for _, l := range held {
		if l.Err() == nil && time.Now().Before(l.Until()) {
			valid++
		}
	}
	t.Logf("%d of 3 clients hold, on slots %v", valid, func() (u [][]int64) {
		for _, l := range held {
			u = append(u, l.Units())
		}
		return u
	}())
	require.NotZero(t, valid, "nobody holds: the check would be vacuous")
	assert.LessOrEqual(t, valid, 2, "holders of a semaphore of capacity 2")
	var units []int64
	for _, l := range held {
		units = append(units, l.Units()...)
	}
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(units))), len(units), "two holders share a slot: %v", units)
}

// x/sync's TestWeightedTryAcquire, across processes.
func TestTryAcquireSequence(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	s := semaphore.New(newQuorum(t, nodes), "try", 2)
	other := semaphore.New(newQuorum(t, nodes), "try", 2)
	steps := []struct {
		s       *semaphore.Semaphore
		acquire bool
		n       int64
		want    bool
	}{
		{s, true, 1, true},
		{other, true, 1, true},
		{s, true, 1, false},
		{other, false, 1, true}, // release
		{s, true, 1, true},
		{other, true, 2, false},
		{s, false, 2, true},
		{other, true, 2, true},
		{s, true, 1, false},
		{other, false, 2, true},
	}
	for i, st := range steps {
		var err error
		if st.acquire {
			err = st.s.TryAcquire(ctx, st.n)
		} else {
			err = st.s.Release(ctx, st.n)
		}
		if st.want {
			require.NoError(t, err, "step %d", i)
		} else {
			require.ErrorIs(t, err, lease.ErrNotAcquired, "step %d", i)
		}
	}
	noKeysLeft(t, nodes, time.Second)
}

// A request for more than the capacity is an error at once, and does not hold up the others.
func TestTooBigRequestFailsAtOnceAndBlocksNobody(t *testing.T) {
	nodes := redistest.Start(t, 1)
	s := semaphore.New(newQuorum(t, nodes), "big", 3)
	start := time.Now()
	err := s.Acquire(context.Background(), 4)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.Less(t, time.Since(start), time.Second)
	require.NoError(t, s.TryAcquire(context.Background(), 3))
	require.NoError(t, s.Release(context.Background(), 3))
}

// x/sync's TestLargeAcquireDoesntStarve, across processes: small acquirers of other clients keep
// taking and giving back one permit each, and a request for all of them still gets in.
func TestLargeAcquireDoesntStarve(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			const capacity = 4
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var wg sync.WaitGroup
			var smalls atomic.Int64
			for g := range 8 {
				q := newQuorum(t, nodes)
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := semaphore.New(q, "starve", capacity)
					time.Sleep(time.Duration(g) * time.Millisecond)
					for ctx.Err() == nil {
						if s.Acquire(ctx, 1) != nil {
							return
						}
						smalls.Add(1)
						time.Sleep(5 * time.Millisecond)
						_ = s.Release(context.Background(), 1)
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			before := smalls.Load()
			big := semaphore.New(newQuorum(t, nodes), "starve", capacity)
			bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			require.NoError(t, big.Acquire(bctx, capacity), "the large request starved")
			t.Logf("the large request waited %v; %d small acquisitions meanwhile", time.Since(start), smalls.Load()-before)
			require.NoError(t, big.Release(context.Background(), capacity))
			stop()
			wg.Wait()
			assert.Greater(t, smalls.Load(), before, "the small ones never ran")
			noKeysLeft(t, nodes, time.Second)
		})
	}
}

// A cancelled Acquire at the head of the queue does not block the smaller ones behind it.
func TestCancelledHeadDoesNotBlockTheRest(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	holder := semaphore.New(newQuorum(t, nodes), "head", 10)
	require.NoError(t, holder.Acquire(ctx, 1)) // 9 of 10 free
	bigCtx, cancelBig := context.WithCancel(ctx)
	bigErr := make(chan error, 1)
	go func() { bigErr <- semaphore.New(newQuorum(t, nodes), "head", 10).Acquire(bigCtx, 10) }()
	require.Eventually(t, func() bool {
		return nodes[0].Client().ZCard(ctx, "quorumsync:{head}:sem:q").Val() == 1
	}, 5*time.Second, 5*time.Millisecond, "the large request queued")
	small := make(chan time.Time, 1)
	go func() {
		s := semaphore.New(newQuorum(t, nodes), "head", 10)
		if assert.NoError(t, s.Acquire(ctx, 1)) {
			small <- time.Now()
			assert.NoError(t, s.Release(ctx, 1))
		}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-small:
		t.Fatal("a small request overtook the large one at the head")
	default:
	}
	cancelled := time.Now()
	cancelBig()
	require.ErrorIs(t, <-bigErr, context.Canceled)
	select {
	case at := <-small:
		assert.Less(t, at.Sub(cancelled), time.Second, "the small request waited %v after the head left", at.Sub(cancelled))
	case <-time.After(5 * time.Second):
		t.Fatal("the small request behind a cancelled head never got in")
	}
	require.NoError(t, holder.Release(ctx, 1))
	noKeysLeft(t, nodes, time.Second)
}

// An already-cancelled ctx fails, even when permits are free, and takes none.
func TestAcquireWithCancelledCtxFailsEvenWhenFree(t *testing.T) {
	nodes := redistest.Start(t, 1)
	s := semaphore.New(newQuorum(t, nodes), "cancelled", 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Acquire(ctx, 1)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.TryAcquire(context.Background(), 3), "a cancelled acquire took permits")
	require.NoError(t, s.Release(context.Background(), 3))
	noKeysLeft(t, nodes, time.Second)
}

// A release wakes as many waiters as the freed permits serve, in order: here two of three.
func TestReleaseWakesAsManyAsTheFreedPermitsServe(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	all := semaphore.New(newQuorum(t, nodes), "wake", 4)
	require.NoError(t, all.Acquire(ctx, 4))
	type got struct {
		who int
		at  time.Time
	}
	in := make(chan got, 3)
	var holders []*semaphore.Semaphore
	for i, w := range []int64{2, 1, 2} {
		s := semaphore.New(newQuorum(t, nodes), "wake", 4)
		holders = append(holders, s)
		go func() {
			if assert.NoError(t, s.Acquire(ctx, w)) {
				in <- got{i, time.Now()}
			}
		}()
		require.Eventually(t, func() bool {
			return nodes[0].Client().ZCard(ctx, "quorumsync:{wake}:sem:q").Val() == int64(i+1)
		}, 5*time.Second, 2*time.Millisecond)
		time.Sleep(3 * time.Millisecond) // distinct arrivals
	}
	time.Sleep(200 * time.Millisecond) // subscribed
	released := time.Now()
	require.NoError(t, all.Release(ctx, 4))
	var first []int
	for range 2 {
		g := <-in
		assert.Less(t, g.at.Sub(released), time.Second, "waiter %d got in %v after the release (its fallback is ~5s)", g.who, g.at.Sub(released))
		first = append(first, g.who)
	}
	assert.ElementsMatch(t, []int{0, 1}, first, "the first two waiters (weights 2 and 1) fit in 4")
	select {
	case g := <-in:
		t.Fatalf("waiter %d (weight 2) got in with only 1 permit free", g.who)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, holders[1].Release(ctx, 1)) // now 2 are free
	g := <-in
	assert.Equal(t, 2, g.who)
	require.NoError(t, holders[0].Release(ctx, 2))
	require.NoError(t, holders[2].Release(ctx, 2))
	noKeysLeft(t, nodes, time.Second)
}

// Permits can be given back in any split, as with x/sync's semaphore.
func TestPartialReleases(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond)), "split", 5)
	other := semaphore.New(newQuorum(t, nodes), "split", 5)
	require.NoError(t, s.Acquire(ctx, 3))
	require.NoError(t, s.Acquire(ctx, 2))
	require.ErrorIs(t, other.TryAcquire(ctx, 1), lease.ErrNotAcquired)
	require.NoError(t, s.Release(ctx, 1))
	require.NoError(t, other.TryAcquire(ctx, 1), "a permit given back from the middle of an acquisition")
	require.ErrorIs(t, other.TryAcquire(ctx, 1), lease.ErrNotAcquired)
	time.Sleep(time.Second) // several TTLs: the rest is still renewed
	require.NoError(t, s.Release(ctx, 2))
	require.NoError(t, s.Release(ctx, 1))
	require.NoError(t, other.TryAcquire(ctx, 3))
	err := s.Release(ctx, 2)
	require.ErrorIs(t, err, semaphore.ErrReleaseTooMany)
	require.NoError(t, s.Release(ctx, 1))
	require.NoError(t, other.Release(ctx, 4))
	noKeysLeft(t, nodes, time.Second)
}

// A holder paused like a stopped VM, or killed, gives its permits back within its TTL: its slots
// expire by the servers' clock.
func TestPausedOrKilledHoldersPermitsComeBack(t *testing.T) {
	for _, how := range []string{"paused", "killed"} {
		t.Run(how, func(t *testing.T) {
			nodes := redistest.Start(t, 3)
			const ttl = time.Second
			p := holdInChild(t, ttl, "crash", 3, 2, nodes)
			s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(ttl)), "crash", 3)
			require.ErrorIs(t, s.TryAcquire(context.Background(), 2), lease.ErrNotAcquired, "the child holds 2 of 3")
			died := time.Now()
			if how == "paused" {
				p.Stop()
			} else {
				p.Kill()
			}
			require.NoError(t, s.Acquire(context.Background(), 3))
			waited := time.Since(died)
			assert.Less(t, waited, ttl+700*time.Millisecond, "a dead holder kept its permits %v (TTL %v)", waited, ttl)
			require.NoError(t, s.Release(context.Background(), 3))
			p.Kill()
		})
	}
}

// A ctx that ends leaves no slot held, nothing queued, on any node; also behind a paused node.
func TestCtxEndLeavesNothingOnAnyNode(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	holder := semaphore.New(newQuorum(t, nodes), "leave", 3)
	require.NoError(t, holder.Acquire(ctx, 2))
	q := newQuorum(t, nodes, lease.WithTTL(5*time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	nodes[2].Stop()
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := semaphore.New(q, "leave", 3).Acquire(wctx, 2)
	cancel()
	nodes[2].Continue()
	// Busy (two nodes say taken), or, on a loaded machine whose healthy nodes also ran past the
	// 50ms node timeout, unavailable: what this test is about is what is left behind.
	require.True(t, errors.Is(err, lease.ErrNotAcquired) || errors.Is(err, lease.ErrUnavailable), "%v", err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, holder.Release(ctx, 2))
	noKeysLeft(t, nodes, 3*time.Second)
}

// One acquisition's permits as a handle of their own.
func TestObtainIsAHandle(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond)), "handle", 8)
	a, err := s.Obtain(ctx, 3)
	require.NoError(t, err)
	b, err := s.Obtain(ctx, 2)
	require.NoError(t, err)
	assert.Len(t, a.Units(), 3)
	assert.Len(t, b.Units(), 2)
	time.Sleep(time.Second)
	require.NoError(t, a.Err())
	assert.True(t, a.Until().After(time.Now()))
	require.ErrorIs(t, s.Release(ctx, 1), semaphore.ErrReleaseTooMany, "handle permits are not the Semaphore's")
	// The handles' 5 permits are held on the servers all the same: 3 of 8 are left.
	other := semaphore.New(newQuorum(t, nodes), "handle", 8)
	require.ErrorIs(t, other.TryAcquire(ctx, 4), lease.ErrNotAcquired)
	require.NoError(t, other.TryAcquire(ctx, 3))
	require.NoError(t, other.Release(ctx, 3))
	require.NoError(t, a.Release(ctx))
	require.NoError(t, b.Release(ctx))
	select {
	case <-a.Done():
	default:
		t.Fatal("Done open after Release")
	}
	assert.ErrorIs(t, a.Err(), lease.ErrReleased)
	noKeysLeft(t, nodes, time.Second)
}

// Do runs fn under n permits and tells the outcomes apart.
func TestDo(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond)), "do", 2)
	failed := errors.New("failed")
	require.ErrorIs(t, s.Do(ctx, 2, func(context.Context) error { return failed }), failed)
	err := s.Do(ctx, 1, func(ctx context.Context) error {
		// The slot is taken over, as after a restart without persistence.
		c := nodes[0].Client()
		for _, k := range c.HKeys(ctx, "quorumsync:{do}:sem:k").Val() {
			if k != "cap" && k != "hi" && k[0] != 't' {
				require.NoError(t, c.HSet(ctx, "quorumsync:{do}:sem:k", k, "intruder").Err())
			}
		}
		<-ctx.Done()
		return context.Cause(ctx)
	})
	require.ErrorIs(t, err, lease.ErrLost)
	assert.NotContains(t, err.Error(), "\n")
}

// Bad inputs are typed errors; nothing panics and nothing is left behind.
func TestBadInputsAreTyped(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	s := semaphore.New(q, "bad", 3)
	var nilS *semaphore.Semaphore
	var zero semaphore.Semaphore
	cases := map[string]error{
		"n = 0":          s.Acquire(ctx, 0),
		"n < 0":          s.TryAcquire(ctx, -1),
		"n > capacity":   s.Acquire(ctx, 4),
		"capacity 0":     semaphore.New(q, "bad0", 0).Acquire(ctx, 1),
		"nil quorum":     semaphore.New(nil, "x", 1).Acquire(ctx, 1),
		"empty name":     semaphore.New(q, "", 1).Acquire(ctx, 1),
		"nil semaphore":  nilS.Acquire(ctx, 1),
		"zero semaphore": zero.Acquire(ctx, 1),
		"zero Release":   zero.Release(ctx, 1), // not "more than held": a zero value is no semaphore
		// Each permit is a slot a script touches: one acquisition is bounded, whatever the capacity.
		"n > 1000": semaphore.New(q, "wide", 1<<40).TryAcquire(ctx, 1001),
		// Above 2^53 the servers' Lua numbers could not tell two capacities apart.
		"capacity 2^53+1": semaphore.New(q, "huge", 1<<53+1).TryAcquire(ctx, 1),
		"nil fn":          s.Do(ctx, 1, nil),
		"release n = 0":   s.Release(ctx, 0),
		"nil ctx":         s.Acquire(nil, 1), //nolint:staticcheck // checking that a nil ctx is refused
		"bad ttl":         semaphore.New(q, "x", 1, semaphore.WithTTL(time.Millisecond)).Acquire(ctx, 1),
	}
	for name, err := range cases {
		assert.ErrorIs(t, err, lease.ErrInvalidArgument, name)
	}
	require.ErrorIs(t, s.Release(ctx, 1), semaphore.ErrReleaseTooMany)
	wide := semaphore.New(q, "wide", 1<<40) // the most one acquisition takes
	require.NoError(t, wide.Acquire(ctx, 1000))
	require.NoError(t, wide.Release(ctx, 1000))

	// A capacity that differs from the one in use.
	require.NoError(t, s.Acquire(ctx, 1))
	err := semaphore.New(newQuorum(t, nodes), "bad", 4).Acquire(ctx, 1)
	require.ErrorIs(t, err, semaphore.ErrCapacityMismatch)
	require.ErrorIs(t, err, lease.ErrMisconfigured, "no retry heals a capacity mismatch")
	var ce *semaphore.CapacityError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, int64(3), ce.Stored)
	assert.Regexp(t, `^semaphore: misconfigured "bad": node 0 \([^)]*\): capacity 4 differs from the 3 in use$`, err.Error())
	require.NoError(t, s.Release(ctx, 1))
	// So does one next to the largest capacity, where a double has no room to spare.
	big := semaphore.New(q, "big", 1<<53)
	require.NoError(t, big.Acquire(ctx, 1))
	require.ErrorIs(t, semaphore.New(newQuorum(t, nodes), "big", 1<<53-1).TryAcquire(ctx, 1), semaphore.ErrCapacityMismatch)
	require.NoError(t, big.Release(ctx, 1))
	noKeysLeft(t, nodes, time.Second)
}

// Locker is the weight-1 sync.Locker.
func TestLockerIsWeightOne(t *testing.T) {
	nodes := redistest.Start(t, 1)
	s := semaphore.New(newQuorum(t, nodes), "locker", 2)
	l := s.Locker()
	l.Lock()
	l.Lock()
	require.ErrorIs(t, s.TryAcquire(context.Background(), 1), lease.ErrNotAcquired)
	l.Unlock()
	l.Unlock()
	reported := make(chan error, 1)
	semaphore.New(newQuorum(t, nodes), "locker", 2, semaphore.WithErrorHandler(func(err error) { reported <- err })).Locker().Unlock()
	require.ErrorIs(t, <-reported, semaphore.ErrReleaseTooMany)
	noKeysLeft(t, nodes, time.Second)
}

// Permits of a lost acquisition count as released whatever Release returns: a partial Release of
// a lost acquisition reports the loss and gives its permits back, so the permits cannot be
// released twice.
func TestReleaseOfLostPermitsCountsThem(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithNodeTimeout(20*time.Millisecond)), "lost", 3)
	require.NoError(t, s.Acquire(ctx, 2))
	c := nodes[0].Client()
	defer c.Close()
	require.NoError(t, c.FlushAll(ctx).Err()) // the servers forget the permits: renewal fails
	time.Sleep(time.Second)                   // past the validity: lost
	require.ErrorIs(t, s.Release(ctx, 1), lease.ErrLost)
	require.ErrorIs(t, s.Release(ctx, 1), lease.ErrLost)
	require.ErrorIs(t, s.Release(ctx, 1), semaphore.ErrReleaseTooMany, "a third permit released out of two")
}

// A try on nodes that hold different slots free fails while permits are free (its doc says so),
// with an error that says what happened; a blocking acquire gets in.
func TestTryAcquireOnNodesThatDisagree(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	// Slot 0 is held on node 1 only, by a semaphore of the same name over that node alone.
	lone := semaphore.New(newQuorum(t, nodes[1:2]), "split", 2)
	require.NoError(t, lone.Acquire(ctx, 1))
	nodes[0].Stop() // hung: the others must agree
	defer nodes[0].Continue()
	s := semaphore.New(newQuorum(t, nodes, lease.WithNodeTimeout(50*time.Millisecond)), "split", 2)
	// Node 1 grants slot 1, node 2 slot 0 (the lowest free on each).
	err := s.TryAcquire(ctx, 1)
	// Had the hung node answered, its grant would have matched one of the others': the try
	// failed for want of nodes (unavailable), not because the permits were taken (busy).
	require.ErrorIs(t, err, lease.ErrUnavailable)
	assert.Contains(t, err.Error(), "no 1 of them the same units")
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, s.Acquire(actx, 1))
	require.NoError(t, s.Release(ctx, 1))
	require.NoError(t, lone.Release(ctx, 1))
}
