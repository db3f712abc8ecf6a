package mutex_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/tracing"
)

// These tests check what a Mutex records through OpenTelemetry (DESIGN §8) against real Redis
// servers: the acquire span of Lock and TryLock and its place in the caller's trace, its
// attributes, status and events for each outcome, the spans and events of a lost lease, and the
// metrics. The instrumentation itself is unit-tested in package tracing; here it is the wiring
// through lease and mutex that is under test.

// otelRecorder is an SDK tracer provider that keeps every ended span and an SDK meter provider
// read on demand, shut down when the test ends.
type otelRecorder struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newOtelRecorder(t *testing.T) *otelRecorder {
	t.Helper()
	r := &otelRecorder{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	return r
}

// quorum returns a quorum over nodes (fresh clients, as another process would have) that records
// to r.
func (r *otelRecorder) quorum(t *testing.T, nodes []*redistest.Node, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	return newQuorum(t, nodes, append([]lease.Option{
		lease.WithTracerProvider(r.tp), lease.WithMeterProvider(r.mp)}, opts...)...)
}

// startSpan starts the caller's span, the one the lock spans must nest under.
func (r *otelRecorder) startSpan(name string) (context.Context, trace.Span) {
	return r.tp.Tracer("app").Start(context.Background(), name)
}

// named returns the ended spans named name, in the order they ended.
func (r *otelRecorder) named(name string) []sdktrace.ReadOnlySpan {
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	return found
}

// span returns the one ended span named name.
func (r *otelRecorder) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := r.named(name)
	if len(found) != 1 {
		var all []string
		for _, s := range r.spans.Ended() {
			all = append(all, s.Name())
		}
		t.Fatalf("ended spans named %q: got %d (all ended: %v); want 1", name, len(found), all)
	}
	return found[0]
}

// point is one metric data point: the value of a sum, or the count and sum of a histogram.
type point struct {
	attrs attribute.Set
	value int64
	count uint64
	sum   float64
	isH   bool
}

// key is the data point's attributes encoded as "k=v,k=v" (sorted by key).
func (p point) key() string { return p.attrs.Encoded(attribute.DefaultEncoder()) }

// metrics collects every quorumsync.* metric: data points by metric name.
func (r *otelRecorder) metrics(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: got %v; want nil", err)
	}
	got := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name] = append(got[m.Name], point{attrs: p.Attributes, count: p.Count, sum: p.Sum, isH: true})
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] = append(got[m.Name], point{attrs: p.Attributes, value: p.Value})
				}
			default:
				t.Fatalf("metric %s: got data %T; want a float64 histogram or an int64 sum", m.Name, m.Data)
			}
		}
	}
	return got
}

// byKey returns the data points of one metric keyed by their encoded attributes.
func byKey(points []point) map[string]point {
	m := make(map[string]point, len(points))
	for _, p := range points {
		m[p.key()] = p
	}
	return m
}

// sumValue returns the value of the sum data point of metric name with exactly the attributes
// of key, 0 if there is none (the SDK keeps a zeroed up-down counter as 0, not absent).
func (r *otelRecorder) sumValue(t *testing.T, name, key string) int64 {
	t.Helper()
	return byKey(r.metrics(t)[name])[key].value
}

// pollFor polls cond every 5ms until it holds or d has passed, and reports whether it held.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]any {
	m := make(map[attribute.Key]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.AsInterface()
	}
	return m
}

// wantAttrs checks that span s has each of want's attributes with that value.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[attribute.Key]any) {
	t.Helper()
	got := attrMap(s.Attributes())
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("span %s attribute %s: got %v (present %v); want %v", s.Name(), k, g, ok, w)
		}
	}
}

// wantNoAttrs checks that span s has none of keys.
func wantNoAttrs(t *testing.T, s sdktrace.ReadOnlySpan, keys ...attribute.Key) {
	t.Helper()
	got := attrMap(s.Attributes())
	for _, k := range keys {
		if v, ok := got[k]; ok {
			t.Errorf("span %s attribute %s: got %v; want none", s.Name(), k, v)
		}
	}
}

