package semaphore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
	"github.com/quorumsync/quorumsync/tracing"
)

// Every acquire opens a span, semaphore.Acquire or semaphore.TryAcquire, with the weight asked for.
func TestAcquireSpansCarryTheWeight(t *testing.T) {
	nodes := redistest.Start(t, 1)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	s := semaphore.New(newQuorum(t, nodes, lease.WithTracerProvider(tp)), "traced", 4)
	ctx := context.Background()
	require.NoError(t, s.Acquire(ctx, 3))
	require.ErrorIs(t, s.TryAcquire(ctx, 2), lease.ErrNotAcquired)
	require.NoError(t, s.Release(ctx, 3))
	require.NoError(t, s.Do(ctx, 4, func(context.Context) error { return nil }))

	type seen struct {
		name, outcome string
		permits       int64
	}
	var got []seen
	for _, sp := range rec.Ended() {
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range sp.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		assert.Equal(t, "semaphore", attrs[tracing.PrimitiveKey].AsString())
		got = append(got, seen{sp.Name(), attrs[tracing.OutcomeKey].AsString(), attrs[tracing.PermitsKey].AsInt64()})
	}
	assert.Equal(t, []seen{
		{"semaphore.Acquire", "acquired", 3},
		{"semaphore.TryAcquire", "not_acquired", 2},
		{"semaphore.Acquire", "acquired", 4},
	}, got)
}
