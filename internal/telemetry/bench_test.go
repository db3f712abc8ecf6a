package telemetry_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// discard is a span exporter that drops everything.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkStartEnd measures what instrumentation adds to one Lock+Unlock: StartAcquire, one
// attempt, End as acquired, Released.
func BenchmarkStartEnd(b *testing.B) {
	sdk := func(b *testing.B, opts ...telemetry.Option) *telemetry.Instrumentation {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discard{}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		in, err := telemetry.New(append(opts, telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))...)
		if err != nil {
			b.Fatal(err)
		}
		return in
	}
	global := func(b *testing.B, _ ...telemetry.Option) *telemetry.Instrumentation {
		in, err := telemetry.New() // the global providers: no-op, nobody set them in this process
		if err != nil {
			b.Fatal(err)
		}
		return in
	}
	none := func(*testing.B, ...telemetry.Option) *telemetry.Instrumentation { return nil }

	for _, bc := range []struct {
		name string
		in   func(*testing.B, ...telemetry.Option) *telemetry.Instrumentation
		opts []telemetry.Option
	}{
		{"uninstrumented", none, nil},
		{"no-provider", global, nil},
		{"sdk-always-sample", sdk, nil},
		{"sdk-always-sample-name-on-metrics", sdk, []telemetry.Option{telemetry.WithNameAttribute(true)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := bc.in(b, bc.opts...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, a := in.StartAcquire(ctx, mutexLock)
				a.Attempt()
				h := a.End(telemetry.OutcomeAcquired, 9*time.Second, nil)
				h.Released()
			}
		})
	}

	// The floor: what the OTel API (global, nothing set) and the SDK cost for a bare span with
	// no attributes, for comparison with the cases above.
	b.Run("ref/global-span-only", func(b *testing.B) {
		tracer := otel.GetTracerProvider().Tracer("ref")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "mutex.Lock")
			span.End()
		}
	})
	b.Run("ref/sdk-span-only", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discard{}))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tracer := tp.Tracer("ref")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "mutex.Lock")
			span.End()
		}
	})
}
