package engine

import (
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/internal/mutation"
	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// Defaults.
const (
	DefaultTTL       = 10 * time.Second
	DefaultKeyPrefix = "quorumsync:"
	// MinTTL is the shortest TTL accepted: below it the clock drift allowance leaves no validity.
	MinTTL = 10 * time.Millisecond
	// DefaultHandoff is how long, by default, a process may keep a claim by passing it from one of
	// its goroutines to the next (see WithHandoff).
	DefaultHandoff = time.Millisecond
	// maxDefaultNodeTimeout caps the default per-node timeout for long TTLs.
	maxDefaultNodeTimeout = 250 * time.Millisecond
)

// Option configures a [Quorum].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	ttl         time.Duration
	nodeTimeout time.Duration // 0 until defaulted from ttl
	maxHold     time.Duration
	prefix      string
	logger      *slog.Logger
	onError     func(error)
	newBackOff  func() backoff.BackOff
	tracing     []telemetry.Option
	guard       time.Duration // restart guard: ignore votes of nodes up for less; 0: off
	guardSet    bool
	handoff     time.Duration // how long a process may pass a claim between its goroutines; 0: never
	owned       bool          // Close closes the clients (lease.Dial made them)
	// Replica acknowledgement: a node's grant (or renewal) counts only once WAIT confirms that
	// ackReplicas of its replicas have it, within ackTimeout; 0: off.
	ackReplicas int
	ackTimeout  time.Duration
	ackSet      bool
}

func defaultConfig() config {
	return config{
		ttl:        DefaultTTL,
		prefix:     DefaultKeyPrefix,
		newBackOff: defaultBackOff,
		handoff:    DefaultHandoff,
	}
}

// OwnClients makes the quorum's Close close its clients: lease.Dial made them, and nobody else
// holds them.
func OwnClients() Option { return optionFunc(func(c *config) { c.owned = true }) }

// WithTTL: see lease.WithTTL, which documents it.
func WithTTL(ttl time.Duration) Option { return optionFunc(func(c *config) { c.ttl = ttl }) }

// WithNodeTimeout: see lease.WithNodeTimeout, which documents it.
func WithNodeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.nodeTimeout = d })
}

// WithMaxHold: see lease.WithMaxHold, which documents it.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithKeyPrefix: see lease.WithKeyPrefix, which documents it.
func WithKeyPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// WithLogger: see lease.WithLogger, which documents it.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithErrorHandler: see lease.WithErrorHandler, which documents it.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithRestartGuard: see lease.WithRestartGuard, which documents it.
func WithRestartGuard(longest time.Duration) Option {
	return optionFunc(func(c *config) { c.guard = longest; c.guardSet = true })
}

// WithReplicaAck: see lease.WithReplicaAck, which documents it.
func WithReplicaAck(replicas int, timeout time.Duration) Option {
	return optionFunc(func(c *config) { c.ackReplicas, c.ackTimeout, c.ackSet = replicas, timeout, true })
}

// WithHandoff: see lease.WithHandoff, which documents it.
func WithHandoff(d time.Duration) Option {
	return optionFunc(func(c *config) { c.handoff = max(d, 0) })
}

// WithBackOff sets the retry schedule a blocking acquire falls back on when it cannot count on
// wake-ups (node errors, no subscription, a holder's key without a TTL), still at most TTL/2 and
// the holder's remaining TTL. newBackOff is called once per acquire. Not part of package lease's
// surface: the default (exponential from 2ms, factor 1.5, ±50%, at most 100ms) serves, and tests
// set their own.
func WithBackOff(newBackOff func() backoff.BackOff) Option {
	return optionFunc(func(c *config) { c.newBackOff = newBackOff })
}

// WithTracerProvider: see lease.WithTracerProvider, which documents it.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, telemetry.WithTracerProvider(tp)) })
}

// WithMeterProvider: see lease.WithMeterProvider, which documents it.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, telemetry.WithMeterProvider(mp)) })
}

// WithNameMetrics: see lease.WithNameMetrics, which documents it.
func WithNameMetrics(on bool) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, telemetry.WithNameAttribute(on)) })
}

func defaultBackOff() backoff.BackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     2 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          1.5,
		MaxInterval:         100 * time.Millisecond,
		MaxElapsedTime:      0, // the ctx bounds the wait
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}

