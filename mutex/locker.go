package mutex

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// Locker returns m as a [sync.Locker], for code that takes one. Neither of its methods can return
// an error, so:
//   - Lock blocks until m is held. It retries through errors that can heal (nodes down, the name
//     held by a holder that crashed), reporting each to the error handler (see
//     [WithErrorHandler]), with growing pauses up to 5s. On an error that cannot heal — the
//     quorum is closed ([ErrClosed]), or m is not usable ([ErrInvalidArgument]) — it reports the
//     error and then panics with it, as [sync.Mutex] does on misuse: returning would let the
//     caller into its critical section without the lock, and retrying would hang it for ever. The
//     panic value is the error, so errors.Is works on it after recover.
//   - Unlock releases m; an error (not locked, lost, too few nodes) goes to the handler.
//
// It never panics on a network error.
func (m *Mutex) Locker() sync.Locker { return locker{m} }

type locker struct{ m *Mutex }

func (k locker) Lock() { lease.Hold(k.m.Lock, k.m.report) }

func (k locker) Unlock() {
	if err := k.m.Unlock(context.Background()); err != nil {
		k.m.report(err)
	}
}
