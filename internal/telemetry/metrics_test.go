package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

func TestMetricsCountAcquiresByPrimitiveOperationAndOutcome(t *testing.T) {
	r := newRecorded(t)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, o := range []telemetry.Outcome{telemetry.OutcomeAcquired, telemetry.OutcomeAcquired, telemetry.OutcomeNotAcquired, telemetry.OutcomeCancelled, telemetry.OutcomeError} {
		actx := ctx
		if o == telemetry.OutcomeCancelled {
			actx = cancelled // still recorded, though the caller's ctx is done
		}
		_, a := r.in.StartAcquire(actx, mutexLock)
		a.End(o, time.Second, nil)
	}
	_, a := r.in.StartAcquire(ctx, telemetry.AcquireInfo{Primitive: "semaphore", Operation: "TryAcquire", Name: "gpu", Permits: 2})
	a.End(telemetry.OutcomeNotAcquired, 0, nil)

	assert.Equal(t, map[string]float64{
		"quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex":               2,
		"quorumsync.operation=Lock,quorumsync.outcome=not_acquired,quorumsync.primitive=mutex":           1,
		"quorumsync.operation=Lock,quorumsync.outcome=cancelled,quorumsync.primitive=mutex":              1,
		"quorumsync.operation=Lock,quorumsync.outcome=error,quorumsync.primitive=mutex":                  1,
		"quorumsync.operation=TryAcquire,quorumsync.outcome=not_acquired,quorumsync.primitive=semaphore": 1,
	}, r.points(t, "quorumsync.acquire.duration"))
}

func TestWaitersCountCallersBlockedUntilEnd(t *testing.T) {
	r := newRecorded(t)
	const mutex = "quorumsync.operation=Lock,quorumsync.primitive=mutex"
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	_, b := r.in.StartAcquire(context.Background(), mutexLock)
	a.Waiting()
	a.Waiting() // counted once
	b.Waiting()
	assert.Equal(t, map[string]float64{mutex: 2}, r.points(t, "quorumsync.waiters"))
	a.End(telemetry.OutcomeCancelled, 0, context.Canceled)
	assert.Equal(t, map[string]float64{mutex: 1}, r.points(t, "quorumsync.waiters"))
	b.End(telemetry.OutcomeAcquired, time.Second, nil)
	assert.Equal(t, map[string]float64{mutex: 0}, r.points(t, "quorumsync.waiters"))
}

func TestLeaseMetricsFollowTheHold(t *testing.T) {
	const mutex = "quorumsync.operation=Lock,quorumsync.primitive=mutex"
	tests := []struct {
		name     string
		end      func(h *telemetry.Held)
		wantHold map[string]float64
		wantLost map[string]float64
	}{
		{
			name:     "released",
			end:      func(h *telemetry.Held) { h.Released(); h.Released() },
			wantHold: map[string]float64{"quorumsync.operation=Lock,quorumsync.outcome=released,quorumsync.primitive=mutex": 1},
			wantLost: map[string]float64{},
		},
		{
			name:     "lost then released",
			end:      func(h *telemetry.Held) { h.Lost(errors.New("expired")); h.Released() },
			wantHold: map[string]float64{"quorumsync.operation=Lock,quorumsync.outcome=lost,quorumsync.primitive=mutex": 1},
			wantLost: map[string]float64{mutex: 1},
		},
		{
			name:     "released then lost",
			end:      func(h *telemetry.Held) { h.Released(); h.Lost(errors.New("closed")) },
			wantHold: map[string]float64{"quorumsync.operation=Lock,quorumsync.outcome=released,quorumsync.primitive=mutex": 1},
			wantLost: map[string]float64{mutex: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			_, a := r.in.StartAcquire(context.Background(), mutexLock)
			h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
			assert.Equal(t, map[string]float64{mutex: 1}, r.points(t, "quorumsync.leases.held"), "held while held")
			h.Renewed(nil)
			h.Renewed(nil)
			h.Renewed(errors.New("too few nodes"))
			tt.end(h)

			assert.Equal(t, map[string]float64{mutex: 0}, r.points(t, "quorumsync.leases.held"), "held after the end")
			assert.Equal(t, tt.wantHold, r.points(t, "quorumsync.hold.duration"))
			assert.Equal(t, tt.wantLost, r.points(t, "quorumsync.leases.lost"))
			assert.Equal(t, map[string]float64{
				"quorumsync.operation=Lock,quorumsync.outcome=ok,quorumsync.primitive=mutex":     2,
				"quorumsync.operation=Lock,quorumsync.outcome=failed,quorumsync.primitive=mutex": 1,
			}, r.points(t, "quorumsync.renewals"))
		})
	}
}

