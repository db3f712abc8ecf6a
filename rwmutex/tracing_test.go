package rwmutex_test

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
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/tracing"
)

// Every acquire opens a span named after the method, through the engine.
func TestEveryAcquireHasASpanNamedAfterTheMethod(t *testing.T) {
	nodes := redistest.Start(t, 1)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	q := newQuorum(t, nodes, lease.WithTracerProvider(tp))
	rw := rwmutex.New(q, "traced")
	ctx := context.Background()
	require.NoError(t, rw.RLock(ctx))
	require.NoError(t, rw.RUnlock(ctx))
	require.NoError(t, rw.TryRLock(ctx))
	require.ErrorIs(t, rwmutex.New(newQuorum(t, nodes, lease.WithTracerProvider(tp)), "traced").TryLock(ctx), lease.ErrNotAcquired)
	require.NoError(t, rw.RUnlock(ctx))
	require.NoError(t, rw.Lock(ctx))
	require.NoError(t, rw.Unlock(ctx))
	require.NoError(t, rw.RDo(ctx, func(context.Context) error { return nil }))
	require.NoError(t, rw.Do(ctx, func(context.Context) error { return nil }))

	type seen struct{ name, op, outcome string }
	var got []seen
	for _, s := range rec.Ended() {
		attrs := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			attrs[kv.Key] = kv.Value.Emit()
		}
		assert.Equal(t, "rwmutex", attrs[tracing.PrimitiveKey], s.Name())
		assert.Equal(t, "traced", attrs[tracing.LockNameKey], s.Name())
		got = append(got, seen{s.Name(), attrs[tracing.OperationKey], attrs[tracing.OutcomeKey]})
	}
	assert.Equal(t, []seen{
		{"rwmutex.RLock", "RLock", "acquired"},
		{"rwmutex.TryRLock", "TryRLock", "acquired"},
		{"rwmutex.TryLock", "TryLock", "not_acquired"},
		{"rwmutex.Lock", "Lock", "acquired"},
		{"rwmutex.RLock", "RLock", "acquired"},
		{"rwmutex.Lock", "Lock", "acquired"},
	}, got)
}
