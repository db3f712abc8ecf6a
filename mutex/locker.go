package mutex

import (
	"context"
	"sync"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Locker returns m as a [sync.Locker], for code that takes one. Neither of its methods can return
// an error, so:
//   - Lock blocks until m is held. Through errors that can heal (nodes down or hung) it keeps
//     trying and reports the failed attempts to the error handler ([WithErrorHandler]), at most
//     one report a second, each saying how many failures it stands for. On an error that cannot
//     heal — the quorum is closed, m is not usable, or a node is misconfigured (see
//     lease.ErrMisconfigured) — it reports the error and then panics with it, as [sync.Mutex]
//     does on misuse: returning would let the caller into its critical section without the lock,
//     and retrying would hang it for ever. The panic value is the error, so errors.Is works on it
//     after recover.
//   - Unlock is [Mutex.Unlock]; an error (not locked, lost, too few nodes) goes to the handler.
//
// It never panics on a network error.
func (m *Mutex) Locker() sync.Locker {
	var r engine.Request
	if m != nil {
		r = m.lockReq
	}
	var k *primitive.Locker
	r.OnRetry = func(err error) { k.Failed(err) }
	k = primitive.NewLocker(func(ctx context.Context) error {
		if m == nil {
			return errNil
		}
		_, err := m.take(ctx, &r)
		return err
	}, m.Unlock, m.report)
	return k
}

// report hands err to the error handler (nil-safe: a nil Mutex's Locker reports to the default).
func (m *Mutex) report(err error) {
	if m == nil {
		(&primitive.Shell{}).Report(err)
		return
	}
	m.s.Report(err)
}
