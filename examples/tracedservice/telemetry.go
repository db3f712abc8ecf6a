package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/tracing"
)

// telemetry is the OpenTelemetry SDK set up for the program: a tracer provider that exports to
// the span file (stdouttrace) and, when configured, over OTLP; a meter provider read on demand
// for the summary, and by the Prometheus exporter at every scrape of GET /metrics; and, in load
// mode, a log of every ended span for the summary.
type telemetry struct {
	tp         *sdktrace.TracerProvider
	mp         *sdkmetric.MeterProvider
	reader     *sdkmetric.ManualReader
	registry   *prometheus.Registry // what GET /metrics serves: the Prometheus exporter's metrics
	propagator propagation.TextMapPropagator
	spans      *spanLog // nil in serve mode, where it would grow without bound

	file     *os.File // the span file, nil for stdout or none
	traces   string   // the span file's name, "-", or ""
	otlp     string   // the OTLP endpoint, "" when not exporting over OTLP
	exported int      // spans ended, counted at summary time
}

// otlpEndpoint returns the OTLP endpoint set in the environment, "" if none. otlptracehttp reads
// these variables itself; this only decides whether to make an exporter at all.
func otlpEndpoint() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// newTelemetry builds the providers. traces names the span file ("-": out; "": none). keepSpans
// turns on the span log the summary reads.
func newTelemetry(ctx context.Context, traces string, out io.Writer, keepSpans bool) (*telemetry, error) {
	t := &telemetry{
		reader:     sdkmetric.NewManualReader(),
		registry:   prometheus.NewRegistry(),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		traces:     traces,
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName("tracedservice")))
	if err != nil {
		return nil, err
	}
	// The Prometheus exporter is a metric reader that collects from the meter provider at every
	// scrape. It registers with a registry of its own rather than prometheus.DefaultRegisterer,
	// so that the tests can build the telemetry more than once in one process; an application
	// with one meter provider could keep the default and serve promhttp.Handler().
	prom, err := otelprom.New(otelprom.WithRegisterer(t.registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch traces {
	case "":
	case "-":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	default:
		f, err := os.Create(traces)
		if err != nil {
			return nil, err
		}
		t.file = f
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if ep := otlpEndpoint(); ep != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			t.closeFile()
			return nil, fmt.Errorf("OTLP exporter for %s: %w", ep, err)
		}
		t.otlp = ep
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if keepSpans {
		t.spans = &spanLog{}
		opts = append(opts, sdktrace.WithSpanProcessor(t.spans))
	}
	t.tp = sdktrace.NewTracerProvider(opts...)
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(t.reader), sdkmetric.WithReader(prom))
	return t, nil
}

// metricsHandler serves the metrics in the Prometheus text format, for GET /metrics.
func (t *telemetry) metricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// destination says where the spans go, for the narrative.
func (t *telemetry) destination() string {
	var d string
	switch t.traces {
	case "":
		d = "not written (-traces \"\")"
	case "-":
		d = "printed on stdout"
	default:
		d = "written to " + t.traces + ", one JSON object per line"
	}
	if t.otlp != "" {
		return d + ", and sent over OTLP/HTTP to " + t.otlp
	}
	return d + "; set OTEL_EXPORTER_OTLP_ENDPOINT to send them over OTLP too"
}

// shutdown flushes and stops the providers, then closes the span file.
func (t *telemetry) shutdown(ctx context.Context) error {
	err := errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	t.closeFile()
	return err
}

func (t *telemetry) closeFile() {
	if t.file != nil {
		_ = t.file.Close()
		t.file = nil
	}
}

// spanRecord is what the summary and the tests need of one ended span.
type spanRecord struct {
	Name     string
	Kind     trace.SpanKind
	Trace    trace.TraceID
	ID       trace.SpanID
	Parent   trace.SpanID // invalid for a root span
	Duration time.Duration
	Attrs    map[attribute.Key]attribute.Value
}

// spanLog is a span processor that keeps a record of every ended span.
type spanLog struct {
	mu    sync.Mutex
	spans []spanRecord
}

func (l *spanLog) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	r := spanRecord{
		Name:     s.Name(),
		Kind:     s.SpanKind(),
		Trace:    s.SpanContext().TraceID(),
		ID:       s.SpanContext().SpanID(),
		Parent:   s.Parent().SpanID(),
		Duration: s.EndTime().Sub(s.StartTime()),
		Attrs:    make(map[attribute.Key]attribute.Value, len(s.Attributes())),
	}
	for _, kv := range s.Attributes() {
		r.Attrs[kv.Key] = kv.Value
	}
	l.mu.Lock()
	l.spans = append(l.spans, r)
	l.mu.Unlock()
}

func (l *spanLog) Shutdown(context.Context) error   { return nil }
func (l *spanLog) ForceFlush(context.Context) error { return nil }

// all returns a copy of the records.
func (l *spanLog) all() []spanRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]spanRecord(nil), l.spans...)
}

// histogram is one data point of a float64 histogram: its count and sum.
type histogram struct {
	Count uint64
	Sum   float64
}

// quorumsyncMetrics collects the quorumsync.* metrics: the histograms by name and outcome, and
// the sums by name (all data points added up).
func (t *telemetry) quorumsyncMetrics(ctx context.Context) (map[string]map[string]histogram, map[string]int64, error) {
	var rm metricdata.ResourceMetrics
	if err := t.reader.Collect(ctx, &rm); err != nil {
		return nil, nil, err
	}
	hists := map[string]map[string]histogram{}
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					o, _ := p.Attributes.Value(tracing.OutcomeKey)
					if hists[m.Name] == nil {
						hists[m.Name] = map[string]histogram{}
					}
					h := hists[m.Name][o.AsString()]
					h.Count += p.Count
					h.Sum += p.Sum
					hists[m.Name][o.AsString()] = h
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
				}
			}
		}
	}
	return hists, sums, nil
}
