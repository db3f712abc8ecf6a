package mutex_test

import (
	"context"
	"syscall"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// processCPU returns the user and system CPU time this process has used, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// discardSpans is a span exporter that drops every span.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// BenchmarkMutexTracing measures what tracing adds to an uncontended Lock+Unlock on one real
// redis-server (N=1), side by side:
//
//   - disabled: no-op tracer and meter providers passed explicitly, the instrumentation's floor;
//   - no-provider: the defaults, the global providers with nothing set, as most users run it;
//   - sdk: the OTel SDK sampling every span into a synchronous exporter that discards it (so
//     the cost of building and ending spans is on the caller's goroutine, not a batcher's), and
//     an SDK meter provider with a manual reader.
//
// The round trips to Redis dominate ns/op, and on a busy machine so does their noise; cpu-ns/op,
// the CPU time this process (not redis-server) spent per Lock+Unlock, leaves out the waiting,
// and the instrumentation is CPU work. Either way, compare medians of many runs:
//
//	go test -run '^$' -bench BenchmarkMutexTracing -benchtime 3000x -count 6 ./mutex/
//
// -count runs each case its six times in a row, so a burst of load elsewhere lands on one case.
// On a shared machine, interleave the cases instead, one process per run:
//
//	go test -c -o /tmp/mutex.test ./mutex/
//	for i in $(seq 30); do for c in disabled no-provider sdk; do
//	  /tmp/mutex.test -test.run '^$' -test.bench "BenchmarkMutexTracing/^$c\$" -test.benchtime 3000x
//	done; done | tee bench.txt
//	benchstat -col /.name bench.txt
func BenchmarkMutexTracing(b *testing.B) {
	nodes := redistest.Start(b, 1)
	for _, bc := range []struct {
		name string
		opts func(b *testing.B) []lease.Option
	}{
		{"disabled", func(*testing.B) []lease.Option {
			return []lease.Option{
				lease.WithTracerProvider(tracenoop.NewTracerProvider()),
				lease.WithMeterProvider(metricnoop.NewMeterProvider()),
			}
		}},
		{"no-provider", func(*testing.B) []lease.Option { return nil }},
		{"sdk", func(b *testing.B) []lease.Option {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
				sdktrace.WithSyncer(discardSpans{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			return []lease.Option{lease.WithTracerProvider(tp), lease.WithMeterProvider(mp)}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := lease.NewQuorum(context.Background(), redistest.Clients(nodes), bc.opts(b)...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = q.Close(context.Background()) })
			m := mutex.New(q, "bench")
			ctx := context.Background()
			b.ReportAllocs()
			n, cpu0 := 0, processCPU(b)
			for b.Loop() {
				if err := m.Lock(ctx); err != nil {
					b.Fatal(err)
				}
				if err := m.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/op")
		})
	}
}
