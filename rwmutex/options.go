package rwmutex

import (
	"time"

	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Option configures a [RWMutex].
type Option = primitive.Option

// WithErrorHandler sets the function that receives the errors nobody else can see: a lock lost
// while held outside the Do family (which returns it instead), and the failures of the
// [sync.Locker]s of [RWMutex.Locker] and [RWMutex.RLocker]. Default: the quorum's error handler
// (lease.WithErrorHandler). A nil f restores the default.
func WithErrorHandler(f func(error)) Option { return primitive.WithErrorHandler(f) }

// WithTTL sets the TTL of the RWMutex's leases, readers' and writers' alike: how long the lock outlives a holder that crashed,
// since the watchdog renews it at TTL/3 while it is held. Default: the quorum's (lease.WithTTL).
// It must be at least 10ms and more than three of the quorum's node timeouts; the locking methods
// return lease.ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return primitive.WithTTL(d) }

// WithFencing gives every write lock a fencing token ([lease.Lease.Fence] of the lease
// [RWMutex.Obtain] returns): a number that strictly increases across the writers of the name, in
// the order they acquired it, even over N nodes — for the resource to check, so that a writer
// paused past its lease cannot write after another (see package fence). Read locks have none:
// readers do not write. No extra round trip with N = 1, one with more nodes. The counter is a key
// of its own, "<prefix>{<name>}:rw:fence", without a TTL: it must survive a node's restart, so
// use AOF persistence. Default: off.
func WithFencing() Option { return primitive.WithFencing() }

// WithLabel sets a short text that the servers keep beside the holder's host and pid for every
// locks, read and write of the RWMutex, and that lease.Quorum.Inspect and `quorumsync inspect` show: what the holder is
// doing, for the people who look ("job=nightly-report"). At most 128 bytes, any bytes (the
// servers store them escaped); the acquiring methods return lease.ErrInvalidArgument for a longer
// one. Default: none.
func WithLabel(label string) Option { return primitive.WithLabel(label) }
