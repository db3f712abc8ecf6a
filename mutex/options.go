package mutex

import "time"

// Option configures a [Mutex].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
	ttl     time.Duration
	fencing bool
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

// WithFencing gives every lock of the mutex a fencing token (m.Lease().Fence()): a number that
// strictly increases across the holders of the name, in the order they acquired it, even over N
// nodes — for the resource the lock protects to check, so that a holder paused past its lease
// cannot write after another (see package fence). It costs no extra round trip with N = 1 (the
// lock is then a script rather than a plain SET NX), and one with more nodes. The counter is a key
// of its own per name, "<prefix>{<name>}:fence", without a TTL: it must survive a node's restart,
// so use AOF persistence. Default: off.
func WithFencing() Option { return optionFunc(func(c *config) { c.fencing = true }) }
