package mutex

import (
	"errors"

	"github.com/quorumsync/quorumsync/lease"
)

// errs are the package's sentinels, derived from package lease's: each also matches its lease
// counterpart, so errors.Is(err, mutex.ErrNotAcquired) and errors.Is(err, lease.ErrNotAcquired)
// agree, while the text names this package ("mutex: not acquired").
var errs = lease.NewErrors("mutex")

// The sentinels a Mutex returns, matched with errors.Is.
var (
	// ErrNotAcquired: TryLock found the mutex held, too few nodes answered, or Lock's ctx ended
	// (then the error also matches the ctx's error, and carries the node errors of the last
	// attempt when nodes failed).
	ErrNotAcquired = errs.NotAcquired
	// ErrNotLocked: Unlock of a Mutex that is not locked (never locked, or unlocked twice).
	ErrNotLocked = errors.New("mutex: unlock of unlocked mutex")
	// ErrLost: the lease was lost while held (expired before renewal, found gone on the servers,
	// max hold time reached, or quorum closed). Unlock returns it when the loss came first; Do's
	// ctx has it as its cause, and Do returns it.
	ErrLost = errs.Lost
	// ErrNotHeld: Unlock found that a majority of nodes no longer held the lock: it had expired.
	ErrNotHeld = errs.NotHeld
	// ErrNotReleased: Unlock reached too few nodes; the lock expires on the servers within its
	// TTL, and nodes that come back get the release then. Do returns it when fn succeeded but the
	// unlock failed so.
	ErrNotReleased = errs.NotReleased
	// ErrNoFencing: a fencing token asked of a lock taken without [WithFencing].
	ErrNoFencing = errs.NoFencing
	// ErrClosed: the Quorum was closed.
	ErrClosed = errs.Closed
	// ErrInvalidArgument: bad input; the error names the argument.
	ErrInvalidArgument = errs.InvalidArgument
)
