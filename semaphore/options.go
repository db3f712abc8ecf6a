package semaphore

import (
	"time"

	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Option configures a [Semaphore].
type Option = primitive.Option

// WithErrorHandler sets the function that receives the errors nobody else can see: permits lost
// while held outside [Semaphore.Do] and [Semaphore.TryDo] (which return it instead), and the
// failures of the [sync.Locker] of [Semaphore.Locker]. Default: the quorum's error handler
// (lease.WithErrorHandler). A nil f restores the default.
func WithErrorHandler(f func(error)) Option { return primitive.WithErrorHandler(f) }

// WithTTL sets the TTL of the semaphore's permits: how long permits outlive a holder that
// crashed, since the watchdog renews them at TTL/3 while they are held. Default: the quorum's (lease.WithTTL).
// It must be at least 10ms and more than three of the quorum's node timeouts; the acquiring methods
// return lease.ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return primitive.WithTTL(d) }

// WithFencing gives every slot of every acquisition a fencing token ([lease.Lease.Fences] of the
// lease [Semaphore.Obtain] returns, in the order of its Units): per slot, a number that strictly
// increases across the holders of that slot, in the order they acquired it, even over N nodes —
// for a resource split into C parts, one per slot, to check. No extra round trip with N = 1, one
// with more nodes. The counters are a key of their own, "<prefix>{<name>}:sem:fence", without a
// TTL: they must survive a node's restart, so use AOF persistence. Default: off.
func WithFencing() Option { return primitive.WithFencing() }

// WithLabel sets a short text that the servers keep beside the holder's host and pid for every
// permits of the Semaphore, and that lease.Quorum.Inspect and `quorumsync inspect` show: what the holder is
// doing, for the people who look ("job=nightly-report"). At most 128 bytes, any bytes (the
// servers store them escaped); the acquiring methods return lease.ErrInvalidArgument for a longer
// one. Default: none.
func WithLabel(label string) Option { return primitive.WithLabel(label) }
