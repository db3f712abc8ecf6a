package semaphore

import (
	"errors"
	"fmt"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/semkind"
)

// errs build the package's errors: they say "semaphore: ..." and match package lease's sentinels
// (lease.ErrNotAcquired, lease.ErrLost, ...), which are the ones to match with errors.Is.
var errs = engine.NewErrors("semaphore")

// The errors of this package's own, matched with errors.Is.
var (
	// ErrReleaseTooMany: Release of more permits than the Semaphore holds. Nothing is released.
	ErrReleaseTooMany = errors.New("semaphore: release of more permits than held")
	// ErrCapacityMismatch: the capacity given to New differs from the one stored on the servers
	// for the name by the processes using it now. The error is a [*CapacityError], and it also
	// matches lease.ErrMisconfigured: retrying does not heal it while processes with the other
	// capacity use the name (the capacity is forgotten once nothing is held and nobody waits).
	ErrCapacityMismatch = errors.New("semaphore: capacity differs from the one in use")
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

func init() {
	semkind.CapacityError = func(name string, capacity, stored int64) error {
		return &CapacityError{Name: name, Capacity: capacity, Stored: stored}
	}
}
