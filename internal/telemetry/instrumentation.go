package telemetry

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope name of the tracer and meter: this package's import path.
const ScopeName = "github.com/quorumsync/quorumsync/tracing"

// Version is the instrumentation scope version.
const Version = "0.1.0"

// Attribute keys. Durations are float64 seconds, like the metrics.
const (
	PrimitiveKey   = attribute.Key("quorumsync.primitive")    // "mutex", "rwmutex", "semaphore", "election", "lease"
	OperationKey   = attribute.Key("quorumsync.operation")    // "Lock", "TryLock", "RLock", "Acquire", ...
	LockNameKey    = attribute.Key("quorumsync.lock.name")    // spans; metrics only WithNameAttribute(true)
	NodesKey       = attribute.Key("quorumsync.nodes")        // int: nodes in the quorum
	QuorumKey      = attribute.Key("quorumsync.quorum")       // int: votes needed
	PermitsKey     = attribute.Key("quorumsync.permits")      // int: semaphore permits asked for
	AttemptsKey    = attribute.Key("quorumsync.attempts")     // int: rounds sent to the nodes
	OutcomeKey     = attribute.Key("quorumsync.outcome")      // an Outcome; "ok"/"failed" on renewals; "released"/"lost" on hold.duration
	WaitKey        = attribute.Key("quorumsync.wait")         // float64 s: from StartAcquire to End
	ValidityKey    = attribute.Key("quorumsync.validity")     // float64 s: validity left when acquired
	RetryWaitKey   = attribute.Key("quorumsync.retry.wait")   // float64 s: sleep before the next round
	RetryReasonKey = attribute.Key("quorumsync.retry.reason") // why the round failed
	WakeUpKey      = attribute.Key("quorumsync.wakeup.source")
	NodeIndexKey   = attribute.Key("quorumsync.node.index")
	NodeAddressKey = attribute.Key("quorumsync.node.address")
	NodeTimeoutKey = attribute.Key("quorumsync.node.timeout") // bool: the node did not answer in time
	ErrorKey       = attribute.Key("quorumsync.error")        // error text, on events only
)

// Instrumentation records spans and metrics for acquires and the leases they yield. Build it
// with [New]; the zero value is not usable, but a nil *Instrumentation is: it records nothing.
// It is safe for concurrent use.
type Instrumentation struct {
	tracer        trace.Tracer
	nameOnMetrics bool
	// global says the tracer is the global provider's delegate: while the application has set no
	// provider, an acquire then skips the span altogether (it would record nothing, and starting
	// it costs allocations on every acquire).
	global bool

	acquireDuration metric.Float64Histogram
	holdDuration    metric.Float64Histogram
	renewals        metric.Int64Counter
	leasesLost      metric.Int64Counter
	waiters         metric.Int64UpDownCounter
	leasesHeld      metric.Int64UpDownCounter

	// series maps primitive+operation to its precomputed names and attribute sets. It is
	// copy-on-write (a handful of entries, written once each) so that the lookup on every
	// acquire takes no lock and allocates nothing.
	series atomic.Pointer[map[seriesKey]*series]
	mu     sync.Mutex // serializes writers of series
}

