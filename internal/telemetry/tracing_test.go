package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

func TestAcquireSpanIsNamedPrimitiveDotOperationWithItsAttributes(t *testing.T) {
	tests := []struct {
		info     telemetry.AcquireInfo
		wantName string
		want     map[attribute.Key]any
	}{
		{
			info:     mutexLock,
			wantName: "mutex.Lock",
			want: map[attribute.Key]any{
				"quorumsync.primitive": "mutex", "quorumsync.operation": "Lock",
				"quorumsync.lock.name": "orders:42", "quorumsync.nodes": int64(3), "quorumsync.quorum": int64(2),
			},
		},
		{
			info:     telemetry.AcquireInfo{Primitive: "rwmutex", Operation: "TryRLock", Name: "config", Nodes: 5, Quorum: 3},
			wantName: "rwmutex.TryRLock",
			want: map[attribute.Key]any{
				"quorumsync.primitive": "rwmutex", "quorumsync.operation": "TryRLock",
				"quorumsync.lock.name": "config", "quorumsync.nodes": int64(5), "quorumsync.quorum": int64(3),
			},
		},
		{
			info:     telemetry.AcquireInfo{Primitive: "semaphore", Operation: "Acquire", Name: "gpu-pool", Nodes: 1, Quorum: 1, Permits: 4},
			wantName: "semaphore.Acquire",
			want: map[attribute.Key]any{
				"quorumsync.primitive": "semaphore", "quorumsync.operation": "Acquire",
				"quorumsync.lock.name": "gpu-pool", "quorumsync.nodes": int64(1), "quorumsync.quorum": int64(1),
				"quorumsync.permits": int64(4),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.wantName, func(t *testing.T) {
			r := newRecorded(t)
			_, a := r.in.StartAcquire(context.Background(), tt.info)
			a.Attempt()
			a.Attempt()
			a.End(telemetry.OutcomeAcquired, 9*time.Second, nil)

			got := attrs(r.span(t, tt.wantName).Attributes())
			wait, ok := got[telemetry.WaitKey].(float64)
			assert.True(t, ok && wait >= 0 && wait < 60, "quorumsync.wait = %v; want seconds as a float64", got[telemetry.WaitKey])
			delete(got, telemetry.WaitKey)
			want := map[attribute.Key]any{
				"quorumsync.attempts": int64(2), "quorumsync.outcome": "acquired", "quorumsync.validity": 9.0,
			}
			for k, v := range tt.want {
				want[k] = v
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestAcquireSpanIsChildOfCallerSpanAndParentOfCallsMadeWithItsContext(t *testing.T) {
	r := newRecorded(t)
	ctx, caller := r.tp.Tracer("app").Start(context.Background(), "handler")
	actx, a := r.in.StartAcquire(ctx, mutexLock)
	_, node := r.tp.Tracer("redis").Start(actx, "evalsha")
	node.End()
	a.End(telemetry.OutcomeAcquired, time.Second, nil)
	caller.End()

	acq := r.span(t, "mutex.Lock")
	assert.Equal(t, caller.SpanContext().SpanID(), acq.Parent().SpanID(), "parent of the acquire span")
	assert.Equal(t, caller.SpanContext().TraceID(), acq.SpanContext().TraceID(), "trace of the acquire span")
	assert.Equal(t, acq.SpanContext().SpanID(), r.span(t, "evalsha").Parent().SpanID(), "parent of a call made with the returned ctx")
}

func TestOnlyOutcomeErrorSetsErrorStatus(t *testing.T) {
	errRedis := errors.New("redis down")
	tests := []struct {
		outcome       telemetry.Outcome
		err           error
		wantStatus    codes.Code
		wantErrorType bool
		wantHeld      bool
	}{
		{telemetry.OutcomeAcquired, nil, codes.Unset, false, true},
		{telemetry.OutcomeNotAcquired, errors.New("mutex: not acquired"), codes.Unset, false, false},
		{telemetry.OutcomeCancelled, context.Canceled, codes.Unset, false, false},
		{telemetry.OutcomeError, errRedis, codes.Error, true, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.outcome), func(t *testing.T) {
			r := newRecorded(t)
			_, a := r.in.StartAcquire(context.Background(), mutexLock)
			h := a.End(tt.outcome, time.Second, tt.err)
			assert.Equal(t, tt.wantHeld, h != nil, "End returned a Held")

			s := r.span(t, "mutex.Lock")
			assert.Equal(t, tt.wantStatus, s.Status().Code, "status")
			got := attrs(s.Attributes())
			assert.Equal(t, string(tt.outcome), got[telemetry.OutcomeKey])
			_, hasValidity := got[telemetry.ValidityKey]
			assert.Equal(t, tt.outcome == telemetry.OutcomeAcquired, hasValidity, "has quorumsync.validity")
			_, hasErrorType := got["error.type"]
			assert.Equal(t, tt.wantErrorType, hasErrorType, "has error.type")
			assert.Equal(t, tt.wantErrorType, len(eventNames(s)) == 1, "has an exception event; events %v", eventNames(s))
			if tt.wantErrorType {
				assert.Equal(t, "redis down", s.Status().Description)
				assert.Equal(t, "*errors.errorString", got["error.type"])
				assert.Equal(t, "redis down", event(t, s, "exception")["exception.message"])
			}
		})
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

var _ net.Error = errTimeout{}

func TestEventsRecordRetriesWakeUpsAndNodeErrors(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	a.Retry(25*time.Millisecond, "held")
	a.WakeUp("pubsub")
	a.End(telemetry.OutcomeAcquired, time.Second, nil)
	s := r.span(t, "mutex.Lock")

	assert.Equal(t, []string{"retry", "wakeup"}, eventNames(s))
	assert.Equal(t, map[attribute.Key]any{"quorumsync.retry.wait": 0.025, "quorumsync.retry.reason": "held"}, event(t, s, "retry"))
	assert.Equal(t, map[attribute.Key]any{"quorumsync.wakeup.source": "pubsub"}, event(t, s, "wakeup"))
}

func TestNodeErrorEventTellsTimeoutsFromOtherErrors(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantTimeout bool
	}{
		{"deadline", fmt.Errorf("node 1: %w", context.DeadlineExceeded), true},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}, true},
		{"refused", errors.New("connection refused"), false},
		{"cancelled", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			_, a := r.in.StartAcquire(context.Background(), mutexLock)
			a.NodeFailed(1, "10.0.0.2:6379", tt.err)
			a.End(telemetry.OutcomeError, 0, tt.err)

			got := event(t, r.span(t, "mutex.Lock"), "node.error")
			assert.Equal(t, int64(1), got[telemetry.NodeIndexKey])
			assert.Equal(t, "10.0.0.2:6379", got[telemetry.NodeAddressKey])
			assert.Equal(t, tt.wantTimeout, got[telemetry.NodeTimeoutKey])
			assert.Equal(t, tt.err.Error(), got[telemetry.ErrorKey])
			assert.NotEmpty(t, got["error.type"])
		})
	}
}

func TestFailedRenewalMakesLinkedSpanAndEventOnAttachedSpan(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	wctx, work := r.tp.Tracer("app").Start(context.Background(), "work")
	detach := h.Attach(wctx)

	h.Renewed(nil)
	h.Renewed(errors.New("too few nodes"))
	detach()
	work.End()

	acq := r.span(t, "mutex.Lock")
	renew := r.span(t, "mutex.renew")
	assert.Equal(t, codes.Error, renew.Status().Code)
	require.Len(t, renew.Links(), 1)
	assert.Equal(t, acq.SpanContext(), renew.Links()[0].SpanContext, "link of the renew span")
	assert.False(t, renew.Parent().IsValid(), "the renew span starts a trace of its own")
	assert.Equal(t, "orders:42", attrs(renew.Attributes())[telemetry.LockNameKey])

	w := r.span(t, "work")
	assert.Equal(t, []string{"lease.renew_failed"}, eventNames(w), "a successful renewal adds no event")
	assert.Equal(t, "too few nodes", event(t, w, "lease.renew_failed")[telemetry.ErrorKey])
}

func TestLostLeaseMakesLinkedSpanAndEventOnAttachedSpan(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	wctx, work := r.tp.Tracer("app").Start(context.Background(), "work")
	detach := h.Attach(wctx)

	h.Lost(errors.New("lease: lost: expired"))
	h.Lost(errors.New("again")) // ignored
	detach()
	work.End()

	acq := r.span(t, "mutex.Lock")
	l := r.span(t, "mutex.lost")
	assert.Equal(t, codes.Error, l.Status().Code)
	assert.Equal(t, "lease: lost: expired", l.Status().Description)
	require.Len(t, l.Links(), 1)
	assert.Equal(t, acq.SpanContext(), l.Links()[0].SpanContext, "link of the lost span")
	got := attrs(l.Attributes())
	assert.Equal(t, "mutex", got[telemetry.PrimitiveKey])
	assert.Equal(t, "*errors.errorString", got["error.type"])
	assert.Equal(t, "lease: lost: expired", event(t, r.span(t, "work"), "lease.lost")[telemetry.ErrorKey])
}

func TestDetachedSpanGetsNoMoreEvents(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	wctx, work := r.tp.Tracer("app").Start(context.Background(), "work")
	h.Attach(wctx)()
	h.Lost(errors.New("lost"))
	work.End()

	assert.Empty(t, eventNames(r.span(t, "work")))
	r.span(t, "mutex.lost")
}

func TestAttachOfContextWithoutRecordingSpanIsHarmless(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	detach := h.Attach(context.Background())
	h.Lost(errors.New("lost"))
	detach()
	r.span(t, "mutex.lost")
}

func TestNilInstrumentationAcquireAndHeldDoNothing(t *testing.T) {
	var in *telemetry.Instrumentation
	ctx := context.Background()
	got, a := in.StartAcquire(ctx, mutexLock)
	assert.Equal(t, ctx, got)
	assert.Nil(t, a)
	a.Attempt()
	a.Waiting()
	a.Retry(time.Millisecond, "held")
	a.WakeUp("timer")
	a.NodeFailed(0, "x", errors.New("x"))
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	assert.Nil(t, h)
	h.Renewed(errors.New("x"))
	h.Attach(ctx)()
	h.Lost(errors.New("x"))
	h.Released()
}

func TestEndTwiceIsIgnored(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	require.NotNil(t, a.End(telemetry.OutcomeAcquired, time.Second, nil))
	assert.Nil(t, a.End(telemetry.OutcomeAcquired, time.Second, nil))
	assert.Len(t, r.spans.Ended(), 1)
	assert.Equal(t, map[string]float64{
		"quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex": 1,
	}, r.points(t, "quorumsync.acquire.duration"))
}

func TestConcurrentReportsAreRaceFree(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			a.Attempt()
			a.NodeFailed(i, "node", context.DeadlineExceeded)
		})
	}
	wg.Wait()
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	wctx, work := r.tp.Tracer("app").Start(context.Background(), "work")
	for range 4 {
		wg.Go(func() { h.Renewed(errors.New("slow")) })
		wg.Go(func() { h.Attach(wctx)() })
	}
	wg.Go(func() { h.Lost(errors.New("lost")) })
	wg.Go(h.Released)
	wg.Wait()
	work.End()

	assert.Equal(t, int64(3), attrs(r.span(t, "mutex.Lock").Attributes())[telemetry.AttemptsKey])
	assert.Equal(t, map[string]float64{"quorumsync.operation=Lock,quorumsync.primitive=mutex": 0},
		r.points(t, "quorumsync.leases.held"), "held after release and loss")
}

