package rwmutex

import "time"

// Option configures an [RWMutex].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
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
