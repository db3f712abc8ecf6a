package rwmutex_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/crashtest"
	"github.com/quorumsync/quorumsync/rwmutex"
)

func init() {
	childproc.Register("crash", crashChild)
}

// crashChild takes and gives up an rwmutex for ever, a writer one time in three and a reader
// otherwise (see crashtest.Loop).
func crashChild(args []string) error {
	a, err := crashtest.ParseArgs(args)
	if err != nil {
		return err
	}
	q, err := a.Quorum()
	if err != nil {
		return err
	}
	var opts []rwmutex.Option
	if a.Fenced {
		opts = append(opts, rwmutex.WithFencing())
	}
	rw := rwmutex.New(q, a.Name, append(opts, rwmutex.WithErrorHandler(func(error) {}))...)
	var writer bool
	acquire := func(ctx context.Context) error {
		writer = rand.N(3) == 0
		if writer {
			return rw.Lock(ctx)
		}
		return rw.RLock(ctx)
	}
	release := func(ctx context.Context) error {
		if writer {
			return rw.Unlock(ctx)
		}
		return rw.RUnlock(ctx)
	}
	return crashtest.Loop(a.TTL, acquire, release)
}

// Readers and writers killed while holding, while queued, and between a release and the next
// acquire leave nothing behind that outlives their TTL: every key of the name has a TTL while they
// run, and none is left once the TTLs have passed (the writers' fencing counter aside).
func TestKilledHoldersAndWaitersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash")
}