// TestGlobalProvidersSetAfterNewAreUsed runs in a child process: the OTel globals forward to
// the first providers set in a process and cannot be reset, so it needs a fresh one.
func TestGlobalProvidersSetAfterNewAreUsed(t *testing.T) {
	if os.Getenv("TRACING_GLOBAL_CHILD") != "1" {
		runChild(t, "TestGlobalProvidersSetAfterNewAreUsed")
		return
	}
	in, err := telemetry.New() // before the application sets its providers
	require.NoError(t, err)
	r := newRecorded(t)
	setGlobal(t, r.tp, r.mp)
	_, a := in.StartAcquire(context.Background(), mutexLock)
	a.End(telemetry.OutcomeNotAcquired, 0, nil)

	assert.Equal(t, telemetry.ScopeName, r.span(t, "mutex.Lock").InstrumentationScope().Name)
	assert.Equal(t, telemetry.Version, r.span(t, "mutex.Lock").InstrumentationScope().Version)
	assert.Equal(t, map[string]float64{
		"quorumsync.operation=Lock,quorumsync.outcome=not_acquired,quorumsync.primitive=mutex": 1,
	}, r.points(t, "quorumsync.acquire.duration"))
}

// runChild runs the test named name alone in a child process and fails if it fails.
func runChild(t *testing.T, name string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TRACING_GLOBAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child process:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+name, "child process:\n%s", out)
}
