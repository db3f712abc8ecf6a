package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures an [Instrumentation].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp            trace.TracerProvider
	mp            metric.MeterProvider
	nameOnMetrics bool
}

// WithTracerProvider sets the provider of the tracer that records acquire, renew and lost spans.
// Default (or nil): the global provider, [otel.GetTracerProvider]. Until the application sets one
// that is a no-op; one the application sets later, even after [New], is used from then on.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the provider of the meter that records the quorumsync.* metrics.
// Default (or nil): the global provider, [otel.GetMeterProvider], which like the tracer provider
// is a no-op until the application sets one, and picks up one set after [New].
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithNameAttribute, when on is true, adds the lock name (quorumsync.lock.name) to every metric
// data point. Default false: metrics are broken down by primitive, operation and outcome only,
// because a name per order, user or job makes one time series per name. Spans always carry the
// name, whatever this option says. Turn it on only when the names are few and fixed.
func WithNameAttribute(on bool) Option {
	return optionFunc(func(c *config) { c.nameOnMetrics = on })
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	// Resolved once: before the application sets a provider, these are the global delegates,
	// which forward to the provider set later, so nothing is lost by not looking again.
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}
