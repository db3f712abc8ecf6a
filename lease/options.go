package lease

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Option configures a [Quorum].
type Option = engine.Option

// WithTTL sets the default lifetime of a lease on the servers without renewal; each primitive may
// ask for its own (their WithTTL options). The watchdog renews held leases at TTL/3, so the TTL
// bounds how long a crashed holder blocks others. Default 10s; at least 10ms, below which the
// allowance for clock drift leaves no validity.
func WithTTL(ttl time.Duration) Option { return engine.WithTTL(ttl) }

// WithNodeTimeout sets how long one node may take to answer one request. A node slower than that
// counts as a failed vote, so a hung node cannot eat the lease's validity. It must be less than a
// third of every TTL in use. Default: TTL/10, at most 250ms. The node clients must have
// ContextTimeoutEnabled set for the timeout to reach their sockets (NewQuorum checks).
func WithNodeTimeout(d time.Duration) Option { return engine.WithNodeTimeout(d) }

// WithMaxHold caps the total time a lease may be held: renewals never extend it past acquisition
// + d (the last one asks only for the time left, so the keys on the servers end there too), so a
// wedged holder cannot keep a lock forever. For a lease passed between goroutines ([WithHandoff])
// the acquisition is the servers' grant, not the pass. The lease is then lost with a cause that
// matches watchdog.ErrMaxHold. A d below the TTL also shortens the first grant. Default 0: no cap.
func WithMaxHold(d time.Duration) Option { return engine.WithMaxHold(d) }

// WithKeyPrefix sets the prefix of every key and channel name. Default "quorumsync:". It may not
// contain '{' or '}', which would change the hash tag. The minimal ACL (see the README) grants
// the prefix's key and channel patterns.
func WithKeyPrefix(p string) Option { return engine.WithKeyPrefix(p) }

// WithLogger sets the quorum's logger: what NewQuorum finds at start-up (a node that did not
// answer, a set-up that can break exclusion, a check that could not run), and the default error
// handler's output. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return engine.WithLogger(l) }

// WithErrorHandler sets the quorum's error handler: it receives the errors nobody else can see —
// a lease lost while its holder was not looking, and the failures of the primitives'
// sync.Locker adapters (unless a primitive has a handler of its own). A loss is reported from the
// quorum's notifier goroutine, which runs nothing else that matters: a slow handler delays other
// handlers, never a lease's renewal or its Done. A Locker's failure is reported from the goroutine
// that called the Locker. Default: log at level Error on the quorum's logger. A nil f restores the
// default.
func WithErrorHandler(f func(error)) Option { return engine.WithErrorHandler(f) }

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
// path is unchanged. It cannot be used with Cluster clients. Default: off.
func WithRestartGuard(longest time.Duration) Option { return engine.WithRestartGuard(longest) }

// WithReplicaAck makes a node's grant count only once its replicas have it: after the acquire's
// request, on the same connection, the node is sent WAIT replicas timeout, and its vote counts only
// if at least replicas replicas confirmed the write within timeout; a node that cannot confirm
// (or whose WAIT does not answer in time) is a failed vote, and what it granted is undone there,
// whether or not the others made a quorum. Renewals are acknowledged the same way (a
// renewal a promoted replica missed would let the key expire before the validity it gave), and so
// is the second round of fencing (a counter a failover forgot would hand out a token twice).
// Releases are not: a replica that missed one only delays the next holder, by at most the TTL. It
// protects grants against a Sentinel or Cluster failover to a replica that had not received them.
//
// What WAIT promises: that many replicas had received the write (in memory) when it returned. What
// it does not: that the replica Sentinel or Cluster promotes is one of them (ask for as many
// replicas as each node has: NewQuorum and Quorum.Health warn otherwise, for plain and Sentinel
// nodes; a Cluster's replica count is per shard), that the write survives
// a crash of all of them at once (persistence does that), or consistency beyond the write (Redis
// stays an asynchronously replicated store). With fewer replicas connected than asked for, every
// grant fails (lease.ErrUnavailable, each node error saying how many replicas confirmed): the
// quorum refuses what it cannot protect. The cost: each acquire round and each renewal batch waits
// for the replication of its writes, a round trip between the node and its replicas, in the same
// pipeline (no extra round trip from the client; one more with the restart guard; a renewal batch
// on a Cluster node sends one pipeline per shard, one after the other). A release does
// not grant its waiter directly (lease doc, Direct grant), since the WAIT must follow the grant's
// write on the connection that wrote it; the waiter asks, as with N > 1. timeout must be > 0 and at
// most half the node timeout. Nodes must be *redis.Client (a Sentinel failover client is one) or
// *redis.ClusterClient. Default: off.
func WithReplicaAck(replicas int, timeout time.Duration) Option {
	return engine.WithReplicaAck(replicas, timeout)
}

// WithHandoff sets the handoff budget: for how long after the servers granted a claim its
// holder's release may pass it straight to a goroutine of the same process that waits for the
// name, with no request to the servers. The rule, its bounds and where it does not apply are in
// the package doc (Local handoff). 0 turns passing off. Default 1ms.
func WithHandoff(d time.Duration) Option { return engine.WithHandoff(d) }

// WithTracerProvider sets the OpenTelemetry tracer provider for the spans around every acquire
// (see package tracing). Default: the global provider, which records nothing until the
// application sets one.
func WithTracerProvider(tp trace.TracerProvider) Option { return engine.WithTracerProvider(tp) }

// WithMeterProvider sets the OpenTelemetry meter provider for the acquire, hold, renewal and
// waiter metrics. Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option { return engine.WithMeterProvider(mp) }

// WithNameMetrics puts the lock name on metrics too (spans always carry it). Off by default: a
// name per order or per user would make one time series each.
func WithNameMetrics(on bool) Option { return engine.WithNameMetrics(on) }
