package semaphore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// The scripts' fastest paths — an acquire on a node with nothing of the name, a release by the
// only holder with nobody waiting — keep the slots apart from the general paths': the first
// holder of an empty semaphore gets the lowest slots, a second one the next, a release beside
// another holder frees only its own, the last release leaves nothing behind, and fencing tokens
// go on increasing across the state's deletion.
func TestFastPathsKeepSlotsApart(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	s := semaphore.New(q, "fast", 5)

	a, err := s.Obtain(ctx, 3) // fastest path: nothing of the name yet
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1, 2}, a.Units())
	b, err := s.Obtain(ctx, 2) // general path: a's slots are taken
	require.NoError(t, err)
	assert.Equal(t, []int64{3, 4}, b.Units())
	require.ErrorIs(t, s.TryAcquire(ctx, 1), lease.ErrNotAcquired, "all 5 slots are held")

	require.NoError(t, a.Release(ctx)) // b still holds: the general path frees a's slots only
	c, err := s.Obtain(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1, 2}, c.Units(), "a's freed slots")
	require.ErrorIs(t, s.TryAcquire(ctx, 1), lease.ErrNotAcquired, "b's slots stayed held")
	require.NoError(t, b.Release(ctx))
	require.NoError(t, c.Release(ctx)) // fastest path: c was the only holder
	redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 0)

	// Fenced: the counters have no TTL and survive the state's deletion.
	f := semaphore.New(q, "fast", 5, semaphore.WithFencing())
	var last uint64
	for range 3 {
		l, err := f.Obtain(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []int64{0}, l.Units())
		fences, err := l.Fences()
		require.NoError(t, err)
		require.Len(t, fences, 1)
		assert.Greater(t, fences[0], last, "slot 0's token increases")
		last = fences[0]
		require.NoError(t, l.Release(ctx))
	}
	redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 0)
}

// The largest permit, 1000 slots, is granted and released on the fast paths (which pass every
// slot as a script argument: Lua's unpack has a limit, past 1000 at least) and, beside another
// holder, on the general ones; one slot more is refused.
func TestLargestPermitsTakeEveryPath(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	s := semaphore.New(q, "large", 9000)
	for _, other := range []bool{false, true} {
		var o *lease.Lease
		if other { // the name is in use: the fast paths do not apply
			var err error
			o, err = s.Obtain(ctx, 1)
			require.NoError(t, err)
		}
		l, err := s.Obtain(ctx, 1000)
		require.NoError(t, err, "beside another holder: %v", other)
		require.Len(t, l.Units(), 1000)
		require.NoError(t, l.Release(ctx), "beside another holder: %v", other)
		if o != nil {
			require.NoError(t, o.Release(ctx))
		}
		redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 0)
	}
	_, err := s.Obtain(ctx, 1001)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 0)
}

// The fastest release trusts a holder's slot list only when it names no slot twice: a list with a
// slot twice, whose count then matches a set that also holds another token's slot, takes the
// general path, which frees the caller's slot and leaves the other holder's alone. (No path writes
// such a list; the test plants one.)
func TestReleaseOfASlotListedTwiceFreesOnlyItsOwn(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()
	s := semaphore.New(q, "twice", 2)
	c := nodes[0].Client()
	const hash = "quorumsync:{twice}:sem:k"

	a, err := s.Obtain(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []int64{0}, a.Units())
	b, err := s.Obtain(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, b.Units())
	token, err := c.HGet(ctx, hash, "0").Result()
	require.NoError(t, err, "slot 0's holder")
	require.NoError(t, c.HSet(ctx, hash, "t:"+token, "0,0").Err())

	require.NoError(t, a.Release(ctx))
	owner, err := c.HGet(ctx, hash, "1").Result()
	require.NoError(t, err, "b's slot is still recorded")
	assert.NotEqual(t, token, owner)
	require.ErrorIs(t, s.TryAcquire(ctx, 2), lease.ErrNotAcquired, "b still holds slot 1")
	require.NoError(t, b.Release(ctx))
	require.NoError(t, s.TryAcquire(ctx, 2))
	require.NoError(t, s.Release(ctx, 2))
	redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", 0)
}