func TestWithNameAttributePutsTheLockNameOnMetrics(t *testing.T) {
	tests := []struct {
		opts []telemetry.Option
		want map[string]map[string]float64
	}{
		{
			opts: nil,
			want: map[string]map[string]float64{
				"quorumsync.acquire.duration": {"quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex": 2},
				"quorumsync.waiters":          {"quorumsync.operation=Lock,quorumsync.primitive=mutex": 0},
				"quorumsync.leases.held":      {"quorumsync.operation=Lock,quorumsync.primitive=mutex": 0},
				"quorumsync.leases.lost":      {"quorumsync.operation=Lock,quorumsync.primitive=mutex": 1},
				"quorumsync.renewals":         {"quorumsync.operation=Lock,quorumsync.outcome=ok,quorumsync.primitive=mutex": 2},
				"quorumsync.hold.duration": {
					"quorumsync.operation=Lock,quorumsync.outcome=released,quorumsync.primitive=mutex": 1,
					"quorumsync.operation=Lock,quorumsync.outcome=lost,quorumsync.primitive=mutex":     1,
				},
			},
		},
		{
			opts: []telemetry.Option{telemetry.WithNameAttribute(true)},
			want: map[string]map[string]float64{
				"quorumsync.acquire.duration": {
					"quorumsync.lock.name=a,quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex": 1,
					"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex": 1,
				},
				"quorumsync.waiters": {
					"quorumsync.lock.name=a,quorumsync.operation=Lock,quorumsync.primitive=mutex": 0,
					"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.primitive=mutex": 0,
				},
				"quorumsync.leases.held": {
					"quorumsync.lock.name=a,quorumsync.operation=Lock,quorumsync.primitive=mutex": 0,
					"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.primitive=mutex": 0,
				},
				"quorumsync.leases.lost": {"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.primitive=mutex": 1},
				"quorumsync.renewals": {
					"quorumsync.lock.name=a,quorumsync.operation=Lock,quorumsync.outcome=ok,quorumsync.primitive=mutex": 1,
					"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.outcome=ok,quorumsync.primitive=mutex": 1,
				},
				"quorumsync.hold.duration": {
					"quorumsync.lock.name=a,quorumsync.operation=Lock,quorumsync.outcome=released,quorumsync.primitive=mutex": 1,
					"quorumsync.lock.name=b,quorumsync.operation=Lock,quorumsync.outcome=lost,quorumsync.primitive=mutex":     1,
				},
			},
		},
	}
	for _, tt := range tests {
		name := "off"
		if tt.opts != nil {
			name = "on"
		}
		t.Run(name, func(t *testing.T) {
			r := newRecorded(t, tt.opts...)
			for _, lock := range []string{"a", "b"} {
				info := mutexLock
				info.Name = lock
				_, a := r.in.StartAcquire(context.Background(), info)
				a.Waiting()
				h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
				h.Renewed(nil)
				if lock == "a" {
					h.Released()
				} else {
					h.Lost(errors.New("expired"))
				}
			}
			for metric, want := range tt.want {
				assert.Equal(t, want, r.points(t, metric), metric)
			}
		})
	}
}

func TestUnknownOutcomeIsRecordedAsGiven(t *testing.T) {
	r := newRecorded(t)
	_, a := r.in.StartAcquire(context.Background(), mutexLock)
	assert.Nil(t, a.End("timeout", 0, nil))
	assert.Equal(t, map[string]float64{
		"quorumsync.operation=Lock,quorumsync.outcome=timeout,quorumsync.primitive=mutex": 1,
	}, r.points(t, "quorumsync.acquire.duration"))
}
