package lease

import (
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/internal/mutation"
	"github.com/quorumsync/quorumsync/tracing"
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
	tracing     []tracing.Option
	guard       time.Duration // restart guard: ignore votes of nodes up for less; 0: off
	guardSet    bool
	handoff     time.Duration // how long a process may pass a claim between its goroutines; 0: never
}

func defaultConfig() config {
	return config{
		ttl:        DefaultTTL,
		prefix:     DefaultKeyPrefix,
		newBackOff: defaultBackOff,
		handoff:    DefaultHandoff,
	}
}

// WithTTL sets the default lifetime of a lease on the servers without renewal; each primitive (and
// each acquire, see [TTL]) may ask for its own. The watchdog renews held leases at TTL/3, so the
// TTL bounds how long a crashed holder blocks others. Default 10s; at least [MinTTL].
func WithTTL(ttl time.Duration) Option { return optionFunc(func(c *config) { c.ttl = ttl }) }

// WithNodeTimeout sets how long one node may take to answer one request. A node slower than that
// counts as a failed vote, so a hung node cannot eat the lease's validity. It must be less than a
// third of every TTL in use. Default: TTL/10, at most 250ms. The node clients must have
// ContextTimeoutEnabled set for the timeout to reach their sockets (NewQuorum checks).
func WithNodeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.nodeTimeout = d })
}

// WithMaxHold caps the total time a lease may be held: renewals never extend it past acquisition
// + d (the last one asks only for the time left, so the keys on the servers end there too), so a
// wedged holder cannot keep a lock forever. For a lease passed between goroutines
// ([WithHandoff]) the acquisition is the servers' grant, not the pass. The lease is then lost with a cause
// that matches watchdog.ErrMaxHold. A d below the TTL also shortens the first grant. Default 0: no
// cap.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithKeyPrefix sets the prefix of every key and channel name. Default "quorumsync:". It may not
// contain '{' or '}', which would change the hash tag.
func WithKeyPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// WithLogger sets the quorum's logger: warnings found at start-up (a node that did not answer, an
// eviction policy that can drop lock keys), and the default error handler's output. Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithErrorHandler sets the quorum's error handler: it receives the errors nobody else can see,
// such as a lease lost while its holder was not looking (packages mutex, rwmutex and semaphore
// report there unless given a handler of their own) and the failures of their sync.Locker
// adapters. It is called from a goroutine of the quorum's that runs nothing else that matters: a
// slow handler delays other handlers, never a lease's renewal or its Done. Default: log at level
// Error on the quorum's logger. A nil f restores the default.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithRestartGuard ignores the vote of a node that has been up for less than longest plus the
// drift margin, where longest must be at least the longest TTL any process uses on these nodes. A
// node restarted without persistence has forgotten the locks it held; until every lease that could
// have been granted before its restart has expired, its vote could make a second majority for a
// name that is held. With the guard, a node that restarts at once, empty, cannot cause a double
// grant: it takes part again once no lease from before its restart can still be valid.
//
// The uptime is the node's INFO uptime_in_seconds, read in the same MULTI as the acquire, so it is
// the node's uptime at the moment it granted. Redis computes it from wall-clock seconds truncated
// at both ends, so a reported u means more than u−1 seconds; the guard counts it as exactly that,
// and a node takes part again once it reports at least longest + drift + 1s, between longest +
// drift and longest + drift + 2s after its restart. What the guard needs from the server: an
// uptime that never runs ahead of the time since the server started by a second or more (Redis
// and Valkey compute it so) and a wall clock that does not step forward, which is a caveat of the
// quorum anyway. The cost is the INFO and the transaction on every acquire round, and acquires
// that cannot reach a majority of older nodes wait (or fail) meanwhile. Without it the uncontended
// path is unchanged. Default: off.
func WithRestartGuard(longest time.Duration) Option {
	return optionFunc(func(c *config) { c.guard = longest; c.guardSet = true })
}

