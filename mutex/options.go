package mutex

import (
	"time"

	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Option configures a [Mutex].
type Option = primitive.Option

// WithErrorHandler sets the function that receives the errors nobody else can see: a lock lost
// while held outside [Mutex.Do] and [Mutex.TryDo] (which return it instead), and the failures of
// the [sync.Locker] returned by [Mutex.Locker]. Default: the quorum's error handler
// (lease.WithErrorHandler). A nil f restores the default.
func WithErrorHandler(f func(error)) Option { return primitive.WithErrorHandler(f) }

// WithTTL sets the TTL of the mutex's leases: how long the lock outlives a holder that crashed,
// since the watchdog renews it at TTL/3 while it is held. Default: the quorum's (lease.WithTTL).
// It must be at least 10ms and more than three of the quorum's node timeouts; the locking methods
// return lease.ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return primitive.WithTTL(d) }

// WithFencing gives every lock of the mutex a fencing token ([lease.Lease.Fence] of the lease
// [Mutex.Obtain] returns): a number that strictly increases across the holders of the name, in the
// order they acquired it, even over N nodes — for the resource the lock protects to check, so
// that a holder paused past its lease cannot write after another (see package fence). It costs no
// extra round trip with N = 1 (the lock is then a script rather than a plain SET NX), and one with
// more nodes. The counter is a key of its own per name, "<prefix>{<name>}:fence", without a TTL:
// it must survive a node's restart, so use AOF persistence. A fenced lease is never passed to
// another goroutine (see lease's Local handoff). Default: off.
func WithFencing() Option { return primitive.WithFencing() }

// WithLabel sets a short text that the servers keep beside the holder's host and pid for every
// locks of the Mutex, and that lease.Quorum.Inspect and `quorumsync inspect` show: what the holder is
// doing, for the people who look ("job=nightly-report"). At most 128 bytes, any bytes (the
// servers store them escaped); the acquiring methods return lease.ErrInvalidArgument for a longer
// one. Default: none.
func WithLabel(label string) Option { return primitive.WithLabel(label) }