// validate checks the options and fills the defaults that depend on others.
func (c *config) validate() error {
	if c.ttl < MinTTL {
		return Invalid("ttl", "%v is below the minimum %v", c.ttl, MinTTL)
	}
	if c.nodeTimeout == 0 {
		c.nodeTimeout = min(c.ttl/10, maxDefaultNodeTimeout)
	}
	if c.nodeTimeout < 0 || c.nodeTimeout >= c.ttl/3 {
		return Invalid("node timeout", "%v must be > 0 and < ttl/3 (%v)", c.nodeTimeout, c.ttl/3)
	}
	if c.maxHold < 0 || c.maxHold > 0 && c.maxHold < MinTTL {
		return Invalid("max hold", "%v must be 0 (no cap) or at least %v", c.maxHold, MinTTL)
	}
	if strings.ContainsAny(c.prefix, "{}") {
		return Invalid("key prefix", "%q contains '{' or '}'", c.prefix)
	}
	if c.newBackOff == nil {
		return Invalid("backoff", "nil")
	}
	if c.ackSet && c.ackReplicas < 1 {
		return Invalid("replica ack", "%d replicas: ask for at least 1", c.ackReplicas)
	}
	if c.ackSet && (c.ackTimeout <= 0 || c.ackTimeout > c.nodeTimeout/2) {
		return Invalid("replica ack", "a timeout of %v: it must be > 0 and at most half the node timeout (%v), which bounds the request and its WAIT together",
			c.ackTimeout, c.nodeTimeout)
	}
	if c.guardSet && c.guard < c.ttl {
		return Invalid("restart guard", "%v is shorter than the TTL %v: give the longest TTL any process uses", c.guard, c.ttl)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return nil
}

// checkTTL reports whether ttl can be a lease's TTL on a quorum with this config.
func (c *config) checkTTL(errs *Errors, name string, ttl time.Duration) error {
	if ttl < MinTTL {
		return errs.InvalidFor(name, "ttl", "%v is below the minimum %v", ttl, MinTTL)
	}
	if c.nodeTimeout >= ttl/3 {
		return errs.InvalidFor(name, "ttl", "%v must be more than 3 times the quorum's node timeout (%v)", ttl, c.nodeTimeout)
	}
	return nil
}

// drift is the allowance for clock drift between this process and the servers over a lifetime of
// ttl: 1% of it plus 2ms for timer granularity (the Redlock figure).
func drift(ttl time.Duration) time.Duration {
	if mutation.On(mutation.NoDrift) {
		return 0
	}
	return ttl/100 + 2*time.Millisecond
}

// validUntil is the validity rule: a claim that a quorum granted or renewed in answer to requests
// sent at start is valid until start + ttl − drift. Every node set it after start, so it expires
// on each of them no earlier than start + ttl by that node's clock; drift allows for the nodes'
// clocks running up to 1% fast against ours.
func validUntil(start time.Time, ttl time.Duration) time.Time {
	until := start.Add(ttl - drift(ttl))
	if mutation.On(mutation.ValidityLong) {
		until = until.Add(ttl / 100)
	}
	return until
}

// guardUp is how long a node must surely have been up for the restart guard to count its vote:
// the longest TTL plus its drift margin. The longest TTL alone would do (a lease from before the
// restart is valid only until its start + TTL − drift, and the drift covers a node clock running
// fast); the margin is extra, and costs a few milliseconds of a guard that lasts seconds.
func (c *config) guardUp() time.Duration { return c.guard + drift(c.guard) }

// minValidity is the least validity a grant must leave to be kept: a round that took longer than
// about three quarters of the TTL (a stalled process, a node call that overran its timeout) is
// undone and tried again rather than handing the caller a lease about to expire, which the
// watchdog could not renew in time. With the TTL more than three node timeouts, one healthy round
// always leaves more, and so do two (a fenced grant) for a TTL of 30ms or more.
func minValidity(ttl time.Duration) time.Duration { return ttl / 4 }

// AcquireOption configures one [Quorum.Acquire] or [Quorum.TryAcquire].
type AcquireOption interface{ applyAcquire(*Request) }

type acquireOptionFunc func(*Request)

func (f acquireOptionFunc) applyAcquire(r *Request) { f(r) }

// OnLost registers f to be called once if the lease is lost (not when it is released), from the
// quorum's notifier goroutine, after [Lease.Done] has closed. f gets the same error as
// [Lease.Err]. A slow f delays other loss handlers, never a renewal.
func OnLost(f func(error)) AcquireOption {
	return acquireOptionFunc(func(r *Request) { r.OnLost = f })
}

// Traced names the acquire in traces and metrics: the span is "<primitive>.<operation>" (for
// example "report.Acquire"). The default is "lease.Acquire" or "lease.TryAcquire".
func Traced(primitive, operation string) AcquireOption {
	return acquireOptionFunc(func(r *Request) { r.Primitive, r.Operation = primitive, operation })
}

// TTL sets the lease's TTL, instead of the quorum's (see [WithTTL]).
func TTL(d time.Duration) AcquireOption {
	return acquireOptionFunc(func(r *Request) { r.TTL = d })
}

// NodeTimeoutOf returns the per-node timeout a quorum made with opts would have (the default when
// opts do not set it, or set it wrongly: NewQuorum reports that).
func NodeTimeoutOf(opts ...Option) time.Duration {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return min(DefaultTTL/10, maxDefaultNodeTimeout)
	}
	return cfg.nodeTimeout
}
