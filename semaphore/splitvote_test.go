package semaphore_test

import (
	"context"
	"testing"

	"github.com/quorumsync/quorumsync/internal/placetest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// A waiter granted by too few nodes keeps its place where it gives the permits back (see
// placetest.Run): the holder's 2 permits of 2, released, go to the first waiter, which asks for 2,
// and not to the one behind it, which asks for 1 and would fit in what the first gives back.
func TestASplitVoteKeepsTheWaitersPlace(t *testing.T) {
	claim := func(n int64) func(*lease.Quorum) placetest.Claim {
		return func(q *lease.Quorum) placetest.Claim {
			s := semaphore.New(q, "place", 2)
			return placetest.Claim{
				Acquire: func(ctx context.Context) error { return s.Acquire(ctx, n) },
				Release: func(ctx context.Context) error { return s.Release(ctx, n) },
			}
		}
	}
	placetest.Run(t, "semaphore.Acquire", claim(2), claim(2), claim(1))
}