// WithHandoff sets the handoff budget: for how long after the servers granted a one-at-a-time
// claim (a mutex, an rwmutex writer) its holder's release may pass it straight to the goroutine of
// the process that waits first for the name, with no request to the servers. The claim stays as
// it is on the nodes, under a new handle with the same token; the next holder takes over its
// renewals. Goroutines of one process that contend for a name thus take turns at the speed of a
// local mutex while the budget lasts; then the release goes to the servers, which serve the
// processes in the order they queued. A process keeps a name for at most the budget plus one
// critical section, so a waiter in another process waits about that per process queued before
// it. Goroutines of one process are served in arrival order whatever the budget. A lease is passed
// only with at least half its TTL of validity left, without fencing (the next holder needs a token
// of its own), and to a waiter that asks for the same kind, TTL and Data. 0 turns passing off:
// every acquisition then goes to the servers. Default [DefaultHandoff], 1ms.
func WithHandoff(d time.Duration) Option {
	return optionFunc(func(c *config) { c.handoff = max(d, 0) })
}

// WithBackOff sets the retry schedule a blocking acquire falls back on when it cannot count on
// wake-ups: when nodes fail, its subscriptions could not be made, or the name is held by a key with
// no TTL (left by another tool). (Otherwise it sleeps until woken, or at most the holder's
// remaining TTL.) newBackOff is called once per acquire and must return a fresh schedule. Whatever
// the schedule says, a waiter never sleeps longer than TTL/2, nor longer than the holder's
// remaining TTL when the servers report one. Default: exponential from 2ms, factor 1.5, jitter
// ±50%, at most 100ms.
func WithBackOff(newBackOff func() backoff.BackOff) Option {
	return optionFunc(func(c *config) { c.newBackOff = newBackOff })
}

// WithTracerProvider sets the OpenTelemetry tracer provider for the spans around every acquire
// (see package tracing). Default: the global provider, which records nothing until the
// application sets one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, tracing.WithTracerProvider(tp)) })
}

// WithMeterProvider sets the OpenTelemetry meter provider for the acquire, hold, renewal and
// waiter metrics. Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, tracing.WithMeterProvider(mp)) })
}

// WithNameMetrics puts the lock name on metrics too (spans always carry it). Off by default: a
// name per order or per user would make one time series each.
func WithNameMetrics(on bool) Option {
	return optionFunc(func(c *config) { c.tracing = append(c.tracing, tracing.WithNameAttribute(on)) })
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
		return invalid("ttl", "%v is below the minimum %v", c.ttl, MinTTL)
	}
	if c.nodeTimeout == 0 {
		c.nodeTimeout = min(c.ttl/10, maxDefaultNodeTimeout)
	}
	if c.nodeTimeout < 0 || c.nodeTimeout >= c.ttl/3 {
		return invalid("node timeout", "%v must be > 0 and < ttl/3 (%v)", c.nodeTimeout, c.ttl/3)
	}
	if c.maxHold < 0 || c.maxHold > 0 && c.maxHold < MinTTL {
		return invalid("max hold", "%v must be 0 (no cap) or at least %v", c.maxHold, MinTTL)
	}
	if strings.ContainsAny(c.prefix, "{}") {
		return invalid("key prefix", "%q contains '{' or '}'", c.prefix)
	}
	if c.newBackOff == nil {
		return invalid("backoff", "nil")
	}
	if c.guardSet && c.guard < c.ttl {
		return invalid("restart guard", "%v is shorter than the TTL %v: give the longest TTL any process uses", c.guard, c.ttl)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return nil
}

// checkTTL reports whether ttl can be a lease's TTL on a quorum with this config.
func (c *config) checkTTL(errs *Errors, ttl time.Duration) error {
	if ttl < MinTTL {
		return errs.Invalid("ttl", "%v is below the minimum %v", ttl, MinTTL)
	}
	if c.nodeTimeout >= ttl/3 {
		return errs.Invalid("ttl", "%v must be more than 3 times the quorum's node timeout (%v)", ttl, c.nodeTimeout)
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
