package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

func TestNoOpProvidersCostNoMoreThanTheAPIsNoOpSpan(t *testing.T) {
	tp := tracenoop.NewTracerProvider()
	in, err := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(metricnoop.NewMeterProvider()))
	require.NoError(t, err)
	ctx := context.Background()

	_, a := in.StartAcquire(ctx, mutexLock)
	assert.Nil(t, a, "Acquire when nothing records")

	tracer := tp.Tracer("ref")
	floor := testing.AllocsPerRun(100, func() {
		_, span := tracer.Start(ctx, "mutex.Lock")
		span.End()
	})
	got := testing.AllocsPerRun(100, func() {
		_, a := in.StartAcquire(ctx, mutexLock)
		a.Attempt()
		a.Waiting()
		a.Retry(time.Millisecond, "held")
		h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
		h.Renewed(nil)
		h.Released()
	})
	assert.Equal(t, floor, got, "allocations of a Lock+Unlock; want those of the API's no-op span alone")
}

func TestSampledOutAcquireStillRecordsMetrics(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	in, err := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))
	require.NoError(t, err)
	r := &recorded{in: in, tp: tp, spans: spans, reader: reader, mp: mp}

	_, a := in.StartAcquire(context.Background(), mutexLock)
	h := a.End(telemetry.OutcomeAcquired, time.Second, nil)
	require.NotNil(t, h)
	h.Lost(errors.New("expired"))

	assert.Empty(t, spanNames(spans.Ended()))
	assert.Equal(t, map[string]float64{
		"quorumsync.operation=Lock,quorumsync.outcome=acquired,quorumsync.primitive=mutex": 1,
	}, r.points(t, "quorumsync.acquire.duration"))
	assert.Equal(t, map[string]float64{"quorumsync.operation=Lock,quorumsync.primitive=mutex": 1},
		r.points(t, "quorumsync.leases.lost"))
}
