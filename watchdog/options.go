package watchdog

import "time"

const defaultWindow = 5 * time.Millisecond

// Option configures a [Watchdog].
type Option interface{ apply(*config) }

type config struct {
	window time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithBatchWindow sets how far ahead of its due time a renewal may be pulled into the current batch
// so that renewals due close together share one round trip per node. Default 5ms. Values below zero
// count as zero.
func WithBatchWindow(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			d = 0
		}
		c.window = d
	})
}
