package mutex

import (
	"errors"

	"github.com/quorumsync/quorumsync/lease"
)

// The sentinels a Mutex returns. Those shared with package lease are the same values, so
// errors.Is(err, mutex.ErrNotAcquired) and errors.Is(err, lease.ErrNotAcquired) agree.
var (
	// ErrNotAcquired: TryLock found the mutex held, too few nodes answered, or Lock's ctx ended
	// (then the error also matches the ctx's error).
	ErrNotAcquired = lease.ErrNotAcquired
	// ErrNotLocked: Unlock of a Mutex that is not locked (never locked, or unlocked twice).
	ErrNotLocked = errors.New("mutex: unlock of unlocked mutex")
	// ErrLost: the lease was lost while held (expired before renewal, found gone on the servers,
	// max hold time reached, or quorum closed). Unlock returns it when the loss came first; Do's
	// ctx has it as its cause.
	ErrLost = lease.ErrLost
	// ErrNotHeld: Unlock found that a majority of nodes no longer held the lock.
	ErrNotHeld = lease.ErrNotHeld
	// ErrClosed: the Quorum was closed.
	ErrClosed = lease.ErrClosed
	// ErrInvalidArgument: bad input; the error names the argument.
	ErrInvalidArgument = lease.ErrInvalidArgument
)
