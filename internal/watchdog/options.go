package watchdog

import "time"

// Defaults.
const (
	defaultWindow = 5 * time.Millisecond
	// defaultEarly is how much of a lease's renewal interval (TTL/3) it may be renewed early by,
	// to join a batch another lease's renewal started.
	defaultEarly = 0.5
)

// Option configures a [Watchdog].
type Option interface{ apply(*config) }

type config struct {
	window   time.Duration
	early    float64
	maxBatch int
	drift    func(ttl time.Duration) time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithBatchWindow sets the least a renewal may be pulled ahead of its due time into a batch that
// another renewal started, so that renewals due close together share one round trip per node.
// Default 5ms. Values below zero count as zero. See also [WithEarlyRenewal], which scales with the
// TTL and usually pulls in far more.
func WithBatchWindow(d time.Duration) Option {
	return optionFunc(func(c *config) { c.window = max(d, 0) })
}

// WithEarlyRenewal sets how early a renewal may be pulled into a batch that another renewal
// started, as a fraction of its renewal interval (TTL/3): a lease due within that much of the
// batch is renewed with it. Renewing early is safe (validity is measured from the renewal's
// start); it makes leases renewed together stay together, so that leases acquired at any times
// settle into about one batch per interval: holding 10,000 leases costs a few pipelines per node
// per TTL/3, not one per lease. Default 0.5; 0 turns it off (only [WithBatchWindow] applies);
// values are clamped to [0, 1].
func WithEarlyRenewal(fraction float64) Option {
	return optionFunc(func(c *config) { c.early = min(max(fraction, 0), 1) })
}

// WithMaxBatch caps how many leases one call of the [RenewFunc] renews; a larger batch is handed
// over in chunks of at most n, one after another, so that one slow reply (a per-node timeout)
// cannot fail all of it. Default 0: no cap.
func WithMaxBatch(n int) Option {
	return optionFunc(func(c *config) { c.maxBatch = max(n, 0) })
}

// WithDrift gives the clock-drift allowance the RenewFunc subtracts from a renewal's TTL. The
// watchdog uses it for a renewal that asks for less than the TTL (one capped by the max hold
// time), which may shorten the lease on the servers: before such a renewal is sent, Until comes
// down to no later than its start + TTL − drift, whether or not the reply comes back. Default: no
// allowance.
func WithDrift(drift func(ttl time.Duration) time.Duration) Option {
	return optionFunc(func(c *config) { c.drift = drift })
}