// holdElsewhere locks name from another client (quorum) for the rest of the test.
func holdElsewhere(t *testing.T, nodes []*redistest.Node, name string) {
	t.Helper()
	holder := mutex.New(newQuorum(t, nodes), name)
	if err := holder.Lock(context.Background()); err != nil {
		t.Fatalf("holder Lock: got %v; want nil", err)
	}
	t.Cleanup(func() { _ = holder.Unlock(context.Background()) })
}

// secondsAttr returns the float64 attribute k of s (a duration in seconds), failing if it is absent.
func secondsAttr(t *testing.T, s sdktrace.ReadOnlySpan, k attribute.Key) float64 {
	t.Helper()
	v, ok := attrMap(s.Attributes())[k].(float64)
	if !ok {
		t.Fatalf("span %s attribute %s: got %v; want a float64 of seconds", s.Name(), k, attrMap(s.Attributes())[k])
	}
	return v
}

// wantStatus checks the span's status code.
func wantStatus(t *testing.T, s sdktrace.ReadOnlySpan, want codes.Code) {
	t.Helper()
	if got := s.Status().Code; got != want {
		t.Errorf("span %s status: got %v (%q); want %v", s.Name(), got, s.Status().Description, want)
	}
}

// spanEvents returns the attributes of each of s's events named name, in order.
func spanEvents(s sdktrace.ReadOnlySpan, name string) []map[attribute.Key]any {
	var found []map[attribute.Key]any
	for _, e := range s.Events() {
		if e.Name == name {
			found = append(found, attrMap(e.Attributes))
		}
	}
	return found
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

// wantChildOf checks that s is a child of parent, in parent's trace.
func wantChildOf(t *testing.T, s sdktrace.ReadOnlySpan, parent trace.Span) {
	t.Helper()
	p := parent.SpanContext()
	if got := s.Parent().SpanID(); got != p.SpanID() {
		t.Errorf("span %s parent: got span %v; want the caller's span %v", s.Name(), got, p.SpanID())
	}
	if got := s.SpanContext().TraceID(); got != p.TraceID() {
		t.Errorf("span %s trace: got %v; want the caller's trace %v", s.Name(), got, p.TraceID())
	}
}

// mutexKey is the encoded attributes of a mutex data point of operation op with extra attributes.
func mutexKey(op string, extra ...attribute.KeyValue) string {
	kvs := append([]attribute.KeyValue{tracing.PrimitiveKey.String("mutex"), tracing.OperationKey.String(op)}, extra...)
	s := attribute.NewSet(kvs...)
	return s.Encoded(attribute.DefaultEncoder())
}

func outcomeAttr(o string) attribute.KeyValue { return tracing.OutcomeKey.String(o) }

func nameAttr(n string) attribute.KeyValue { return tracing.LockNameKey.String(n) }

var mutexLock = mutexKey("Lock")

func TestLockSpanIsChildOfCallerSpanWithQuorumAttributes(t *testing.T) {
	nodes := redistest.Start(t, 3)
	r := newOtelRecorder(t)
	q := r.quorum(t, nodes, lease.WithTTL(5*time.Second))
	for _, op := range []string{"Lock", "TryLock"} {
		t.Run(op, func(t *testing.T) {
			m := mutex.New(q, "traced:"+op)
			ctx, parent := r.startSpan("request")
			lock := m.Lock
			if op == "TryLock" {
				lock = m.TryLock
			}
			if err := lock(ctx); err != nil {
				t.Fatalf("%s: got %v; want nil", op, err)
			}
			if err := m.Unlock(ctx); err != nil {
				t.Fatalf("Unlock: got %v; want nil", err)
			}
			parent.End()

			s := r.span(t, "mutex."+op)
			wantChildOf(t, s, parent)
			wantStatus(t, s, codes.Unset)
			wantAttrs(t, s, map[attribute.Key]any{
				tracing.PrimitiveKey: "mutex",
				tracing.OperationKey: op,
				tracing.LockNameKey:  "traced:" + op,
				tracing.NodesKey:     int64(3),
				tracing.QuorumKey:    int64(2),
				tracing.AttemptsKey:  int64(1),
				tracing.OutcomeKey:   string(tracing.OutcomeAcquired),
			})
			wantNoAttrs(t, s, semconv.ErrorTypeKey)
			if w := secondsAttr(t, s, tracing.WaitKey); w <= 0 || w > s.EndTime().Sub(s.StartTime()).Seconds() {
				t.Errorf("wait: got %vs; want > 0 and at most the span's duration %v", w, s.EndTime().Sub(s.StartTime()))
			}
			// Validity is what is left of the TTL after the round trip and the drift allowance
			// (1% + 2ms): a little under 5s.
			if v := secondsAttr(t, s, tracing.ValidityKey); v <= 4.5 || v > 5 {
				t.Errorf("validity: got %vs; want in (4.5s, 5s] for a 5s TTL", v)
			}
			if n := len(s.Events()); n != 0 {
				t.Errorf("events of an uncontended acquire: got %v; want none", eventNames(s))
			}
		})
	}
}

func TestTryLockWhileHeldIsNotAcquiredNotAnError(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holdElsewhere(t, nodes, "busy")
	r := newOtelRecorder(t)
	m := mutex.New(r.quorum(t, nodes), "busy")
	ctx, parent := r.startSpan("request")

	err := m.TryLock(ctx)
	parent.End()
	if !errors.Is(err, lease.ErrNotAcquired) {
		t.Fatalf("TryLock while held: got %v; want an error matching ErrNotAcquired", err)
	}

	s := r.span(t, "mutex.TryLock")
	wantChildOf(t, s, parent)
	wantStatus(t, s, codes.Unset)
	wantAttrs(t, s, map[attribute.Key]any{
		tracing.OutcomeKey:  string(tracing.OutcomeNotAcquired),
		tracing.AttemptsKey: int64(1),
		tracing.LockNameKey: "busy",
	})
	wantNoAttrs(t, s, tracing.ValidityKey, semconv.ErrorTypeKey)
	secondsAttr(t, s, tracing.WaitKey)
	if got := spanEvents(s, "exception"); len(got) != 0 {
		t.Errorf("exception events on contention: got %v; want none", got)
	}
	if got := byKey(r.metrics(t)["quorumsync.acquire.duration"]); got[mutexKey("TryLock", outcomeAttr("not_acquired"))].count != 1 {
		t.Errorf("acquire.duration points: got %v; want one TryLock not_acquired", pointKeys(got))
	}
}

func TestLockCancelledByDeadlineIsCancelledNotAnError(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holdElsewhere(t, nodes, "slow")
	r := newOtelRecorder(t)
	m := mutex.New(r.quorum(t, nodes), "slow")
	ctx, parent := r.startSpan("request")
	lctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()

	err := m.Lock(lctx)
	parent.End()
	if !errors.Is(err, lease.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline: got %v; want an error matching ErrNotAcquired and DeadlineExceeded", err)
	}

	s := r.span(t, "mutex.Lock")
	wantChildOf(t, s, parent)
	wantStatus(t, s, codes.Unset)
	wantAttrs(t, s, map[attribute.Key]any{tracing.OutcomeKey: string(tracing.OutcomeCancelled)})
	wantNoAttrs(t, s, tracing.ValidityKey, semconv.ErrorTypeKey)
	if w := secondsAttr(t, s, tracing.WaitKey); w < 0.14 {
		t.Errorf("wait: got %vs; want at least the 150ms deadline (less scheduling slack)", w)
	}
	if n, _ := attrMap(s.Attributes())[tracing.AttemptsKey].(int64); n < 1 {
		t.Errorf("attempts: got %d; want at least 1", n)
	}
	if got := r.sumValue(t, "quorumsync.waiters", mutexLock); got != 0 {
		t.Errorf("waiters after the cancelled Lock returned: got %d; want 0", got)
	}
}

func TestTryLockWithMajorityPausedIsAnErrorWithNodeTimeoutEvents(t *testing.T) {
	nodes := redistest.Start(t, 3)
	r := newOtelRecorder(t)
	// TTL 1s: the node timeout defaults to 100ms.
	q := r.quorum(t, nodes, lease.WithTTL(time.Second))
	nodes[1].Stop()
	nodes[2].Stop()
	defer nodes[1].Continue()
	defer nodes[2].Continue()
	ctx, parent := r.startSpan("request")

	err := mutex.New(q, "down").TryLock(ctx)
	parent.End()
	var ne *lease.NodeError
	if !errors.Is(err, lease.ErrUnavailable) || !errors.As(err, &ne) {
		t.Fatalf("TryLock with 2 of 3 nodes paused: got %v; want ErrUnavailable joined with NodeErrors", err)
	}

	s := r.span(t, "mutex.TryLock")
	wantChildOf(t, s, parent)
	wantStatus(t, s, codes.Error)
	wantAttrs(t, s, map[attribute.Key]any{
		tracing.OutcomeKey:  string(tracing.OutcomeError),
		tracing.AttemptsKey: int64(1),
		tracing.NodesKey:    int64(3),
		tracing.QuorumKey:   int64(2),
	})
	wantNoAttrs(t, s, tracing.ValidityKey)
	if et, _ := attrMap(s.Attributes())[semconv.ErrorTypeKey].(string); et != "lease.node_timeout" {
		t.Errorf("error.type: got %q; want %q", et, "lease.node_timeout")
	}
	if got := spanEvents(s, "exception"); len(got) != 1 {
		t.Errorf("exception events: got %d; want 1", len(got))
	}

	nodeErrs := spanEvents(s, "node.error")
	var failed []int64
	for _, e := range nodeErrs {
		idx, _ := e[tracing.NodeIndexKey].(int64)
		failed = append(failed, idx)
		if e[tracing.NodeTimeoutKey] != true {
			t.Errorf("node.error of node %d: got timeout=%v; want true (the node is paused)", idx, e[tracing.NodeTimeoutKey])
		}
		if want := nodes[idx].Addr(); e[tracing.NodeAddressKey] != want {
			t.Errorf("node.error of node %d: got address %v; want %s", idx, e[tracing.NodeAddressKey], want)
		}
	}
	slices.Sort(failed)
	if !slices.Equal(failed, []int64{1, 2}) {
		t.Errorf("node.error events for nodes: got %v; want [1 2]", failed)
	}
	if got := byKey(r.metrics(t)["quorumsync.acquire.duration"]); got[mutexKey("TryLock", outcomeAttr("error"))].count != 1 {
		t.Errorf("acquire.duration points: got %v; want one TryLock error", pointKeys(got))
	}
}

func TestLockThatWaitedForUnlockRecordsRetryAndPubSubWakeUp(t *testing.T) {
	nodes := redistest.Start(t, 3)
	// Node timeouts of 2s: a load spike on a shared machine must not make a node miss the
	// holder's grant (the waiter would then see a split vote) or the waiter's attempts.
	holder := mutex.New(newQuorum(t, nodes, lease.WithNodeTimeout(2*time.Second)), "queue")
	if err := holder.Lock(context.Background()); err != nil {
		t.Fatalf("holder Lock: got %v; want nil", err)
	}
	r := newOtelRecorder(t)
	m := mutex.New(r.quorum(t, nodes, lease.WithNodeTimeout(2*time.Second)), "queue")
	ctx, parent := r.startSpan("request")
	// The default 10s TTL makes the waiter's fallback timer about 5s: a wake-up within the test
	// can only come from pub/sub.
	lctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	locked := make(chan error, 1)
	go func() { locked <- m.Lock(lctx) }()

	if !pollFor(2*time.Second, func() bool { return r.sumValue(t, "quorumsync.waiters", mutexLock) == 1 }) {
		t.Fatalf("waiters while Lock is blocked: got %d; want 1", r.sumValue(t, "quorumsync.waiters", mutexLock))
	}
	// The gauge counts the waiter from its first attempt on: wait until the servers have it
	// queued too, so that the release below wakes it (on a loaded machine its second attempt could
	// otherwise come after the release, and find the lock free without waiting).
	looker := newQuorum(t, nodes)
	if !pollFor(5*time.Second, func() bool {
		st, err := looker.Inspect(context.Background(), "queue")
		return err == nil && len(st.Waiters) == 1
	}) {
		t.Fatalf("the waiter never showed queued on the servers")
	}
	if err := holder.Unlock(context.Background()); err != nil {
		t.Fatalf("holder Unlock: got %v; want nil", err)
	}
	if err := <-locked; err != nil {
		t.Fatalf("Lock after the holder's Unlock: got %v; want nil", err)
	}
	if err := m.Unlock(context.Background()); err != nil {
		t.Fatalf("Unlock: got %v; want nil", err)
	}
	parent.End()

	s := r.span(t, "mutex.Lock")
	wantChildOf(t, s, parent)
	wantStatus(t, s, codes.Unset)
	wantAttrs(t, s, map[attribute.Key]any{tracing.OutcomeKey: string(tracing.OutcomeAcquired)})
	retries, wakeups := spanEvents(s, "retry"), spanEvents(s, "wakeup")
	if len(retries) == 0 || len(wakeups) == 0 {
		t.Fatalf("events of a Lock that waited: got %v; want retry and wakeup", eventNames(s))
	}
	// The first attempt is the plain SET NX; when it fails the waiter joins the queue at once,
	// without a sleep (no retry event); every later attempt follows a retry.
	if attempts, _ := attrMap(s.Attributes())[tracing.AttemptsKey].(int64); attempts != int64(len(retries))+2 {
		t.Errorf("attempts: got %d; want one per retry plus the first two (%d)", attempts, len(retries)+2)
	}
	for _, e := range retries {
		switch e[tracing.RetryReasonKey] {
		case "held":
			if w, _ := e[tracing.RetryWaitKey].(float64); w < 1 {
				t.Errorf("retry wait: got %vs; want the fallback timer, about TTL/2 = 5s", w)
			}
		case "split vote":
			// The wake-up of one node's release raced the release on another node (seen under
			// load): that attempt found the name free on some nodes only, and sleeps a random
			// part of the wait.
		default:
			t.Errorf("retry reason: got %v; want held (or a split vote)", e[tracing.RetryReasonKey])
		}
	}
	for _, e := range wakeups {
		if e[tracing.WakeUpKey] != "pubsub" {
			t.Errorf("wakeup source: got %v; want pubsub", e[tracing.WakeUpKey])
		}
	}
	if w := secondsAttr(t, s, tracing.WaitKey); w <= 0 {
		t.Errorf("wait: got %vs; want > 0", w)
	}
	if got := r.sumValue(t, "quorumsync.waiters", mutexLock); got != 0 {
		t.Errorf("waiters after Lock returned: got %d; want 0", got)
	}
}

func TestLostLeaseInDoIsRecordedOnLinkedSpanCallerSpanAndCounter(t *testing.T) {
	nodes := redistest.Start(t, 3)
	r := newOtelRecorder(t)
	q := r.quorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithNodeTimeout(50*time.Millisecond))
	m := mutex.New(q, "fragile", mutex.WithErrorHandler(func(error) {}))
	ctx, work := r.startSpan("work")
	// Released in every path, so that the quorum's Close at cleanup finds live nodes.
	defer nodes[0].Continue()
	defer nodes[1].Continue()

	err := m.Do(ctx, func(ctx context.Context) error {
		nodes[0].Stop()
		nodes[1].Stop()
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
			return errors.New("ctx not cancelled 3s after a majority paused")
		}
		// Do's ctx ends when the lease's Done closes, which the watchdog does just before it
		// reports the loss; give the report time to reach the span before Do detaches it.
		// (See TestLostEventReachesDoSpanWhenSpanExportIsSlow.)
		ro := work.(sdktrace.ReadOnlySpan)
		if !pollFor(2*time.Second, func() bool { return len(spanEvents(ro, "lease.lost")) > 0 }) {
			return errors.New("no lease.lost event on the caller's span 2s after the loss")
		}
		nodes[0].Continue()
		nodes[1].Continue()
		return nil
	})
	work.End()
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Do whose lease was lost: got %v; want an error matching ErrLost", err)
	}

	acq := r.span(t, "mutex.Lock")
	wantChildOf(t, acq, work)
	if !pollFor(time.Second, func() bool { return len(r.named("mutex.lost")) == 1 }) {
		t.Fatalf("mutex.lost spans: got %d; want 1", len(r.named("mutex.lost")))
	}
	lost := r.span(t, "mutex.lost")
	wantStatus(t, lost, codes.Error)
	wantAttrs(t, lost, map[attribute.Key]any{tracing.LockNameKey: "fragile", tracing.PrimitiveKey: "mutex"})
	if et, _ := attrMap(lost.Attributes())[semconv.ErrorTypeKey].(string); et != "mutex.lost" {
		t.Errorf("mutex.lost error.type: got %q; want %q", et, "mutex.lost")
	}
	if links := lost.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != acq.SpanContext().SpanID() ||
		links[0].SpanContext.TraceID() != acq.SpanContext().TraceID() {
		t.Errorf("mutex.lost links: got %v; want one link to the acquire span %v", links, acq.SpanContext().SpanID())
	}
	if lost.SpanContext().TraceID() == acq.SpanContext().TraceID() {
		t.Errorf("mutex.lost trace: got the acquire's trace; want a trace of its own, linked")
	}

	w := r.span(t, "work")
	got := spanEvents(w, "lease.lost")
	if len(got) != 1 {
		t.Fatalf("lease.lost events on the span of Do's ctx: got %d (events %v); want 1", len(got), eventNames(w))
	}
	if got[0][tracing.LockNameKey] != "fragile" {
		t.Errorf("lease.lost lock name: got %v; want fragile", got[0][tracing.LockNameKey])
	}
	if e, _ := got[0][tracing.ErrorKey].(string); !strings.Contains(e, "lost") {
		t.Errorf("lease.lost error: got %q; want the loss", e)
	}

	ms := r.metrics(t)
	if got := byKey(ms["quorumsync.leases.lost"])[mutexLock].value; got != 1 {
		t.Errorf("leases.lost: got %d; want 1", got)
	}
	if got := byKey(ms["quorumsync.leases.held"])[mutexLock].value; got != 0 {
		t.Errorf("leases.held after the loss: got %d; want 0", got)
	}
	hold := byKey(ms["quorumsync.hold.duration"])
	if hold[mutexKey("Lock", outcomeAttr("lost"))].count != 1 || hold[mutexKey("Lock", outcomeAttr("released"))].count != 0 {
		t.Errorf("hold.duration points: got %v; want one lost, none released", pointKeys(hold))
	}
	if got := byKey(ms["quorumsync.renewals"])[mutexKey("Lock", outcomeAttr("failed"))].value; got < 1 {
		t.Errorf("failed renewals: got %d; want at least 1", got)
	}
}

