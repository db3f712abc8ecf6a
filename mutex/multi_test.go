package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// hammerNames are the names the multi-lock hammers contend for.
var hammerNames = []string{"acct:a", "acct:b", "acct:c", "acct:d", "acct:e"}

// section is one turn of a multi-lock hammer: under the lock of names, it checks that nobody else
// is inside any of them (a per-name INCR that must read 1) and does a non-atomic read-modify-write
// of each name's counter, so that a second holder shows as a count above 1 or a lost update.
func section(ctx context.Context, rdb *redis.Client, names []string) error {
	for _, n := range names {
		if in, err := rdb.Incr(ctx, "inside:"+n).Result(); err != nil {
			return err
		} else if in != 1 {
			return fmt.Errorf("%d holders of %q at once", in, n)
		}
	}
	for _, n := range names {
		v, err := rdb.Get(ctx, "count:"+n).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		time.Sleep(50 * time.Microsecond)
		if err := rdb.Set(ctx, "count:"+n, v+1, 0).Err(); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := rdb.Decr(ctx, "inside:"+n).Err(); err != nil {
			return err
		}
	}
	return nil
}

// hammer runs turns of random work on q: three turns in four lock a random set of one to three
// names, listed in a random order, with a Multi; the fourth locks one name with a plain Mutex. It
// adds the names it locked to counts.
func hammer(ctx context.Context, q *lease.Quorum, rdb *redis.Client, rng *rand.Rand, turns int, counts map[string]int) error {
	for i := 0; i < turns; i++ {
		perm := rng.Perm(len(hammerNames))
		var names []string
		for _, p := range perm[:1+rng.IntN(3)] {
			names = append(names, hammerNames[p])
		}
		var lock, unlock func(context.Context) error
		if rng.IntN(4) == 0 {
			names = names[:1]
			m := mutex.New(q, names[0])
			lock, unlock = m.Lock, m.Unlock
		} else {
			m := mutex.NewMulti(q, names)
			lock, unlock = m.Lock, m.Unlock
		}
		if err := lock(ctx); err != nil {
			return fmt.Errorf("lock %q: %w", names, err)
		}
		if err := section(ctx, rdb, names); err != nil {
			return err
		}
		if err := unlock(ctx); err != nil {
			return fmt.Errorf("unlock %q: %w", names, err)
		}
		for _, n := range names {
			counts[n]++
		}
	}
	return nil
}

func init() {
	// A process of the multi-lock hammer: args are a seed, the turns per goroutine, the node
	// addresses. It prints "done" and each name's count once its 4 goroutines are through.
	childproc.Register("multi-hammer", func(args []string) error {
		seed, _ := strconv.ParseUint(args[0], 10, 64)
		turns, _ := strconv.Atoi(args[1])
		var clients []redis.UniversalClient
		for _, a := range args[2:] {
			clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
		}
		ctx := context.Background()
		q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(2*time.Second))
		if err != nil {
			return err
		}
		defer q.Close(ctx)
		rdb := redis.NewClient(&redis.Options{Addr: args[2]})
		defer rdb.Close()
		counts := make([]map[string]int, 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for g := range counts {
			counts[g] = map[string]int{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[g] = hammer(ctx, q, rdb, rand.New(rand.NewPCG(seed, uint64(g))), turns, counts[g])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		total := map[string]int{}
		for _, c := range counts {
			for n, k := range c {
				total[n] += k
			}
		}
		var out []string
		for _, n := range hammerNames {
			out = append(out, n+"="+strconv.Itoa(total[n]))
		}
		fmt.Println("done " + strings.Join(out, " "))
		return nil
	})
}

// Multi-locks over overlapping names, listed in random orders, mixed with single Mutexes, from
// three processes of four goroutines each: nobody deadlocks (every process finishes within the
// bound), no name ever has two holders, and every name's counter is exact.
func TestMultiHammerAcrossProcesses(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			const turns = 25
			args := []string{"", strconv.Itoa(turns)}
			for _, nd := range nodes {
				args = append(args, nd.Addr())
			}
			procs := make([]*childproc.Proc, 3)
			for i := range procs {
				args[0] = strconv.Itoa(i + 1)
				procs[i] = childproc.Start(t, "multi-hammer", args...)
			}
			want := map[string]int{}
			for _, p := range procs {
				line := p.WaitFor("done ", 90*time.Second) // a deadlock never gets here
				for _, f := range strings.Fields(strings.TrimPrefix(line, "done ")) {
					name, k, _ := strings.Cut(f, "=")
					v, _ := strconv.Atoi(k)
					want[name] += v
				}
			}
			rdb := nodes[0].Client()
			for _, name := range hammerNames {
				got, err := rdb.Get(context.Background(), "count:"+name).Int()
				if errors.Is(err, redis.Nil) {
					got, err = 0, nil
				}
				require.NoError(t, err)
				assert.Equal(t, want[name], got, "counter of %q: a lost update means two holders", name)
			}
			redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 5*time.Second)
		})
	}
}

