package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noOTLP makes sure the test exports nowhere but where it says, whatever the environment.
func noOTLP(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
}

func testConfig(t *testing.T, load int) config {
	cfg := defaultConfig()
	cfg.Load, cfg.Concurrency = load, 8
	cfg.Traces = filepath.Join(t.TempDir(), "traces.json")
	return cfg
}

// TestLoadCountsEveryRequestAndNestsLockSpansInServerSpans runs the load step as `go run .` does,
// on embedded servers, and checks what the program claims: every increment counted, and each
// request traced as client span > server span > mutex.Lock (and the work under the lock).
func TestLoadCountsEveryRequestAndNestsLockSpansInServerSpans(t *testing.T) {
	noOTLP(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t, 50)
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: got %v; want nil", err)
	}

	if res.OK != 50 || res.Failed != 0 {
		t.Errorf("requests: got %d ok, %d failed (first failure %q); want 50 ok, 0 failed", res.OK, res.Failed, res.FirstFailure)
	}
	if res.Final != 50 || res.Expected != 50 {
		t.Errorf("final value %d, expected %d; want both 50 (the request count)", res.Final, res.Expected)
	}
	if len(res.LockWait) != 50 {
		t.Errorf("lock waits from mutex.Lock spans: got %d; want 50", len(res.LockWait))
	}
	if a := res.Acquires["acquired"]; a.Count != 50 {
		t.Errorf("quorumsync.acquire.duration acquired: got %d; want 50", a.Count)
	}
	if res.Held != 0 {
		t.Errorf("quorumsync.leases.held at the end: got %d; want 0", res.Held)
	}

	byID := map[trace.SpanID]spanRecord{}
	count := map[string]int{}
	for _, s := range res.Spans {
		byID[s.ID] = s
		count[s.Name]++
	}
	for name, want := range map[string]int{"mutex.Lock": 50, "POST /increment": 50, "counter.increment": 50} {
		if count[name] != want {
			t.Errorf("%q spans: got %d; want %d (all: %v)", name, count[name], want, count)
		}
	}
	parentOf := func(s spanRecord) (spanRecord, bool) {
		p, ok := byID[s.Parent]
		return p, ok && p.Trace == s.Trace
	}
	for _, s := range res.Spans {
		switch s.Name {
		case "mutex.Lock", "counter.increment":
			if p, ok := parentOf(s); !ok || p.Kind != trace.SpanKindServer || p.Name != "POST /increment" {
				t.Errorf("%s span's parent: got %q (%v, found %v); want the POST /increment server span", s.Name, p.Name, p.Kind, ok)
			}
		case "POST /increment":
			if p, ok := parentOf(s); !ok || p.Kind != trace.SpanKindClient {
				t.Errorf("server span's parent: got %q (%v, found %v); want the load generator's client span", p.Name, p.Kind, ok)
			}
		}
	}
	if children, locks := res.lockChildrenOfServerSpans(); children != locks || locks != 50 {
		t.Errorf("mutex.Lock spans that are children of a server span: got %d of %d; want 50 of 50", children, locks)
	}

	// The span file holds every span, one JSON object per line.
	inFile := spanFileNames(t, cfg.Traces)
	if inFile["mutex.Lock"] != 50 || inFile["POST /increment"] != 50 {
		t.Errorf("spans in %s: got %v; want 50 mutex.Lock and 50 POST /increment", cfg.Traces, inFile)
	}
	for _, want := range []string{"final value: 50 (expected 50)", "50 of 50 mutex.Lock spans are children of a server span", "lock wait"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output: got no %q; want it in the summary", want)
		}
	}
}

// spanFileNames counts the spans of the stdouttrace file path by name.
func spanFileNames(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open span file: got %v; want it written", err)
	}
	defer f.Close()
	names := map[string]int{}
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var s struct{ Name string }
		if err := dec.Decode(&s); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("span file %s: got %v; want JSON objects", path, err)
		}
		names[s.Name]++
	}
	return names
}