// TestLostEventReachesDoSpanWhenSpanExportIsSlow checks that the "lease.lost" event lands on the
// span of Do's ctx even when the span processor is slow (a synchronous exporter).
func TestLostEventReachesDoSpanWhenSpanExportIsSlow(t *testing.T) {
	nodes := redistest.Start(t, 3)
	r := newOtelRecorder(t)
	r.tp.RegisterSpanProcessor(slowOnEnd{"mutex.lost", 300 * time.Millisecond})
	q := r.quorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithNodeTimeout(50*time.Millisecond))
	m := mutex.New(q, "fragile", mutex.WithErrorHandler(func(error) {}))
	ctx, work := r.startSpan("work")
	defer nodes[0].Continue()
	defer nodes[1].Continue()

	err := m.Do(ctx, func(ctx context.Context) error {
		nodes[0].Stop()
		nodes[1].Stop()
		<-ctx.Done()
		nodes[0].Continue()
		nodes[1].Continue()
		return nil
	})
	work.End()
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Do whose lease was lost: got %v; want an error matching ErrLost", err)
	}
	if w := r.span(t, "work"); len(spanEvents(w, "lease.lost")) != 1 {
		t.Errorf("lease.lost events on the span of Do's ctx: got %v; want one", eventNames(w))
	}
	pollFor(time.Second, func() bool { return len(r.named("mutex.lost")) == 1 })
}

