package mutex_test

import (
	"testing"

	"github.com/quorumsync/quorumsync/internal/placetest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// A waiter granted by too few nodes keeps its place where it gives the grant back: see
// placetest.Run.
func TestASplitVoteKeepsTheWaitersPlace(t *testing.T) {
	claim := func(q *lease.Quorum) placetest.Claim {
		m := mutex.New(q, "place")
		return placetest.Claim{Acquire: m.Lock, Release: m.Unlock}
	}
	placetest.Run(t, "mutex.Lock", claim, claim, claim)
}
