package semaphore

import (
	"errors"
	"fmt"

	"github.com/quorumsync/quorumsync/lease"
)

// errs are the package's sentinels, derived from package lease's: each also matches its lease
// counterpart, while the text names this package ("semaphore: not acquired").
var errs = lease.NewErrors("semaphore")

// The sentinels a Semaphore returns, matched with errors.Is.
var (
	// ErrNotAcquired: TryAcquire found too few permits free (or others queued first), too few
	// nodes answered, or Acquire's ctx ended (then the error also matches the ctx's error, and
	// carries the node errors of the last attempt when nodes failed).
	ErrNotAcquired = errs.NotAcquired
	// ErrReleaseTooMany: Release of more permits than the Semaphore holds. Nothing is released.
	ErrReleaseTooMany = errors.New("semaphore: release of more permits than held")
	// ErrCapacityMismatch: the capacity given to New differs from the one stored on the servers
	// for the name by the processes using it now. The error is a [*CapacityError].
	ErrCapacityMismatch = errors.New("semaphore: capacity differs from the one in use")
	// ErrLost: a lease was lost while held (expired before renewal, found gone on the servers,
	// max hold time reached, or quorum closed).
	ErrLost = errs.Lost
	// ErrNotHeld: a release found that a majority of nodes no longer held the permits: they had
	// expired.
	ErrNotHeld = errs.NotHeld
	// ErrNotReleased: a release reached too few nodes; the permits expire on the servers within
	// their TTL, and nodes that come back get the release then.
	ErrNotReleased = errs.NotReleased
	// ErrNoFencing: fencing tokens asked of permits taken without [WithFencing].
	ErrNoFencing = errs.NoFencing
	// ErrClosed: the Quorum was closed.
	ErrClosed = errs.Closed
	// ErrInvalidArgument: bad input (a weight of 0 or less, or more than the capacity; a capacity
	// below 1; ...); the error names the argument.
	ErrInvalidArgument = errs.InvalidArgument
)

// CapacityError is the error of an acquire whose capacity differs from the one the processes that
// use the name now stored on a node; it matches [ErrCapacityMismatch]. (The capacity is stored
// while the semaphore is in use, and dropped with the rest when nothing is held and nobody waits.)
type CapacityError struct {
	Name     string
	Capacity int64 // the capacity asked for
	Stored   int64 // the capacity in use
}

// Error says what differs; the acquire's error around it names the semaphore.
func (e *CapacityError) Error() string {
	return fmt.Sprintf("capacity %d differs from the %d in use", e.Capacity, e.Stored)
}

// Is makes errors.Is(err, ErrCapacityMismatch) true.
func (e *CapacityError) Is(target error) bool { return target == ErrCapacityMismatch }