// slowOnEnd is a span processor that takes d to end the spans named name, as a synchronous
// exporter sending them over the network would.
type slowOnEnd struct {
	name string
	d    time.Duration
}

func (p slowOnEnd) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p slowOnEnd) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == p.name {
		time.Sleep(p.d)
	}
}
func (p slowOnEnd) Shutdown(context.Context) error   { return nil }
func (p slowOnEnd) ForceFlush(context.Context) error { return nil }

func TestMetricsRecordAcquireHoldAndRenewalsWithoutLockName(t *testing.T) {
	nodes := redistest.Start(t, 1)
	r := newOtelRecorder(t)
	opts := []lease.Option{lease.WithTTL(300 * time.Millisecond), lease.WithNodeTimeout(80 * time.Millisecond)}
	m := mutex.New(r.quorum(t, nodes, opts...), "orders:42")
	other := mutex.New(r.quorum(t, nodes, opts...), "orders:42")
	ctx := context.Background()

	if err := m.Lock(ctx); err != nil {
		t.Fatalf("Lock: got %v; want nil", err)
	}
	if err := other.TryLock(ctx); !errors.Is(err, lease.ErrNotAcquired) {
		t.Fatalf("TryLock while held: got %v; want ErrNotAcquired", err)
	}
	if got := r.sumValue(t, "quorumsync.leases.held", mutexLock); got != 1 {
		t.Errorf("leases.held while locked: got %d; want 1", got)
	}
	// 400ms of a 300ms TTL, renewed every 100ms: three or four renewals.
	time.Sleep(400 * time.Millisecond)
	if err := m.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: got %v; want nil", err)
	}

	ms := r.metrics(t)
	acquire := byKey(ms["quorumsync.acquire.duration"])
	if len(acquire) != 2 || acquire[mutexKey("Lock", outcomeAttr("acquired"))].count != 1 ||
		acquire[mutexKey("TryLock", outcomeAttr("not_acquired"))].count != 1 {
		t.Errorf("acquire.duration points: got %v; want one Lock acquired, one TryLock not_acquired", pointCounts(acquire))
	}
	hold := byKey(ms["quorumsync.hold.duration"])
	h := hold[mutexKey("Lock", outcomeAttr("released"))]
	if len(hold) != 1 || h.count != 1 || h.sum < 0.4 || h.sum > 5 {
		t.Errorf("hold.duration points: got %v (sum %vs); want one Lock released of at least 0.4s", pointCounts(hold), h.sum)
	}
	renewals := byKey(ms["quorumsync.renewals"])
	if ok := renewals[mutexKey("Lock", outcomeAttr("ok"))].value; ok < 2 {
		t.Errorf("renewals ok: got %d (points %v); want at least 2 in 400ms at TTL/3 = 100ms", ok, pointCounts(renewals))
	}
	if bad := renewals[mutexKey("Lock", outcomeAttr("failed"))].value; bad != 0 {
		t.Errorf("renewals failed: got %d; want 0", bad)
	}
	if got := byKey(ms["quorumsync.leases.held"])[mutexLock].value; got != 0 {
		t.Errorf("leases.held after Unlock: got %d; want 0", got)
	}
	if got := byKey(ms["quorumsync.leases.lost"])[mutexLock].value; got != 0 {
		t.Errorf("leases.lost: got %d; want 0", got)
	}
	for name, points := range ms {
		for _, p := range points {
			if v, ok := p.attrs.Value(tracing.LockNameKey); ok {
				t.Errorf("%s data point %s: got lock name %q; want none without WithNameMetrics", name, p.key(), v.AsString())
			}
		}
	}
	// The name is on the span all the same.
	wantAttrs(t, r.named("mutex.Lock")[0], map[attribute.Key]any{tracing.LockNameKey: "orders:42"})
}

