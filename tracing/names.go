package tracing

import "github.com/quorumsync/quorumsync/internal/telemetry"

// ScopeName is the instrumentation scope of every span and metric of quorumsync: the import path
// of this package.
const ScopeName = telemetry.ScopeName

// Version is the instrumentation scope's version.
const Version = telemetry.Version

// The attribute keys quorumsync puts on its spans, events and metrics.
const (
	PrimitiveKey   = telemetry.PrimitiveKey   // "mutex", "rwmutex", "semaphore"
	OperationKey   = telemetry.OperationKey   // "Lock", "TryLock", "RLock", "Acquire", ...
	LockNameKey    = telemetry.LockNameKey    // spans; metrics only with lease.WithNameMetrics(true)
	NodesKey       = telemetry.NodesKey       // int: nodes in the quorum
	QuorumKey      = telemetry.QuorumKey      // int: votes needed
	PermitsKey     = telemetry.PermitsKey     // int: semaphore permits asked for
	AttemptsKey    = telemetry.AttemptsKey    // int: rounds sent to the nodes
	OutcomeKey     = telemetry.OutcomeKey     // an Outcome; "ok"/"failed" on renewals; "released"/"lost" on hold.duration
	WaitKey        = telemetry.WaitKey        // float64 s: from the acquire's start to its end
	ValidityKey    = telemetry.ValidityKey    // float64 s: validity left when acquired
	RetryWaitKey   = telemetry.RetryWaitKey   // float64 s: sleep before the next round
	RetryReasonKey = telemetry.RetryReasonKey // why the round failed
	WakeUpKey      = telemetry.WakeUpKey      // what woke a waiter: "pubsub" or "timer"
	NodeIndexKey   = telemetry.NodeIndexKey   // int: the node's position in the quorum
	NodeAddressKey = telemetry.NodeAddressKey // the node's address
	NodeTimeoutKey = telemetry.NodeTimeoutKey // bool: the node did not answer in time
	ErrorKey       = telemetry.ErrorKey       // error text, on events only
)

// Outcome is how an acquire ended, the value of [OutcomeKey] on its span and metrics.
type Outcome = telemetry.Outcome

// The outcomes of an acquire.
const (
	OutcomeAcquired    = telemetry.OutcomeAcquired
	OutcomeNotAcquired = telemetry.OutcomeNotAcquired // busy: held by another
	OutcomeCancelled   = telemetry.OutcomeCancelled   // the caller's ctx ended first
	OutcomeError       = telemetry.OutcomeError       // unavailable, misconfigured, closed, invalid argument
)
