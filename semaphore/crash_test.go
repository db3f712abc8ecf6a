package semaphore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/crashtest"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

func init() {
	// A child that takes and gives back 1 or 2 permits of a semaphore of capacity 3, for ever (see
	// crashtest.Loop).
	childproc.Register("crash", crashtest.Child(func(q *lease.Quorum, a crashtest.Args) (acquire, release func(context.Context) error) {
		opts := []semaphore.Option{semaphore.WithErrorHandler(func(error) {})}
		if a.Fenced {
			opts = append(opts, semaphore.WithFencing())
		}
		s := semaphore.New(q, a.Name, 3, opts...)
		var n int64
		acquire = func(ctx context.Context) error {
			n = 1 + rand.Int64N(2)
			return s.Acquire(ctx, n)
		}
		release = func(ctx context.Context) error { return s.Release(ctx, n) }
		return acquire, release
	}))
}

// Holders and waiters killed while holding, while queued, and between a release and the next
// acquire leave nothing behind that outlives their TTL: every key of the name has a TTL while they
// run, and none is left once the TTLs have passed (the slots' fencing counters aside).
func TestKilledHoldersAndWaitersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash")
}

// The outsider's case: a holder killed while it holds one permit of two, and another permit taken
// and given back while the dead holder's slot is still live. The release frees a slot while one is
// held, so the list of free slots outlives the release; it must still expire with the name.
func TestAReleaseBesideADeadHoldersSlotLeavesNoKeyBehind(t *testing.T) {
	const ttl = 500 * time.Millisecond
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			ctx := context.Background()
			holdInChild(t, ttl, "pool", 2, 1, nodes).Kill()
			s := semaphore.New(newQuorum(t, nodes, lease.WithTTL(ttl)), "pool", 2)
			require.NoError(t, s.Acquire(ctx, 1))
			require.NoError(t, s.Release(ctx, 1))
			redistest.RequireTTLs(t, nodes, "*{pool}*")
			redistest.RequireNoLockKeysWithin(t, nodes, "*{pool}*", 2*ttl+time.Second)
		})
	}
}

// Semaphores of one name with different TTLs: the list of free slots must expire with the rest of
// the name's state, not before it, or the free slots it listed are lost while a long holder keeps
// the name alive (the capacity would shrink until the name expired as a whole).
func TestFreeSlotsOutliveAShortTTLBesideALongHolder(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	q := newQuorum(t, nodes, lease.WithNodeTimeout(50*time.Millisecond))
	long := semaphore.New(q, "mixed", 3, semaphore.WithTTL(5*time.Second))
	short := semaphore.New(q, "mixed", 3, semaphore.WithTTL(300*time.Millisecond))
	require.NoError(t, long.Acquire(ctx, 1))
	require.NoError(t, short.Acquire(ctx, 2))
	require.NoError(t, short.Release(ctx, 2)) // two slots on the free list
	require.NoError(t, short.Acquire(ctx, 1))
	require.NoError(t, short.Release(ctx, 1))
	time.Sleep(600 * time.Millisecond) // past the short TTL, well within the long one
	require.NoError(t, short.TryAcquire(ctx, 2), "two of three slots are free beside the long holder")
	require.NoError(t, short.Release(ctx, 2))
	require.NoError(t, long.Release(ctx, 1))
	redistest.RequireNoLockKeysWithin(t, nodes, "*{mixed}*", time.Second)
}