// New returns an Instrumentation configured by opts. Its tracer and meter are named [ScopeName].
// It fails only if the meter provider refuses to create an instrument; a nil *Instrumentation
// is then still safe to use and records nothing.
func New(opts ...Option) (*Instrumentation, error) {
	c := newConfig(opts)
	in := &Instrumentation{
		tracer: c.tp.Tracer(ScopeName,
			trace.WithInstrumentationVersion(Version), trace.WithSchemaURL(semconv.SchemaURL)),
		nameOnMetrics: c.nameOnMetrics,
		global:        globalDelegate != nil && reflect.TypeOf(c.tp) == globalDelegate,
	}
	m := c.mp.Meter(ScopeName,
		metric.WithInstrumentationVersion(Version), metric.WithSchemaURL(semconv.SchemaURL))
	var err, e error
	in.acquireDuration, e = m.Float64Histogram("quorumsync.acquire.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time from the start of an acquire to its outcome."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
			0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	err = errors.Join(err, e)
	in.holdDuration, e = m.Float64Histogram("quorumsync.hold.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time a lease was held, from acquired to released or lost."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
			300, 600, 1800, 3600))
	err = errors.Join(err, e)
	in.renewals, e = m.Int64Counter("quorumsync.renewals",
		metric.WithUnit("{renewal}"),
		metric.WithDescription("Lease renewals, by outcome (ok, failed)."))
	err = errors.Join(err, e)
	in.leasesLost, e = m.Int64Counter("quorumsync.leases.lost",
		metric.WithUnit("{lease}"),
		metric.WithDescription("Leases lost before they were released."))
	err = errors.Join(err, e)
	in.waiters, e = m.Int64UpDownCounter("quorumsync.waiters",
		metric.WithUnit("{waiter}"),
		metric.WithDescription("Callers blocked waiting to acquire."))
	err = errors.Join(err, e)
	in.leasesHeld, e = m.Int64UpDownCounter("quorumsync.leases.held",
		metric.WithUnit("{lease}"),
		metric.WithDescription("Leases held now by this process."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	in.series.Store(&map[seriesKey]*series{})
	return in, nil
}

// StartAcquire starts the span of one acquire, a child of ctx's span, and returns a context
// holding it (pass it to the calls the acquire makes, so their spans nest under it) and the
// [Acquire] to report progress to. The caller must call [Acquire.End] exactly once.
//
// The span is named info.Primitive+"."+info.Operation, e.g. "mutex.Lock". Its attributes are
// set at End, all at once, and only if it is recording: samplers and span processors' OnStart
// see the name alone.
//
// When nothing would be recorded (the span is a no-op without a valid span context and every
// metric is disabled, as with no provider set) it returns a nil *Acquire, which does nothing:
// the acquire then costs only the OTel API's no-op span. An acquire started before the
// application sets its providers is therefore not recorded; the ones after are.
func (in *Instrumentation) StartAcquire(ctx context.Context, info AcquireInfo) (context.Context, *Acquire) {
	if in == nil {
		return ctx, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if in.global && reflect.TypeOf(otel.GetTracerProvider()) == globalDelegate && !in.metricsEnabled(ctx) {
		return ctx, nil // no provider set yet: nothing would be recorded
	}
	s := in.seriesFor(info.Primitive, info.Operation)
	ctx, span := in.tracer.Start(ctx, s.spanName)
	if !span.SpanContext().IsValid() && !in.metricsEnabled(ctx) {
		return ctx, nil
	}
	a := &Acquire{in: in, s: s, ctx: ctx, span: span, info: info, start: time.Now()}
	if in.nameOnMetrics {
		a.metricName = info.Name
	}
	return ctx, a
}

// globalDelegate is the type of the global tracer provider before an application sets one (the
// OpenTelemetry API's own delegating provider), or nil if something set one before this package
// was initialized.
var globalDelegate = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTracerProvider())
	if t.String() != "*global.tracerProvider" {
		return nil
	}
	return t
}()

// metricsEnabled reports whether any instrument records anything.
func (in *Instrumentation) metricsEnabled(ctx context.Context) bool {
	return in.acquireDuration.Enabled(ctx) || in.holdDuration.Enabled(ctx) ||
		in.renewals.Enabled(ctx) || in.leasesLost.Enabled(ctx) ||
		in.waiters.Enabled(ctx) || in.leasesHeld.Enabled(ctx)
}

// outcomes are the known Outcomes, in the order of series.acquire.
var outcomes = [...]Outcome{OutcomeAcquired, OutcomeNotAcquired, OutcomeCancelled, OutcomeError}

func outcomeIndex(o Outcome) int {
	for i, x := range outcomes {
		if x == o {
			return i
		}
	}
	return -1
}

// Indexes into series.hold and series.renew.
const (
	released = 0
	lost     = 1
	renewOK  = 0
	renewBad = 1
)

var (
	holdEnds     = [2]attribute.KeyValue{OutcomeKey.String("released"), OutcomeKey.String("lost")}
	renewResults = [2]attribute.KeyValue{OutcomeKey.String("ok"), OutcomeKey.String("failed")}
)

type seriesKey struct{ primitive, operation string }

// series is what every acquire of one primitive and operation shares: span names and the
// metric attribute sets, built once. The per-call metric options are built anew only when the
// lock name is on the metrics (then they differ per name).
type series struct {
	spanName, renewSpanName, lostSpanName string
	primitive, operation                  attribute.KeyValue

	base    []metric.AddOption // waiters, leases.held, leases.lost
	acquire [len(outcomes)][]metric.RecordOption
	hold    [2][]metric.RecordOption // released, lost
	renew   [2][]metric.AddOption    // ok, failed
}

func (in *Instrumentation) seriesFor(primitive, operation string) *series {
	k := seriesKey{primitive, operation}
	if s, ok := (*in.series.Load())[k]; ok {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	old := *in.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	s := newSeries(primitive, operation)
	m := make(map[seriesKey]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = s
	in.series.Store(&m)
	return s
}

func newSeries(primitive, operation string) *series {
	s := &series{
		spanName:      primitive + "." + operation,
		renewSpanName: primitive + ".renew",
		lostSpanName:  primitive + ".lost",
		primitive:     PrimitiveKey.String(primitive),
		operation:     OperationKey.String(operation),
	}
	s.base = []metric.AddOption{metric.WithAttributeSet(s.set("", attribute.KeyValue{}))}
	for i, o := range outcomes {
		s.acquire[i] = []metric.RecordOption{metric.WithAttributeSet(s.set("", OutcomeKey.String(string(o))))}
	}
	for i := range 2 {
		s.hold[i] = []metric.RecordOption{metric.WithAttributeSet(s.set("", holdEnds[i]))}
		s.renew[i] = []metric.AddOption{metric.WithAttributeSet(s.set("", renewResults[i]))}
	}
	return s
}

// set returns the series' attributes plus kv (if valid) and the lock name (if not empty).
func (s *series) set(name string, kv attribute.KeyValue) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, 4)
	kvs = append(kvs, s.primitive, s.operation)
	if kv.Valid() {
		kvs = append(kvs, kv)
	}
	if name != "" {
		kvs = append(kvs, LockNameKey.String(name))
	}
	return attribute.NewSet(kvs...)
}

// recordOpts returns cached unless a lock name is to be added or there is no cached set.
func (s *series) recordOpts(cached []metric.RecordOption, name string, kv attribute.KeyValue) []metric.RecordOption {
	if name == "" && cached != nil {
		return cached
	}
	return []metric.RecordOption{metric.WithAttributeSet(s.set(name, kv))}
}

// addOpts is recordOpts for counters.
func (s *series) addOpts(cached []metric.AddOption, name string, kv attribute.KeyValue) []metric.AddOption {
	if name == "" {
		return cached
	}
	return []metric.AddOption{metric.WithAttributeSet(s.set(name, kv))}
}

// baseOpts is addOpts with the series' attributes alone (and the name).
func (s *series) baseOpts(name string) []metric.AddOption {
	return s.addOpts(s.base, name, attribute.KeyValue{})
}
