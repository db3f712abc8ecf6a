package telemetry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// recorded is an Instrumentation wired to an SDK tracer provider with a span recorder and an SDK
// meter provider with a manual reader.
type recorded struct {
	in     *telemetry.Instrumentation
	tp     *sdktrace.TracerProvider
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newRecorded(t *testing.T, opts ...telemetry.Option) *recorded {
	t.Helper()
	r := &recorded{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	in, err := telemetry.New(append([]telemetry.Option{
		telemetry.WithTracerProvider(r.tp), telemetry.WithMeterProvider(r.mp)}, opts...)...)
	require.NoError(t, err)
	r.in = in
	return r
}

// span returns the one ended span named name.
func (r *recorded) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "ended spans named %q; got %v", name, spanNames(r.spans.Ended()))
	return found[0]
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	return names
}

// attrs turns key-values into a map for comparison.
func attrs(kvs []attribute.KeyValue) map[attribute.Key]any {
	m := make(map[attribute.Key]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.AsInterface()
	}
	return m
}

func event(t *testing.T, s sdktrace.ReadOnlySpan, name string) map[attribute.Key]any {
	t.Helper()
	for _, e := range s.Events() {
		if e.Name == name {
			return attrs(e.Attributes)
		}
	}
	t.Fatalf("span %q has no event %q; events %v", s.Name(), name, eventNames(s))
	return nil
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

// points collects the metric named name and returns its data points keyed by their encoded
// attributes ("k=v,k=v", sorted): the value of sums, the count of histograms.
func (r *recorded) points(t *testing.T, name string) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[p.Attributes.Encoded(attribute.DefaultEncoder())] = float64(p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[p.Attributes.Encoded(attribute.DefaultEncoder())] = float64(p.Value)
				}
			default:
				t.Fatalf("metric %s has data %T", name, m.Data)
			}
		}
	}
	return got
}

// setGlobal installs tp and mp as the global providers until the end of the test.
func setGlobal(t *testing.T, tp trace.TracerProvider, mp metric.MeterProvider) {
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	})
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
}

var mutexLock = telemetry.AcquireInfo{Primitive: "mutex", Operation: "Lock", Name: "orders:42", Nodes: 3, Quorum: 2}
