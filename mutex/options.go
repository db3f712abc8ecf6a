package mutex

import "time"

// Option configures a [Mutex].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
}

// WithErrorHandler sets the function that receives the errors nobody else can see: a lease lost
// while held outside [Mutex.Do] (Do returns its loss instead), and the failures of the
// [sync.Locker] returned by [Mutex.Locker], whose methods cannot return errors. A lost lease is
// reported from the quorum's notifier goroutine; a Locker failure from the goroutine that called
// it. Default: the quorum's error handler (lease.WithErrorHandler), which logs on the quorum's
// logger (lease.WithLogger). A nil f restores the default.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithTTL sets the mutex's lease TTL: how long the lock outlives a holder that crashed, since the
// watchdog renews it at TTL/3 while it is held. Default: the quorum's (lease.WithTTL). It must be
// at least lease.MinTTL and more than three of the quorum's node timeouts; Lock and TryLock
// return ErrInvalidArgument otherwise.
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }
