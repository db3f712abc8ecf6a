package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quorumsync/quorumsync/tracing"
)

// syncBuffer is an io.Writer that one goroutine may write while another reads it: the output of
// a service running in the background.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingOn = regexp.MustCompile(`serving on (http://\S+)`)

// serve runs the service as `go run . -serve 127.0.0.1:0` does, on embedded servers, until the
// test ends, and returns its base URL once it serves.
func serve(t *testing.T) string {
	t.Helper()
	cfg := testConfig(t, 0)
	cfg.Serve = "127.0.0.1:0"
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := run(ctx, out, cfg)
		done <- err
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: got %v; want nil once stopped", err)
		}
		t.Logf("output:\n%s", out.String())
	})
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := servingOn.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("run returned before serving: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("not serving after a minute:\n%s", out.String())
		case <-tick.C:
		}
	}
}

// TestMetricsEndpointServesTheLibraryMetricsToPrometheus starts the service, takes the lock
// through a few POST /increment, and scrapes GET /metrics as Prometheus would. The library's
// instruments are there under their Prometheus names, from the library's instrumentation scope
// (tracing.ScopeName), with the acquisitions counted:
//
//	quorumsync.acquire.duration (unit s)      quorumsync_acquire_duration_seconds (histogram)
//	quorumsync.hold.duration (unit s)         quorumsync_hold_duration_seconds (histogram)
//	quorumsync.leases.held (up-down counter)  quorumsync_leases_held (gauge)
//
// (quorumsync.renewals, quorumsync.leases.lost and quorumsync.waiters have no data point until a
// lease is renewed, lost or waited for, which these quick, one-at-a-time requests never do.)
func TestMetricsEndpointServesTheLibraryMetricsToPrometheus(t *testing.T) {
	noOTLP(t)
	base := serve(t)
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	const n = 5
	for i := range n {
		resp, err := client.Post(base+"/increment", "", nil)
		if err != nil {
			t.Fatalf("POST /increment %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`{"value":%d}`, i+1); resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
			t.Fatalf("POST /increment %d: got %s %s; want 200 OK %s", i+1, resp.Status, body, want)
		}
	}

	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %s (%v); want 200 OK", resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q; want the Prometheus text format, text/plain", ct)
	}
	// Classic Prometheus names only: the exporter's default translation escapes the dots.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("GET /metrics: not the Prometheus text format: %v\n%s", err, text)
	}

	// ours returns the family's metrics recorded by the library, and fails the test unless the
	// family is there, of type typ, with some.
	ours := func(name string, typ dto.MetricType) []*dto.Metric {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Errorf("GET /metrics: no %s\n%s", name, text)
			return nil
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v; want %v", name, f.GetType(), typ)
		}
		var ms []*dto.Metric
		for _, m := range f.GetMetric() {
			if label(m, "otel_scope_name") == tracing.ScopeName {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			t.Errorf("%s: no series with otel_scope_name=%q\n%s", name, tracing.ScopeName, text)
		}
		return ms
	}
	for _, h := range []struct{ name, outcome string }{
		{"quorumsync_acquire_duration_seconds", "acquired"},
		{"quorumsync_hold_duration_seconds", "released"},
	} {
		var count uint64
		var sum float64
		for _, m := range ours(h.name, dto.MetricType_HISTOGRAM) {
			if label(m, "quorumsync_outcome") == h.outcome {
				count += m.GetHistogram().GetSampleCount()
				sum += m.GetHistogram().GetSampleSum()
			}
		}
		if count != n || sum <= 0 {
			t.Errorf("%s{quorumsync_outcome=%q}: count %d, sum %gs; want %d, and a positive sum", h.name, h.outcome, count, sum, n)
		}
	}
	for _, m := range ours("quorumsync_leases_held", dto.MetricType_GAUGE) {
		if v := m.GetGauge().GetValue(); v != 0 {
			t.Errorf("quorumsync_leases_held: got %g; want 0, every lease released", v)
		}
	}
	t.Logf("GET /metrics, the library's counts and gauges:\n%s", libraryLines(string(text)))
}

// label returns the value of m's label name, "" if it has none.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// libraryLines returns the lines of the library's series in text, but for the histograms' buckets.
func libraryLines(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "quorumsync_") && !strings.Contains(line, "_bucket{") {
			b.WriteString(line)
		}
	}
	return b.String()
}