func TestWithNameMetricsPutsLockNameOnEveryDataPoint(t *testing.T) {
	nodes := redistest.Start(t, 1)
	r := newOtelRecorder(t)
	q := r.quorum(t, nodes, lease.WithNameMetrics(true))
	ctx := context.Background()
	for _, name := range []string{"orders", "invoices"} {
		m := mutex.New(q, name)
		if err := m.Lock(ctx); err != nil {
			t.Fatalf("Lock %s: got %v; want nil", name, err)
		}
		if err := m.Unlock(ctx); err != nil {
			t.Fatalf("Unlock %s: got %v; want nil", name, err)
		}
	}

	ms := r.metrics(t)
	if len(ms) == 0 {
		t.Fatal("metrics: got none; want the quorumsync.* metrics")
	}
	for name, points := range ms {
		for _, p := range points {
			if _, ok := p.attrs.Value(tracing.LockNameKey); !ok {
				t.Errorf("%s data point %s: got no lock name; want one with WithNameMetrics(true)", name, p.key())
			}
		}
	}
	acquire := byKey(ms["quorumsync.acquire.duration"])
	for _, name := range []string{"orders", "invoices"} {
		k := mutexKey("Lock", nameAttr(name), outcomeAttr("acquired"))
		if acquire[k].count != 1 {
			t.Errorf("acquire.duration points: got %v; want one for %s", pointCounts(acquire), k)
		}
	}
	held := byKey(ms["quorumsync.leases.held"])
	for _, name := range []string{"orders", "invoices"} {
		if p, ok := held[mutexKey("Lock", nameAttr(name))]; !ok || p.value != 0 {
			t.Errorf("leases.held of %s: got %d (present %v); want 0", name, p.value, ok)
		}
	}
}

