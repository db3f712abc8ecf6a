package rwmutex_test

import (
	"testing"

	"github.com/quorumsync/quorumsync/internal/placetest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/rwmutex"
)

// A waiter granted by too few nodes keeps its place where it gives the grant back (see
// placetest.Run): a writer behind a writer, and a reader behind a writer.
func TestASplitVoteKeepsTheWaitersPlace(t *testing.T) {
	writer := func(q *lease.Quorum) placetest.Claim {
		m := rwmutex.New(q, "place")
		return placetest.Claim{Acquire: m.Lock, Release: m.Unlock}
	}
	reader := func(q *lease.Quorum) placetest.Claim {
		m := rwmutex.New(q, "place")
		return placetest.Claim{Acquire: m.RLock, Release: m.RUnlock}
	}
	t.Run("writer behind a writer", func(t *testing.T) { placetest.Run(t, "rwmutex.Lock", writer, writer, writer) })
	t.Run("reader behind a writer", func(t *testing.T) { placetest.Run(t, "rwmutex.RLock", writer, writer, reader) })
}
