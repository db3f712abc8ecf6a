package semaphore

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Locker returns s as a [sync.Locker] of weight 1: Lock is Acquire(ctx, 1), Unlock is
// Release(ctx, 1). Neither can return an error, so:
//   - Lock blocks until it holds a permit. Through errors that can heal (nodes down or hung) it
//     keeps trying and reports the failed attempts to the error handler ([WithErrorHandler]), at
//     most one report a second, each saying how many failures it stands for. On an error that
//     cannot heal — the quorum is closed, s is not usable, a node is misconfigured or the
//     capacity differs from the one in use (lease.ErrMisconfigured) — it reports the error and
//     then panics with it: returning would let the caller in without a permit, and retrying would
//     hang it for ever. The panic value is the error.
//   - Unlock releases one permit; an error (none held, lost, too few nodes) goes to the handler.
//
// It never panics on a network error.
func (s *Semaphore) Locker() sync.Locker {
	var k *primitive.Locker
	k = primitive.NewLocker(func(ctx context.Context) error {
		l, err := s.claim(ctx, 1, true, "Acquire", true, k.Failed)
		if err != nil {
			return err
		}
		s.add(l)
		return nil
	}, func(ctx context.Context) error { return s.Release(ctx, 1) }, s.report)
	return k
}

// report hands err to the error handler (nil-safe).
func (s *Semaphore) report(err error) {
	if s == nil {
		(&primitive.Shell{}).Report(err)
		return
	}
	s.s.Report(err)
}
