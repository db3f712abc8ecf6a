package rwmutex

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// Locker returns a [sync.Locker] whose Lock and Unlock take and release rw's write lock, and
// RLocker one whose Lock and Unlock take and release a read lock ([sync.RWMutex.RLocker]). Neither
// can return an error, so:
//   - Lock blocks until the lock is held, retrying through errors that can heal (nodes down, a
//     holder that crashed), reporting each to the error handler ([WithErrorHandler]), with growing
//     pauses up to 5s. On an error that cannot heal — the quorum is closed ([ErrClosed]), or rw is
//     not usable ([ErrInvalidArgument]) — it reports the error and then panics with it, as
//     [sync.RWMutex] does on misuse: returning would let the caller in without the lock, and
//     retrying would hang it for ever. The panic value is the error.
//   - Unlock releases; an error (not locked, lost, too few nodes) goes to the handler.
//
// They never panic on a network error.
func (rw *RWMutex) Locker() sync.Locker { return locker{rw.Lock, rw.Unlock, rw.report} }

// RLocker returns rw's read lock as a [sync.Locker]; see [RWMutex.Locker].
func (rw *RWMutex) RLocker() sync.Locker { return locker{rw.RLock, rw.RUnlock, rw.report} }

type locker struct {
	lock, unlock func(context.Context) error
	report       func(error)
}

func (k locker) Lock() { lease.Hold(k.lock, k.report) }

func (k locker) Unlock() {
	if err := k.unlock(context.Background()); err != nil {
		k.report(err)
	}
}
