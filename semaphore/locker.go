package semaphore

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// Locker returns s as a [sync.Locker] of weight 1: Lock acquires one permit, Unlock releases one.
// Neither can return an error, so:
//   - Lock blocks until it holds a permit, retrying through errors that can heal (nodes down, a
//     holder that crashed), reporting each to the error handler ([WithErrorHandler]), with growing
//     pauses up to 5s. On an error that cannot heal — the quorum is closed ([ErrClosed]), s is not
//     usable ([ErrInvalidArgument]), or the capacity differs from the one in use
//     ([ErrCapacityMismatch]) — it reports the error and then panics with it: returning would let
//     the caller in without a permit, and retrying would hang it for ever. The panic value is
//     the error.
//   - Unlock releases one permit; an error (none held, lost, too few nodes) goes to the handler.
//
// It never panics on a network error.
func (s *Semaphore) Locker() sync.Locker { return locker{s} }

type locker struct{ s *Semaphore }

func (k locker) Lock() {
	lease.Hold(func(ctx context.Context) error { return k.s.Acquire(ctx, 1) }, k.s.report)
}

func (k locker) Unlock() {
	if err := k.s.Release(context.Background(), 1); err != nil {
		k.s.report(err)
	}
}