// TestMainCodeExitsZeroWhenEveryIncrementCounts runs the program's entry point with flags.
func TestMainCodeExitsZeroWhenEveryIncrementCounts(t *testing.T) {
	noOTLP(t)
	t.Setenv("REDIS_ADDRS", "")
	var stdout, stderr bytes.Buffer
	traces := filepath.Join(t.TempDir(), "t.json")
	code := mainCode([]string{"-load", "20", "-concurrency", "4", "-traces", traces}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "final value: 20 (expected 20)") {
		t.Errorf("exit code %d; want 0 and a final value of 20\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if code := mainCode([]string{"-load", "0"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("exit code with -load 0: got %d; want 1", code)
	}
	if code := mainCode([]string{"-nosuchflag"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("exit code with an unknown flag: got %d; want 2", code)
	}
}

// TestMainCodeOnServersNamedInREDIS_ADDRS runs the program on servers of its own (real
// redis-servers where redis-server is installed), named in REDIS_ADDRS as a reader would name
// theirs: URLs, and a plain host:port among them. It checks that the program uses them, says so,
// counts every increment and leaves no counter behind; and that a REDIS_ADDRS that lists no server
// is refused.
func TestMainCodeOnServersNamedInREDIS_ADDRS(t *testing.T) {
	noOTLP(t)
	urls := quorumsynctest.NewServers(t, 3).URLs()
	list := urls[0] + ", " + strings.TrimPrefix(urls[1], "redis://") + "," + urls[2]
	t.Setenv("REDIS_ADDRS", list)
	var stdout, stderr bytes.Buffer
	code := mainCode([]string{"-load", "20", "-concurrency", "4", "-traces", ""}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "final value: 20 (expected 20)") {
		t.Errorf("REDIS_ADDRS=%s: exit code %d; want 0 and a final value of 20\nstdout:\n%s\nstderr:\n%s", list, code, stdout.String(), stderr.String())
	}
	if want := "mode: REDIS_ADDRS: 3 server(s): " + strings.Join(urls, ", "); !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout: got no %q\n%s", want, stdout.String())
	}
	opt, err := redis.ParseURL(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if n, err := rdb.Exists(context.Background(), counterKey).Result(); err != nil || n != 0 {
		t.Errorf("%s on the first server after the run: exists %d (%v); want it deleted", counterKey, n, err)
	}

	t.Setenv("REDIS_ADDRS", " , ")
	stderr.Reset()
	if code := mainCode(nil, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "lists no server") {
		t.Errorf("REDIS_ADDRS=\" , \": exit code %d, stderr %q; want 2 and that it lists no server", code, stderr.String())
	}
}

// TestOTLPEndpointReceivesTheSpans points OTEL_EXPORTER_OTLP_ENDPOINT at a stand-in collector on
// loopback and checks that the spans arrive there over OTLP/HTTP.
func TestOTLPEndpointReceivesTheSpans(t *testing.T) {
	var (
		mu       sync.Mutex
		posts    int
		received int
		types    []string
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts++
			received += len(body)
			types = append(types, r.Header.Get("Content-Type"))
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t, 5)
	cfg.Traces = ""
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	if err != nil {
		t.Fatalf("run: got %v; want nil\n%s", err, out.String())
	}
	if res.Final != 5 {
		t.Errorf("final value: got %d; want 5", res.Final)
	}
	mu.Lock()
	defer mu.Unlock()
	if posts == 0 || received == 0 {
		t.Errorf("OTLP requests to /v1/traces: got %d carrying %d bytes; want at least one with spans", posts, received)
	}
	for _, ct := range types {
		if ct != "application/x-protobuf" {
			t.Errorf("OTLP content type: got %q; want application/x-protobuf", ct)
		}
	}
	if !strings.Contains(out.String(), "sent over OTLP/HTTP to "+collector.URL) {
		t.Errorf("output: got no mention of the OTLP endpoint %s:\n%s", collector.URL, out.String())
	}
}