// TestGlobalProvidersRecordMutexSpans checks the default: a quorum given no provider records
// through the global ones, even when they are set after the quorum was built. It runs in a child
// process (as package tracing's own test does): the OTel globals forward only to the first
// providers ever set in a process and cannot be reset, so no other test may have set them.
func TestGlobalProvidersRecordMutexSpans(t *testing.T) {
	if os.Getenv("MUTEX_TRACING_GLOBAL_CHILD") != "1" {
		runInChild(t, "TestGlobalProvidersRecordMutexSpans", "MUTEX_TRACING_GLOBAL_CHILD=1")
		return
	}
	nodes := redistest.Start(t, 1)
	before := newQuorum(t, nodes) // built while the globals are the no-op defaults
	r := newOtelRecorder(t)
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	})
	otel.SetTracerProvider(r.tp)
	otel.SetMeterProvider(r.mp)
	after := newQuorum(t, nodes)

	for i, q := range []*lease.Quorum{before, after} {
		ctx, parent := otel.Tracer("app").Start(context.Background(), "request")
		m := mutex.New(q, "global")
		if err := m.Lock(ctx); err != nil {
			t.Fatalf("Lock: got %v; want nil", err)
		}
		if err := m.Unlock(ctx); err != nil {
			t.Fatalf("Unlock: got %v; want nil", err)
		}
		parent.End()
		spans := r.named("mutex.Lock")
		if len(spans) != i+1 {
			t.Fatalf("mutex.Lock spans after quorum %d: got %d; want %d", i, len(spans), i+1)
		}
		s := spans[i]
		wantChildOf(t, s, parent)
		if got := s.InstrumentationScope(); got.Name != tracing.ScopeName || got.Version != tracing.Version {
			t.Errorf("scope: got %s %s; want %s %s", got.Name, got.Version, tracing.ScopeName, tracing.Version)
		}
	}
	if got := byKey(r.metrics(t)["quorumsync.acquire.duration"])[mutexKey("Lock", outcomeAttr("acquired"))].count; got != 2 {
		t.Errorf("acquire.duration Lock acquired: got %d; want 2", got)
	}
}

// runInChild runs the test named name alone in a child process of this test binary, with env
// added, and fails if it fails there.
func runInChild(t *testing.T, name string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("child process: got %v; want it to pass:\n%s", err, out)
	}
}

func pointKeys(m map[string]point) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// pointCounts shows histogram counts and sum values by attributes, for failure messages.
func pointCounts(m map[string]point) map[string]float64 {
	c := make(map[string]float64, len(m))
	for k, p := range m {
		if p.isH {
			c[k] = float64(p.count)
		} else {
			c[k] = float64(p.value)
		}
	}
	return c
}
