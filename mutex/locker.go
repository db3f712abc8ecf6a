package mutex

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Locker returns m as a [sync.Locker], for code that takes one. Its Lock blocks until m is held,
// retrying through Redis errors; its Unlock releases m. Neither can return an error, so errors
// (Redis failures while locking, a failed unlock, a lease lost while held) go to the handler set
// with [WithErrorHandler], which logs them by default. It never panics on a network error.
//
// Lock retries even errors that cannot heal, such as a closed quorum, reporting each to the
// handler with growing intervals (up to 5s): a sync.Locker has no way to give up.
func (m *Mutex) Locker() sync.Locker { return locker{m} }

type locker struct{ m *Mutex }

func (k locker) Lock() {
	var bo *backoff.ExponentialBackOff
	for {
		err := k.m.Lock(context.Background())
		if err == nil {
			return
		}
		k.m.report(fmt.Errorf("mutex %q: locker: lock: %w", k.m.Name(), err))
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

func (k locker) Unlock() {
	if err := k.m.Unlock(context.Background()); err != nil {
		k.m.report(fmt.Errorf("mutex %q: locker: unlock: %w", k.m.Name(), err))
	}
}
