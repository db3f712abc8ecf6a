package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// With every node out of memory under maxmemory-policy noeviction (the policy the lease doc asks
// for), a held lease of every primitive is kept: renewed past its TTL again and again, and
// released with waiters queued behind it, which is when a release hands the name over with a
// write that may grow memory (Redis refuses that as a script's first write when memory is full,
// not once the script has written). New acquires are refused; once memory is freed, the waiters
// get in. No key is left without a TTL.
func TestNoevictionKeepsHeldLeasesOfEveryPrimitive(t *testing.T) {
	nodes := redistest.Start(t, 3, redistest.WithArgs("--maxmemory-policy", "noeviction"))
	const ttl = time.Second
	holders := newQuorum(t, redistest.Clients(nodes), lease.WithTTL(ttl))
	waiters := newQuorum(t, redistest.Clients(nodes), lease.WithTTL(ttl))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	m, err := mutex.New(holders, "oom-m").Obtain(ctx) // renewed with PEXPIRE, as mutex's own test shows
	require.NoError(t, err)
	r, err := rwmutex.New(holders, "oom-rw").ObtainRead(ctx)
	require.NoError(t, err)
	s, err := semaphore.New(holders, "oom-sem", 3).Obtain(ctx, 2)
	require.NoError(t, err)
	// A waiter behind each, queued on every node before memory fills.
	got := make(chan string, 3)
	go func() {
		if err := mutex.New(waiters, "oom-m").Lock(ctx); err == nil {
			got <- "mutex"
		}
	}()
	go func() {
		if err := rwmutex.New(waiters, "oom-rw").Lock(ctx); err == nil {
			got <- "rwmutex writer"
		}
	}()
	go func() {
		if err := semaphore.New(waiters, "oom-sem", 3).Acquire(ctx, 2); err == nil {
			got <- "semaphore"
		}
	}()
	looker := newQuorum(t, redistest.Clients(nodes))
	waitFor(t, 5*time.Second, "a waiter queued behind every holder", func() bool {
		for _, name := range []string{"oom-m", "oom-rw", "oom-sem"} {
			st, err := looker.Inspect(ctx, name)
			if err != nil || len(st.Waiters) != 1 {
				return false
			}
		}
		return true
	})

	free := fillMemory(ctx, t, nodes)
	defer free()
	err = mutex.New(looker, "oom-new").TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable, "a new acquire while every node is full")
	assert.Contains(t, err.Error(), "out of memory")
	// A process that starts now gets a quorum: a node out of memory is not misconfigured (the
	// start-up probe's writes refused for want of memory are no refusal of the user's rights).
	late, err := lease.NewQuorum(ctx, redistest.Clients(nodes), quiet)
	require.NoError(t, err, "a quorum made while every node is out of memory")
	defer late.Close(ctx)
	err = mutex.New(late, "oom-new").TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable, "the late quorum's acquire while every node is full")

	// At once, while its waiter is surely live (a waiter whose attempts all fail stays queued for
	// a TTL): the release must hand the name over, not leave it held to its TTL.
	assert.NoError(t, m.Release(ctx), "the mutex's release, handing over to its waiter, with memory full")

	time.Sleep(3 * ttl) // renewals at TTL/3: several each
	for what, l := range map[string]*lease.Lease{"reader": r, "semaphore permit": s} {
		assert.NoError(t, l.Err(), "the %s lost its lease while memory was full", what)
		assert.True(t, l.Valid(), "the %s's lease", what)
		assert.NoError(t, l.Release(ctx), "the %s's release with memory full", what)
	}
	redistest.RequireTTLs(t, nodes, "quorumsync:*")

	free()
	for range 3 {
		select {
		case what := <-got:
			t.Logf("the %s waiter got in once memory was freed", what)
		case <-time.After(5 * time.Second):
			t.Fatalf("a waiter did not get in within 5s of memory being freed")
		}
	}
	redistest.RequireTTLs(t, nodes, "quorumsync:*")
}

// An administrator's Break works with every node out of memory, which is when a lock left behind
// by a stuck holder may need breaking: the holder is released on every node, its next renewal
// says it was broken (the marker is written although memory is full), and nothing is left without
// a TTL.
func TestBreakWithMemoryFull(t *testing.T) {
	nodes := redistest.Start(t, 3, redistest.WithArgs("--maxmemory-policy", "noeviction"))
	const ttl = time.Second
	holders := newQuorum(t, redistest.Clients(nodes), lease.WithTTL(ttl))
	admin := newQuorum(t, redistest.Clients(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := mutex.New(holders, "oom-break").Obtain(ctx)
	require.NoError(t, err)

	free := fillMemory(ctx, t, nodes)
	defer free()

	st, err := admin.Break(ctx, "oom-break")
	require.NoError(t, err, "a break with memory full")
	require.Len(t, st.Holders, 1)
	for i, n := range nodes {
		assert.Zero(t, n.Client().Exists(ctx, "quorumsync:{oom-break}").Val(), "node %d still holds the lock key", i)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * ttl):
		t.Fatal("the broken lease's Done did not close within 5 TTLs")
	}
	require.ErrorIs(t, l.Err(), lease.ErrLost)
	assert.Contains(t, l.Err().Error(), "broken by an administrator")
	redistest.RequireTTLs(t, nodes, "quorumsync:*")

	free()
	m := mutex.New(admin, "oom-break")
	require.NoError(t, m.TryLock(ctx), "the name is free once memory is")
	require.NoError(t, m.Unlock(ctx))
	redistest.RequireTTLs(t, nodes, "quorumsync:*")
}

// fillMemory sets every node's maxmemory below what it uses, so that under noeviction it refuses
// writes that may grow memory, and returns the function that lifts the limit again (once; later
// calls do nothing).
func fillMemory(ctx context.Context, t *testing.T, nodes []*redistest.Node) (free func()) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, n.Client().ConfigSet(ctx, "maxmemory", "1").Err()) // below what any server uses
	}
	require.Error(t, nodes[0].Client().Set(ctx, "one-more", "x", 0).Err(), "the node takes writes past its maxmemory")
	freed := false
	return func() {
		if !freed {
			freed = true
			for _, n := range nodes {
				assert.NoError(t, n.Client().ConfigSet(ctx, "maxmemory", "0").Err())
			}
		}
	}
}
