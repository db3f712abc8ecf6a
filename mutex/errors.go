package mutex

import (
	"errors"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// errs build the package's errors: they say "mutex: ..." and match package lease's sentinels
// (lease.ErrNotAcquired, lease.ErrLost, ...), which are the ones to match with errors.Is.
var errs = engine.NewErrors("mutex")

// ErrNotLocked is returned by an Unlock of a Mutex that Lock or TryLock did not lock (never
// locked, unlocked twice, or locked only through Obtain or Do, whose leases are their own).
var ErrNotLocked = errors.New("mutex: unlock of unlocked mutex")
