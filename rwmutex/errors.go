package rwmutex

import (
	"errors"

	"github.com/quorumsync/quorumsync/lease"
)

// errs are the package's sentinels, derived from package lease's: each also matches its lease
// counterpart (and mutex's), while the text names this package ("rwmutex: not acquired").
var errs = lease.NewErrors("rwmutex")

// The sentinels an RWMutex returns, matched with errors.Is.
var (
	// ErrNotAcquired: a try found the lock held in the other mode (or, for TryRLock, a writer
	// waiting), too few nodes answered, or a blocking call's ctx ended (then the error also
	// matches the ctx's error, and carries the node errors of the last attempt when nodes failed).
	ErrNotAcquired = errs.NotAcquired
	// ErrNotLocked: Unlock of an RWMutex that holds no write lock: never locked, unlocked twice,
	// or only read-locked (the error then says so; use RUnlock).
	ErrNotLocked = errors.New("rwmutex: Unlock of unlocked RWMutex")
	// ErrNotRLocked: RUnlock of an RWMutex that holds no read lock: never read-locked, read-unlocked
	// more often than read-locked, or only write-locked (the error then says so; use Unlock).
	ErrNotRLocked = errors.New("rwmutex: RUnlock of unlocked RWMutex")
	// ErrUpgrade: Lock, TryLock or Do called with the ctx of an RDo of the same RWMutex's name, by
	// a function that holds a read lock: a read lock cannot be upgraded (waiting for it would wait
	// for itself). Release the read lock first.
	ErrUpgrade = errors.New("rwmutex: write lock while holding a read lock (upgrade)")
	// ErrLost: a lease was lost while held (expired before renewal, found gone on the servers,
	// max hold time reached, or quorum closed).
	ErrLost = errs.Lost
	// ErrNotHeld: an unlock found that a majority of nodes no longer held the lock: it had expired.
	ErrNotHeld = errs.NotHeld
	// ErrNotReleased: an unlock reached too few nodes; the lock expires on the servers within its
	// TTL, and nodes that come back get the release then.
	ErrNotReleased = errs.NotReleased
	// ErrNoFencing: a fencing token asked of a read lock, or of a write lock taken without
	// [WithFencing].
	ErrNoFencing = errs.NoFencing
	// ErrClosed: the Quorum was closed.
	ErrClosed = errs.Closed
	// ErrInvalidArgument: bad input; the error names the argument.
	ErrInvalidArgument = errs.InvalidArgument
)
