package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/tracing"
)

// result is what one load run observed.
type result struct {
	Requests, Concurrency int
	OK, Failed            int
	FirstFailure          string // the first failed request's error or status, if any
	Elapsed               time.Duration

	// LockWait is the quorumsync.wait attribute of every "mutex.Lock" span, sorted.
	LockWait []time.Duration
	// Spans is every span the run recorded.
	Spans []spanRecord
	// Acquires and Holds are the quorumsync.acquire.duration and quorumsync.hold.duration
	// histograms by outcome; Held is quorumsync.leases.held at the end, Lost quorumsync.leases.lost.
	Acquires, Holds map[string]histogram
	Held, Lost      int64
	MetricsErr      error

	Final, Expected int64
}

// fire sends cfg.Load POST /increment requests to url, cfg.Concurrency at a time, through an
// otelhttp transport, so that each request has a client span whose context the server picks up
// from the traceparent header.
func fire(ctx context.Context, url string, tel *telemetry, cfg config, res *result) {
	base := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}
	defer base.CloseIdleConnections()
	client := &http.Client{
		Transport: otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(tel.tp),
			otelhttp.WithMeterProvider(tel.mp),
			otelhttp.WithPropagators(tel.propagator)),
		Timeout: 30 * time.Second,
	}
	var (
		next     atomic.Int64
		ok, bad  atomic.Int64
		failOnce sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(cfg.Load) && ctx.Err() == nil {
				if err := post(ctx, client, url+"/increment"); err != nil {
					bad.Add(1)
					failOnce.Do(func() { res.FirstFailure = err.Error() })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.OK, res.Failed = int(ok.Load()), int(bad.Load())
	if n := res.OK + res.Failed; n < cfg.Load {
		res.Failed += cfg.Load - n // not sent: ctx ended
		failOnce.Do(func() { res.FirstFailure = ctx.Err().Error() })
	}
}

// post sends one request and reads the whole response, which ends its client span.
func post(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

// summarize fills res from the recorded spans and metrics.
func (t *telemetry) summarize(ctx context.Context, res *result) {
	res.Spans = t.spans.all()
	t.exported = len(res.Spans)
	for _, s := range res.Spans {
		if s.Name != "mutex.Lock" {
			continue
		}
		if w, ok := s.Attrs[tracing.WaitKey]; ok {
			res.LockWait = append(res.LockWait, time.Duration(w.AsFloat64()*float64(time.Second)))
		}
	}
	slices.Sort(res.LockWait)
	hists, sums, err := t.quorumsyncMetrics(ctx)
	res.MetricsErr = err
	res.Acquires, res.Holds = hists["quorumsync.acquire.duration"], hists["quorumsync.hold.duration"]
	res.Held, res.Lost = sums["quorumsync.leases.held"], sums["quorumsync.leases.lost"]
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted, by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// lockChildrenOfServerSpans counts the "mutex.Lock" spans whose parent is an HTTP server span,
// and all of them.
func (r *result) lockChildrenOfServerSpans() (children, locks int) {
	servers := map[trace.SpanID]trace.TraceID{}
	for _, s := range r.Spans {
		if s.Kind == trace.SpanKindServer {
			servers[s.ID] = s.Trace
		}
	}
	for _, s := range r.Spans {
		if s.Name != "mutex.Lock" {
			continue
		}
		locks++
		if tr, ok := servers[s.Parent]; ok && tr == s.Trace {
			children++
		}
	}
	return children, locks
}

// print writes the summary.
func (r *result) print(out io.Writer, tel *telemetry) {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	say("load: %d x POST /increment, %d concurrent: %d ok, %d failed, in %v (%.0f req/s)",
		r.Requests, r.Concurrency, r.OK, r.Failed, ms(r.Elapsed), float64(r.OK+r.Failed)/r.Elapsed.Seconds())
	if r.FirstFailure != "" {
		say("  first failure: %s", r.FirstFailure)
	}
	say("lock wait (quorumsync.wait of %d mutex.Lock spans): p50 %v, p99 %v, max %v",
		len(r.LockWait), ms(percentile(r.LockWait, 0.50)), ms(percentile(r.LockWait, 0.99)), ms(percentile(r.LockWait, 1)))
	if r.MetricsErr != nil {
		say("metrics: %v", r.MetricsErr)
	} else {
		a, h := r.Acquires["acquired"], r.Holds["released"]
		say("metrics: quorumsync.acquire.duration %d acquired (mean %v), quorumsync.hold.duration %d released (mean %v), leases held now %d, lost %d",
			a.Count, ms(mean(a)), h.Count, ms(mean(h)), r.Held, r.Lost)
	}
	children, locks := r.lockChildrenOfServerSpans()
	say("spans: %d recorded; %d of %d mutex.Lock spans are children of a server span:", len(r.Spans), children, locks)
	for _, line := range spanTable(r.Spans) {
		say("  %s", line)
	}
	say("traces: %s", tel.destination())
	say("final value: %d (expected %d)", r.Final, r.Expected)
}

// spanTable returns one line per span name: kind, count, p50 and p99 duration, in the order of
// the trace tree (client, server, then the rest by name).
func spanTable(spans []spanRecord) []string {
	type row struct {
		name string
		kind trace.SpanKind
		durs []time.Duration
	}
	rows := map[string]*row{}
	for _, s := range spans {
		r := rows[s.Name]
		if r == nil {
			r = &row{name: s.Name, kind: s.Kind}
			rows[s.Name] = r
		}
		r.durs = append(r.durs, s.Duration)
	}
	order := make([]*row, 0, len(rows))
	for _, r := range rows {
		slices.Sort(r.durs)
		order = append(order, r)
	}
	rank := func(k trace.SpanKind) int {
		switch k {
		case trace.SpanKindClient:
			return 0
		case trace.SpanKindServer:
			return 1
		default:
			return 2
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if a, b := rank(order[i].kind), rank(order[j].kind); a != b {
			return a < b
		}
		return order[i].name < order[j].name
	})
	lines := []string{fmt.Sprintf("%-20s %-9s %6s %9s %9s", "name", "kind", "count", "p50", "p99")}
	for _, r := range order {
		lines = append(lines, fmt.Sprintf("%-20s %-9s %6d %9v %9v", r.name, r.kind, len(r.durs),
			ms(percentile(r.durs, 0.5)), ms(percentile(r.durs, 0.99))))
	}
	return lines
}

func mean(h histogram) time.Duration {
	if h.Count == 0 {
		return 0
	}
	return time.Duration(h.Sum / float64(h.Count) * float64(time.Second))
}

// ms formats d to a tenth of a millisecond, for the summary.
func ms(d time.Duration) string {
	if d < 100*time.Microsecond {
		return "<0.1ms"
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