// The same, in one process over three quorums: goroutines of one process queue at the local
// gates too, which must not deadlock either.
func TestMultiHammerInProcess(t *testing.T) {
	nodes := redistest.Start(t, 1)
	qs := []*lease.Quorum{newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)}
	rdb := nodes[0].Client()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a deadlock ends here
	defer cancel()
	const goroutines, turns = 12, 25
	counts := make([]map[string]int, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range counts {
		counts[g] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = hammer(ctx, qs[g%len(qs)], rdb, rand.New(rand.NewPCG(7, uint64(g))), turns, counts[g])
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	for _, name := range hammerNames {
		want := 0
		for _, c := range counts {
			want += c[name]
		}
		got, err := rdb.Get(ctx, "count:"+name).Int()
		if errors.Is(err, redis.Nil) {
			got, err = 0, nil
		}
		require.NoError(t, err)
		assert.Equal(t, want, got, "counter of %q", name)
	}
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}

// A Multi that cannot have every name takes none: a TryLock that finds one name taken gives back
// the others, and a Lock whose ctx ends while it waits for one gives back the ones it took. No key
// of a name it gave back is left on the node, and another caller can take those names at once.
func TestMultiAllOrNothing(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	other := mutex.New(q, "b")
	require.NoError(t, other.Lock(ctx))
	m := mutex.NewMulti(q, []string{"c", "b", "a"})

	err := m.TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	assert.Contains(t, err.Error(), `mutex: not acquired "b"`)
	redistest.RequireNoKeys(t, nodes, "quorumsync:{a}*")
	redistest.RequireNoKeys(t, nodes, "quorumsync:{c}*")
	err = m.Unlock(ctx)
	assert.ErrorIs(t, err, mutex.ErrNotLocked, "Unlock after a failed TryLock")

	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = m.Lock(wctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	redistest.RequireNoKeys(t, nodes, "quorumsync:{a}*")
	redistest.RequireNoKeys(t, nodes, "quorumsync:{c}*")
	for _, name := range []string{"a", "c"} {
		l, err := mutex.New(q, name).TryObtain(ctx)
		require.NoError(t, err, "%q was given back", name)
		require.NoError(t, l.Release(ctx))
	}

	// Once b is free, the Multi has them all, and a single Mutex of any of them is refused.
	require.NoError(t, other.Unlock(ctx))
	require.NoError(t, m.Lock(ctx))
	for _, name := range []string{"a", "b", "c"} {
		assert.ErrorIs(t, mutex.New(q, name).TryLock(ctx), lease.ErrNotAcquired, "%q while the Multi holds it", name)
	}
	require.NoError(t, m.Unlock(ctx))
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}

// A Lock that waits for a name it found taken gets it when the holder lets go, after giving back
// the later names (so it waits holding only earlier ones), and holds every name in the end.
func TestMultiLockWaitsInOrder(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	holder := mutex.New(q, "b")
	require.NoError(t, holder.Lock(ctx))
	m := mutex.NewMulti(q, []string{"c", "a", "b"})
	locked := make(chan error, 1)
	go func() { locked <- m.Lock(ctx) }()

	// While it waits for b, it holds a (before b) and not c (after b).
	require.Eventually(t, func() bool {
		a := mutex.New(q, "a")
		if err := a.TryLock(ctx); err == nil {
			require.NoError(t, a.Unlock(ctx)) // too early: the Multi has not asked yet
			return false
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "a should be held while the Multi waits for b")
	require.Eventually(t, func() bool {
		c := mutex.New(q, "c")
		if c.TryLock(ctx) != nil {
			return false
		}
		return c.Unlock(ctx) == nil
	}, 5*time.Second, 10*time.Millisecond, "c should be free while the Multi waits for b")

	require.NoError(t, holder.Unlock(ctx))
	select {
	case err := <-locked:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the Multi did not get b within 10s of its release")
	}
	require.NoError(t, m.Unlock(ctx))
}

// Bad input is refused with an error matching lease.ErrInvalidArgument that names the package,
// and never panics.
func TestMultiBadInput(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	many := make([]string, mutex.MaxNames+1)
	for i := range many {
		many[i] = "n" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		what  string
		names []string
		want  string
	}{
		{"no names", nil, "none given"},
		{"an empty list", []string{}, "none given"},
		{"a duplicate", []string{"a", "b", "a"}, `"a" given twice`},
		{"an empty name", []string{"a", ""}, "an empty name"},
		{"too many", many, "more than 64"},
	} {
		m := mutex.NewMulti(q, tc.names)
		for op, f := range map[string]func() error{
			"Lock":    func() error { return m.Lock(ctx) },
			"TryLock": func() error { return m.TryLock(ctx) },
			"Unlock":  func() error { return m.Unlock(ctx) },
			"Do":      func() error { return m.Do(ctx, func(context.Context) error { return nil }) },
			"Obtain":  func() error { _, err := m.Obtain(ctx); return err },
		} {
			err := f()
			require.ErrorIs(t, err, lease.ErrInvalidArgument, "%s with %s", op, tc.what)
			assert.True(t, strings.HasPrefix(err.Error(), "mutex: invalid argument"), "%s with %s: %q", op, tc.what, err)
			assert.Contains(t, err.Error(), tc.want)
		}
	}
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")

	m := mutex.NewMulti(q, []string{"a", "b"})
	//nolint:staticcheck // a nil ctx is the point
	assert.ErrorIs(t, m.Lock(nil), lease.ErrInvalidArgument)
	assert.ErrorIs(t, m.Do(ctx, nil), lease.ErrInvalidArgument)
	var zero *mutex.Multi
	assert.ErrorIs(t, zero.Lock(ctx), lease.ErrInvalidArgument)
	assert.ErrorIs(t, (&mutex.Multi{}).TryLock(ctx), lease.ErrInvalidArgument)
	assert.ErrorIs(t, mutex.NewMulti(nil, []string{"a"}).Lock(ctx), lease.ErrInvalidArgument)
	var none *mutex.MultiLease
	assert.False(t, none.Valid())
	assert.ErrorIs(t, none.Err(), lease.ErrNotHeld)
	<-none.Done()
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}

// One lease for the group: when any name is lost, the MultiLease's Done closes, Err says which
// name, and Do's fn sees its ctx cancelled with a cause matching lease.ErrLost.
func TestMultiLossOfOneNameEndsTheGroup(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(600*time.Millisecond))
	ctx := context.Background()
	rdb := nodes[0].Client()
	reported := make(chan error, 4)
	m := mutex.NewMulti(q, []string{"x", "y", "z"}, mutex.WithErrorHandler(func(err error) { reported <- err }))

	ml, err := m.Obtain(ctx)
	require.NoError(t, err)
	require.True(t, ml.Valid())
	require.Len(t, ml.Leases(), 3)
	select {
	case <-ml.Done():
		t.Fatal("Done closed while every name is held")
	case <-time.After(100 * time.Millisecond):
	}
	// Someone deletes y's lock key: its next renewal finds it gone.
	require.NoError(t, rdb.Del(ctx, "quorumsync:{y}").Err())
	select {
	case <-ml.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done still open 2s after y was lost (TTL 600ms)")
	}
	require.ErrorIs(t, ml.Err(), lease.ErrLost)
	assert.Contains(t, ml.Err().Error(), `"y"`)
	assert.False(t, ml.Valid())
	err = ml.Release(ctx)
	require.ErrorIs(t, err, lease.ErrLost, "the release says y was lost")
	select {
	case err := <-reported:
		assert.ErrorIs(t, err, lease.ErrLost, "the loss of an Obtain's lease goes to the error handler")
	case <-time.After(time.Second):
		t.Error("the loss of y was not reported to the error handler")
	}
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")

	// Do: fn's ctx ends with the loss, and Do returns it.
	err = m.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, rdb.Del(context.Background(), "quorumsync:{z}").Err())
		<-ctx.Done()
		assert.ErrorIs(t, context.Cause(ctx), lease.ErrLost)
		return ctx.Err()
	})
	require.ErrorIs(t, err, lease.ErrLost)
	select {
	case err := <-reported:
		t.Errorf("a loss Do returns was reported to the error handler too: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}

// Do and TryDo run fn with every name held, and TryDo skips fn when one is taken.
func TestMultiDoAndTryDo(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	m := mutex.NewMulti(q, []string{"p", "q"})
	ran := false
	err := m.Do(ctx, func(ctx context.Context) error {
		ran = true
		return mutex.New(q, "q").TryLock(ctx)
	})
	assert.True(t, ran)
	require.ErrorIs(t, err, lease.ErrNotAcquired, "fn's own error: q is held by the Multi")

	other := mutex.New(q, "p")
	require.NoError(t, other.Lock(ctx))
	ran = false
	err = m.TryDo(ctx, func(context.Context) error { ran = true; return nil })
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	assert.False(t, ran, "TryDo ran fn without every name")
	require.NoError(t, other.Unlock(ctx))
	require.NoError(t, m.TryDo(ctx, func(context.Context) error { ran = true; return nil }))
	assert.True(t, ran)

	l := m.Locker()
	l.Lock()
	assert.ErrorIs(t, mutex.New(q, "p").TryLock(ctx), lease.ErrNotAcquired)
	l.Unlock()
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}

// With fencing, each name has its own token, and each increases from one holder of the group to
// the next.
func TestMultiFencing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	m := mutex.NewMulti(q, []string{"f2", "f1"}, mutex.WithFencing())
	var last []uint64
	for i := 0; i < 3; i++ {
		ml, err := m.Obtain(ctx)
		require.NoError(t, err)
		fences, err := ml.Fences()
		require.NoError(t, err)
		require.Len(t, fences, 2)
		if last != nil {
			for j := range fences {
				assert.Greater(t, fences[j], last[j], "token of %q", m.Names()[j])
			}
		}
		last = fences
		// A single Mutex of f1 in between moves f1's counter on.
		require.NoError(t, ml.Release(ctx))
		require.NoError(t, mutex.New(q, "f1", mutex.WithFencing()).Do(ctx, func(context.Context) error { return nil }))
	}
	ml, err := mutex.NewMulti(q, []string{"f1", "f2"}).Obtain(ctx)
	require.NoError(t, err)
	_, err = ml.Fences()
	assert.ErrorIs(t, err, lease.ErrInvalidArgument, "Fences without fencing")
	require.NoError(t, ml.Release(ctx))
}

// On Redis Cluster, the names of a Multi may fall in different slots (each name's keys share one
// slot, by their hash tag), and the Multi works all the same.
func TestMultiOnClusterAcrossSlots(t *testing.T) {
	cluster := redis.NewClusterClient(redistest.ClusterOptions(redistest.StartCluster(t, 3)))
	t.Cleanup(func() { _ = cluster.Close() })
	ctx := context.Background()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cluster})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })

	names := []string{"tenant:1", "tenant:2", "tenant:3", "tenant:4"}
	distinct := map[int64]bool{}
	for _, n := range names {
		s, err := cluster.ClusterKeySlot(ctx, "{"+n+"}").Result()
		require.NoError(t, err)
		distinct[s] = true
	}
	require.Greater(t, len(distinct), 1, "the names should fall in different slots")

	m := mutex.NewMulti(q, names, mutex.WithFencing())
	ml, err := m.Obtain(ctx)
	require.NoError(t, err)
	fences, err := ml.Fences()
	require.NoError(t, err)
	assert.Len(t, fences, len(names))
	for _, n := range names {
		assert.ErrorIs(t, mutex.New(q, n).TryLock(ctx), lease.ErrNotAcquired)
	}
	require.NoError(t, ml.Release(ctx))
	require.NoError(t, m.TryDo(ctx, func(context.Context) error { return nil }))
}

