// Package tracing says what quorumsync records in OpenTelemetry — a span around every acquire
// (lock, read lock, permits), and metrics on acquires and on the leases they yield — and exports
// the names to find it by: the instrumentation scope, the attribute keys and the outcomes.
//
// The primitives record it; applications only choose the providers. The library uses the
// OpenTelemetry API alone, never the SDK: what is recorded, and where it goes, is up to the
// providers the application installs.
//
// # Defaults
//
// A quorum uses the global tracer and meter providers unless given others with
// lease.WithTracerProvider and lease.WithMeterProvider. Until the application sets global
// providers (otel.SetTracerProvider, otel.SetMeterProvider) these record nothing; a provider set
// later, even after lease.NewQuorum, is used from then on, because the global providers forward
// to it. The
// instrumentation scope is [ScopeName], version [Version].
//
// # Spans
//
// Every acquire starts a span named "<primitive>.<operation>" ("mutex.Lock",
// "rwmutex.TryRLock", "semaphore.Acquire", "election.Campaign"), a child of the caller's span. It
// carries quorumsync.primitive, quorumsync.operation, quorumsync.lock.name, quorumsync.nodes,
// quorumsync.quorum and, for semaphores, quorumsync.permits; when it ends
// quorumsync.attempts, quorumsync.outcome, quorumsync.wait and, when acquired,
// quorumsync.validity (durations in seconds, as float64). Events: "retry", "wakeup",
// "node.error". Contention and cancellation are outcomes, not errors: only [OutcomeError] sets
// the status to Error, with error.type and an exception event.
//
// After the acquire, what happens to the lease is linked back to the acquire span: a failed
// renewal makes a "<primitive>.renew" span and a lost lease a "<primitive>.lost" span, both with
// status Error and a link to the acquire span; and, for the function of a Do, an event
// ("lease.renew_failed", "lease.lost") on the span of the ctx Do was called with.
//
// # Metrics
//
//	quorumsync.acquire.duration  histogram, s     primitive, operation, outcome (an Outcome)
//	quorumsync.hold.duration     histogram, s     primitive, operation, outcome ("released", "lost")
//	quorumsync.renewals          counter          primitive, operation, outcome ("ok", "failed")
//	quorumsync.leases.lost       counter          primitive, operation
//	quorumsync.waiters           up-down counter  primitive, operation
//	quorumsync.leases.held       up-down counter  primitive, operation
//
// The attribute keys are the quorumsync.* keys of the spans.
//
// # Cardinality
//
// Metric attributes are few and fixed: four primitives, seven operations, four outcomes. The lock
// name is on spans but not on metrics, since names such as "orders:42" would make one time
// series each. lease.WithNameMetrics adds it to metrics when the names are few and fixed.
//
// # Overhead
//
// With no provider set (or no-op ones), an acquire costs the OTel API's no-op span (the global one
// makes three small allocations) and nothing else, no clock read, no attribute. With providers,
// attributes are built only for recording spans, and the metric attribute sets of each primitive,
// operation and outcome are built once and reused.
//
// # Caveats
//
//   - An acquire started before the application sets its providers is not recorded, nor is the
//     lease it yields; those started after are.
//   - The acquire span's attributes are set when it ends, so samplers and span processors see
//     only its name when it starts.
//   - The renew and lost spans start traces of their own (they are recorded on the quorum's
//     notifier goroutine, after the watchdog found the failure or the loss, long after the
//     acquire), tied to the acquire by a span link. One is made per
//     failed renewal: during an outage that is one per held lease per renewal round, for the
//     sampler to thin out.
//   - The hold ends at the first of the release and the loss; a release after a loss records
//     nothing more.
package tracing
