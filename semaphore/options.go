package semaphore

import "time"

// Option configures a [Semaphore].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
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
