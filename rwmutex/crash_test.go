package rwmutex_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/crashtest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/rwmutex"
)

func init() {
	// A child that takes and gives up an rwmutex for ever, a writer one time in three and a reader
	// otherwise (see crashtest.Loop).
	childproc.Register("crash", crashtest.Child(func(q *lease.Quorum, a crashtest.Args) (acquire, release func(context.Context) error) {
		opts := []rwmutex.Option{rwmutex.WithErrorHandler(func(error) {})}
		if a.Fenced {
			opts = append(opts, rwmutex.WithFencing())
		}
		rw := rwmutex.New(q, a.Name, opts...)
		var writer bool
		acquire = func(ctx context.Context) error {
			writer = rand.N(3) == 0
			if writer {
				return rw.Lock(ctx)
			}
			return rw.RLock(ctx)
		}
		release = func(ctx context.Context) error {
			if writer {
				return rw.Unlock(ctx)
			}
			return rw.RUnlock(ctx)
		}
		return acquire, release
	}))
}

// Readers and writers killed while holding, while queued, and between a release and the next
// acquire leave nothing behind that outlives their TTL: every key of the name has a TTL while they
// run, and none is left once the TTLs have passed (the writers' fencing counter aside).
func TestKilledHoldersAndWaitersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash")
}
