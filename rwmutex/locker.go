package rwmutex

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Locker returns a [sync.Locker] whose Lock and Unlock are rw's Lock and Unlock, and RLocker one
// whose Lock and Unlock are RLock and RUnlock ([sync.RWMutex.RLocker]). Neither can return an
// error, so:
//   - Lock blocks until the lock is held. Through errors that can heal (nodes down or hung) it
//     keeps trying and reports the failed attempts to the error handler ([WithErrorHandler]), at
//     most one report a second, each saying how many failures it stands for. On an error that
//     cannot heal — the quorum is closed, rw is not usable, or a node is misconfigured (see
//     lease.ErrMisconfigured) — it reports the error and then panics with it, as [sync.RWMutex]
//     does on misuse: returning would let the caller in without the lock, and retrying would hang
//     it for ever. The panic value is the error.
//   - Unlock releases; an error (not locked, lost, too few nodes) goes to the handler.
//
// They never panic on a network error.
func (rw *RWMutex) Locker() sync.Locker { return rw.locker(false) }

// RLocker returns rw's read lock as a [sync.Locker]; see [RWMutex.Locker].
func (rw *RWMutex) RLocker() sync.Locker { return rw.locker(true) }

func (rw *RWMutex) locker(read bool) sync.Locker {
	var r engine.Request
	lock, unlock := rw.lock, rw.Unlock
	if read {
		lock, unlock = rw.rlock, rw.RUnlock
	}
	if rw != nil {
		r = rw.lockReq
		if read {
			r = rw.rlockReq
		}
	}
	var k *primitive.Locker
	r.OnRetry = func(err error) { k.Failed(err) }
	k = primitive.NewLocker(func(ctx context.Context) error {
		if rw == nil {
			return errNil
		}
		return lock(ctx, &r)
	}, unlock, rw.report)
	return k
}

// report hands err to the error handler (nil-safe).
func (rw *RWMutex) report(err error) {
	if rw == nil {
		(&primitive.Shell{}).Report(err)
		return
	}
	rw.s.Report(err)
}
