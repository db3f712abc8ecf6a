package rwmutex

import (
	"errors"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// errs build the package's errors: they say "rwmutex: ..." and match package lease's sentinels
// (lease.ErrNotAcquired, lease.ErrLost, ...), which are the ones to match with errors.Is.
var errs = engine.NewErrors("rwmutex")

// The errors of this package's own, matched with errors.Is.
var (
	// ErrNotLocked: Unlock of an RWMutex that Lock or TryLock did not write-lock: never locked,
	// unlocked twice, or only read-locked (the error then says so; use RUnlock).
	ErrNotLocked = errors.New("rwmutex: Unlock of unlocked RWMutex")
	// ErrNotRLocked: RUnlock of an RWMutex that RLock or TryRLock did not read-lock: never
	// read-locked, read-unlocked more often than read-locked, or only write-locked (the error then
	// says so; use Unlock).
	ErrNotRLocked = errors.New("rwmutex: RUnlock of unlocked RWMutex")
	// ErrUpgrade: a write lock (Lock, TryLock, Do, TryDo, Obtain, TryObtain) asked for with the ctx
	// of an RDo or TryRDo of the same name, by a function that holds a read lock: a read lock
	// cannot be upgraded (waiting for it would wait for itself). Release the read lock first.
	ErrUpgrade = errors.New("rwmutex: write lock while holding a read lock (upgrade)")
)
