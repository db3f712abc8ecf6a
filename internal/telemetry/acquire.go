package telemetry

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Outcome is how an acquire ended.
type Outcome string

// Outcomes of an acquire. Only [OutcomeError] marks the span as failed: contention and a caller
// that gave up are normal.
const (
	OutcomeAcquired    Outcome = "acquired"
	OutcomeNotAcquired Outcome = "not_acquired" // held by another (a Try* call found it taken)
	OutcomeCancelled   Outcome = "cancelled"    // the caller's ctx ended first
	OutcomeError       Outcome = "error"        // Redis failures, closed, invalid argument
)

// AcquireInfo describes one acquire to [Instrumentation.StartAcquire].
type AcquireInfo struct {
	// Primitive is "mutex", "rwmutex", "semaphore", "election" or "lease".
	Primitive string
	// Operation is the method called: "Lock", "TryLock", "RLock", "TryRLock", "Acquire",
	// "TryAcquire". The span is named Primitive+"."+Operation, e.g. "mutex.Lock".
	Operation string
	// Name is the lock name: a span attribute, and a metric attribute only with
	// WithNameAttribute(true).
	Name string
	// Nodes and Quorum are the number of nodes and the votes needed.
	Nodes, Quorum int
	// Permits is the semaphore weight asked for; 0 leaves the attribute out.
	Permits int64
}

// Acquire is one acquire in progress, from [Instrumentation.StartAcquire] to [Acquire.End].
// A nil *Acquire is valid and records nothing; StartAcquire returns one when nothing would be
// recorded, so callers never need to check. Its methods are safe for concurrent use (node
// failures may be reported from fan-out goroutines), but End must come last, exactly once.
type Acquire struct {
	in         *Instrumentation
	s          *series
	ctx        context.Context
	span       trace.Span
	info       AcquireInfo
	metricName string // info.Name if it goes on metrics, else ""
	start      time.Time

	attempts atomic.Int64
	waiting  atomic.Bool
	ended    atomic.Bool
}

// Attempt counts one more round sent to the nodes. The count is the span's quorumsync.attempts.
func (a *Acquire) Attempt() {
	if a != nil {
		a.attempts.Add(1)
	}
}

// Waiting marks the caller as blocked waiting for the lock: quorumsync.waiters goes up by one
// until End. Calls after the first do nothing.
func (a *Acquire) Waiting() {
	if a != nil && a.waiting.CompareAndSwap(false, true) {
		a.in.waiters.Add(a.ctx, 1, a.s.baseOpts(a.metricName)...)
	}
}

// Retry adds a "retry" event: the round failed for reason, and the caller sleeps for wait
// before the next one.
func (a *Acquire) Retry(wait time.Duration, reason string) {
	if a != nil && a.span.IsRecording() {
		a.span.AddEvent("retry", trace.WithAttributes(
			RetryWaitKey.Float64(wait.Seconds()), RetryReasonKey.String(reason)))
	}
}

// WakeUp adds a "wakeup" event: the waiter woke before its sleep was over, or at its end;
// source says what woke it, e.g. "pubsub" or "timer".
func (a *Acquire) WakeUp(source string) {
	if a != nil && a.span.IsRecording() {
		a.span.AddEvent("wakeup", trace.WithAttributes(WakeUpKey.String(source)))
	}
}

// NodeFailed adds a "node.error" event: node index (at addr) failed with err during a round.
// quorumsync.node.timeout tells a node that did not answer in time (err matches
// context.DeadlineExceeded or has a Timeout method that says so) from one that answered with an
// error.
func (a *Acquire) NodeFailed(index int, addr string, err error) {
	if a != nil && a.span.IsRecording() {
		a.span.AddEvent("node.error", trace.WithAttributes(
			NodeIndexKey.Int(index), NodeAddressKey.String(addr),
			NodeTimeoutKey.Bool(isTimeout(err)), errorType(err), ErrorKey.String(errorText(err))))
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// End ends the acquire: it sets the span's attempts, outcome, wait and (when acquired)
// validity, records quorumsync.acquire.duration, and ends the span. For [OutcomeError] only,
// the span's status is Error, with error.type and the error recorded as an exception event.
//
// When outcome is [OutcomeAcquired] it returns the [Held] to report the lease's life to;
// otherwise, on calls after the first, and on a nil *Acquire, it returns nil, which is just as
// safe to call.
func (a *Acquire) End(outcome Outcome, validity time.Duration, err error) *Held {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return nil
	}
	now := time.Now()
	wait := now.Sub(a.start)
	in, s := a.in, a.s
	if a.waiting.Load() {
		in.waiters.Add(a.ctx, -1, s.baseOpts(a.metricName)...)
	}
	var cached []metric.RecordOption
	if i := outcomeIndex(outcome); i >= 0 {
		cached = s.acquire[i]
	}
	in.acquireDuration.Record(a.ctx, wait.Seconds(),
		s.recordOpts(cached, a.metricName, OutcomeKey.String(string(outcome)))...)

	if a.span.IsRecording() {
		// One call for all attributes: the SDK copies them into the span once.
		n := 8
		if a.info.Permits > 0 {
			n++
		}
		if outcome == OutcomeAcquired || outcome == OutcomeError {
			n++ // validity or error.type
		}
		attrs := make([]attribute.KeyValue, 0, n)
		attrs = append(attrs, s.primitive, s.operation, LockNameKey.String(a.info.Name),
			NodesKey.Int(a.info.Nodes), QuorumKey.Int(a.info.Quorum))
		if a.info.Permits > 0 {
			attrs = append(attrs, PermitsKey.Int64(a.info.Permits))
		}
		attrs = append(attrs, AttemptsKey.Int64(a.attempts.Load()),
			OutcomeKey.String(string(outcome)), WaitKey.Float64(wait.Seconds()))
		if outcome == OutcomeAcquired {
			attrs = append(attrs, ValidityKey.Float64(validity.Seconds()))
		}
		if outcome == OutcomeError {
			attrs = append(attrs, errorType(err))
			if err != nil {
				a.span.RecordError(err)
			}
			a.span.SetStatus(codes.Error, errorText(err))
		}
		a.span.SetAttributes(attrs...)
	}
	a.span.End()

	if outcome != OutcomeAcquired {
		return nil
	}
	h := &Held{in: in, s: s, name: a.info.Name, metricName: a.metricName, sc: a.span.SpanContext(), since: now}
	in.leasesHeld.Add(context.Background(), 1, s.baseOpts(a.metricName)...)
	return h
}

// errorType is the error.type attribute of err: its ErrorType() string method if it or an
// error it wraps has one, else its type name (see semconv.ErrorType).
func errorType(err error) attribute.KeyValue { return semconv.ErrorType(err) }

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
