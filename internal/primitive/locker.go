package primitive

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Locker is a primitive's [sync.Locker]. Lock takes the lock with a blocking acquire whose
// request's OnRetry is [Locker.Failed]; Unlock releases it.
// Neither can return an error, so errors go to the primitive's handler: the failures of a Lock
// that keeps trying are folded into at most one report a second, which counts them. An error that
// cannot heal (the quorum closed, a bad argument, a misconfigured node) is reported and then
// panicked with: returning would let the caller in unprotected, and retrying would hang it for
// ever. The panic value is the error, so errors.Is works on it after recover.
type Locker struct {
	lock   func(ctx context.Context) error
	unlock func(ctx context.Context) error
	report func(error)

	mu     sync.Mutex
	last   time.Time // when the last report went out
	folded int       // failures not reported since
}

// NewLocker returns a Locker over lock, a blocking acquire whose request's OnRetry calls the
// Locker's Failed, and unlock.
func NewLocker(lock, unlock func(context.Context) error, report func(error)) *Locker {
	return &Locker{lock: lock, unlock: unlock, report: report}
}

// reportEvery is the least time between two reports of one Locker's failures.
const reportEvery = time.Second

// Failed reports err unless a report went out less than a second ago; then it counts it, and the
// next report says how many it stands for.
func (k *Locker) Failed(err error) {
	k.mu.Lock()
	now := time.Now()
	if now.Sub(k.last) < reportEvery {
		k.folded++
		k.mu.Unlock()
		return
	}
	folded := k.folded
	k.last, k.folded = now, 0
	k.mu.Unlock()
	if folded > 0 {
		err = &foldedError{err, folded}
	}
	k.report(err)
}

// foldedError is a report that stands for more failures than its own.
type foldedError struct {
	error
	folded int
}

func (e *foldedError) Error() string {
	return fmt.Sprintf("%v (and %d more failed attempts since the last report)", e.error, e.folded)
}

func (e *foldedError) Unwrap() error { return e.error }

// Lock blocks until the lock is held.
func (k *Locker) Lock() {
	var bo *backoff.ExponentialBackOff
	for {
		err := k.lock(context.Background())
		if err == nil {
			return
		}
		if engine.IsPermanent(err) {
			k.report(err)
			panic(err)
		}
		// A blocking acquire with a ctx that never ends returns only on errors that cannot heal;
		// anything else is retried here all the same, reported like a failed round.
		k.Failed(err)
		if bo == nil {
			bo = backoff.NewExponentialBackOff(
				backoff.WithInitialInterval(50*time.Millisecond),
				backoff.WithMaxInterval(5*time.Second),
				backoff.WithMaxElapsedTime(0),
			)
		}
		time.Sleep(bo.NextBackOff())
	}
}

// Unlock releases the lock; an error goes to the handler.
func (k *Locker) Unlock() {
	if err := k.unlock(context.Background()); err != nil {
		k.report(err)
	}
}
