package semaphore

import "time"

// Option configures a [Semaphore].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
	fencing bool
}

// WithErrorHandler sets the function that receives the errors nobody else can see: a lease lost
// while held outside [Semaphore.Do] (which returns its loss instead), and the failures of the
// [sync.Locker] of [Semaphore.Locker]. Default: the quorum's error handler
// (lease.WithErrorHandler), which logs on the quorum's logger. A nil f restores the default.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithTTL sets the TTL of the semaphore's permits: how long permits outlive a holder that crashed,
// since the watchdog renews them at TTL/3 while they are held. Default: the quorum's
// (lease.WithTTL). It must be at least lease.MinTTL and more than three of the quorum's node
// timeouts; the acquiring methods return ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// WithFencing gives every slot of every acquisition a fencing token (the handle's Fences, from
// [Semaphore.AcquirePermits]): per slot, a number that strictly increases across the holders of
// that slot, in the order they acquired it, even over N nodes — for a resource split into C parts,
// one per slot, to check. No extra round trip with N = 1, one with more nodes. The counters are a
// key of their own, "<prefix>{<name>}:sem:fence", without a TTL: they must survive a node's
// restart, so use AOF persistence. Default: off.
func WithFencing() Option { return optionFunc(func(c *config) { c.fencing = true }) }
