// Package tracing is the OpenTelemetry instrumentation of quorumsync: a span around every
// acquire (lock, read lock, permits), and metrics on acquires and on the leases they yield.
//
// The primitives call it; applications only choose the providers. It uses the OpenTelemetry API
// alone, never the SDK: what is recorded, and where it goes, is up to the providers the
// application installs.
//
// # Defaults
//
// An [Instrumentation] uses the global tracer and meter providers unless given others with
// [WithTracerProvider] and [WithMeterProvider]. Until the application sets global providers
// (otel.SetTracerProvider, otel.SetMeterProvider) these record nothing; a provider set later,
// even after [New], is used from then on, because the global providers forward to it. The
// instrumentation scope is [ScopeName], version [Version].
//
// # Spans
//
// [Instrumentation.StartAcquire] starts a span named "<primitive>.<operation>" ("mutex.Lock",
// "rwmutex.TryRLock", "semaphore.Acquire", "lease.Acquire"), a child of the caller's span. It
// carries quorumsync.primitive, quorumsync.operation, quorumsync.lock.name, quorumsync.nodes,
// quorumsync.quorum and, for semaphores, quorumsync.permits; at [Acquire.End]
// quorumsync.attempts, quorumsync.outcome, quorumsync.wait and, when acquired,
// quorumsync.validity (durations in seconds, as float64). Events: "retry", "wakeup",
// "node.error". Contention and cancellation are outcomes, not errors: only [OutcomeError] sets
// the status to Error, with error.type and an exception event.
//
// After the acquire, [Held] links what happens to the lease back to the acquire span: a failed
// renewal makes a "<primitive>.renew" span and a lost lease a "<primitive>.lost" span, both with
// status Error and a link to the acquire span; and, when the holder attached its own span with
// [Held.Attach], an event ("lease.renew_failed", "lease.lost") on it.
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
// Metric attributes are few and fixed: four primitives, six operations, four outcomes. The lock
// name is on spans but not on metrics, since names such as "orders:42" would make one time
// series each. [WithNameAttribute] adds it to metrics when the names are few and fixed.
//
// # Overhead
//
// With no provider set (or no-op ones), [Instrumentation.StartAcquire] returns a nil *Acquire
// and every later call is a nil check: an acquire costs the OTel API's no-op span (the global
// one makes three small allocations) and nothing else, no clock read, no attribute. With
// providers, attributes are built only for recording spans, and the metric attribute sets of
// each primitive, operation and outcome are built once and reused. See BenchmarkStartEnd.
//
// # Caveats
//
//   - An acquire started before the application sets its providers is not recorded, nor is the
//     lease it yields; those started after are.
//   - The acquire span's attributes are set when it ends, so samplers and span processors see
//     only its name when it starts.
//   - The renew and lost spans start traces of their own (they happen on the watchdog's
//     goroutine, long after the acquire), tied to the acquire by a span link. One is made per
//     failed renewal: during an outage that is one per held lease per renewal round, for the
//     sampler to thin out.
//   - The hold ends at the first of [Held.Released] and [Held.Lost]; a release after a loss
//     records nothing more.
package tracing