// A node hung (SIGSTOP) while a Multi acquires on three nodes: the Multi gets its majority from
// the other two and releases; once the node wakes and runs what it had queued, nothing of the
// Multi's names is left on it. And on one node, a Lock cut short by its ctx while the node hangs
// leaves nothing once the node wakes.
func TestMultiNodeHungMidAcquireLeavesNothing(t *testing.T) {
	t.Run("N=3", func(t *testing.T) {
		nodes := redistest.Start(t, 3)
		q := newQuorum(t, nodes, lease.WithTTL(2*time.Second), lease.WithNodeTimeout(100*time.Millisecond))
		ctx := context.Background()
		nodes[0].Stop()
		m := mutex.NewMulti(q, []string{"h1", "h2", "h3"})
		require.NoError(t, m.Lock(ctx))
		require.NoError(t, m.Unlock(ctx))
		nodes[0].Continue()
		redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 5*time.Second)
	})
	t.Run("N=1 ctx ends", func(t *testing.T) {
		nodes := redistest.Start(t, 1)
		q := newQuorum(t, nodes, lease.WithTTL(2*time.Second), lease.WithNodeTimeout(100*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		nodes[0].Stop()
		err := mutex.NewMulti(q, []string{"h1", "h2", "h3"}).Lock(ctx)
		require.Error(t, err)
		assert.ErrorIs(t, err, lease.ErrUnavailable, "the node did not answer: %v", err)
		nodes[0].Continue()
		redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 5*time.Second)
	})
}
