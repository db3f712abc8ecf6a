package rwmutex

import "time"

// Option configures an [RWMutex].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
	fencing bool
}

// WithErrorHandler sets the function that receives the errors nobody else can see: a lease lost
// while held outside [RWMutex.RDo] and [RWMutex.Do] (which return their loss instead), and the
// failures of the [sync.Locker]s of [RWMutex.Locker] and [RWMutex.RLocker]. Default: the quorum's
// error handler (lease.WithErrorHandler), which logs on the quorum's logger. A nil f restores the
// default.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithTTL sets the TTL of the RWMutex's leases, readers' and writers' alike: how long a lock
// outlives a holder that crashed, since the watchdog renews it at TTL/3 while it is held. Default:
// the quorum's (lease.WithTTL). It must be at least lease.MinTTL and more than three of the
// quorum's node timeouts; the locking methods return ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// WithFencing gives every write lock a fencing token (rw.Lease().Fence()): a number that strictly
// increases across the writers of the name, in the order they acquired it, even over N nodes — for
// the resource to check, so that a writer paused past its lease cannot write after another (see
// package fence). Read locks have none: readers do not write. No extra round trip with N = 1, one
// with more nodes. The counter is a key of its own, "<prefix>{<name>}:rw:fence", without a TTL: it
// must survive a node's restart, so use AOF persistence. Default: off.
func WithFencing() Option { return optionFunc(func(c *config) { c.fencing = true }) }
