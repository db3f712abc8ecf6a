// Tracedservice is a small HTTP service traced with OpenTelemetry whose one handler,
// POST /increment, does a read-modify-write of a Redis counter (GET, a little work, SET) under
// mutex.New(q, "tracedservice:counter") with [mutex.Mutex.Do]. The HTTP server span comes from
// otelhttp; the mutex puts its "mutex.Lock" span inside it, as a child, next to the span of the
// work done under the lock:
//
//	HTTP POST                      client span (the load generator, through otelhttp.Transport)
//	└── POST /increment            server span (otelhttp.Handler)
//	    ├── mutex.Lock             quorumsync: nodes, quorum, attempts, outcome, wait, validity
//	    └── counter.increment      the GET and SET, under the lock
//
// With no arguments it needs neither Redis nor a collector: it starts three in-process Redis
// servers (miniredis, their clocks driven in real time) as a quorum of N=3, serves on a loopback
// port, fires 200 requests at itself 16 at a time, prints a summary (requests, lock wait p50/p99
// from the spans' quorumsync.wait, metrics, span counts, the final counter against the number of
// requests, which must be equal) and exits, with status 1 if anything failed or the counter is
// off:
//
//	go run .
//	go run . -load 1000 -concurrency 32
//
// Spans are written to traces.json, one JSON object per line (the stdouttrace exporter), so that
// the terminal shows only the summary; -traces - prints them on stdout instead, and -traces ""
// keeps none. When OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set,
// they are also sent there over OTLP/HTTP, for example to a local collector or Jaeger:
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run .
//
// REDIS_ADDRS lists your own independent Redis masters instead (one, or 3 or 5 for a real
// quorum), comma-separated, as URLs (redis://, rediss:// for TLS, unix:// for a socket; see
// redis.ParseURL) or as plain host:port; the counter is kept on the first under
// "tracedservice:counter:value" and deleted at the end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run .
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run .
//
// -serve runs the service until interrupted, without the load:
//
//	go run . -serve 127.0.0.1:8080 &
//	curl -X POST http://127.0.0.1:8080/increment
//	curl http://127.0.0.1:8080/metrics
//
// GET /metrics serves the metrics, quorumsync's and otelhttp's, in the Prometheus text format,
// through the OpenTelemetry Prometheus exporter (go.opentelemetry.io/otel/exporters/prometheus)
// and promhttp. Their Prometheus names have underscores for dots, the unit as a suffix and _total
// on counters: quorumsync.acquire.duration (seconds, by quorumsync_outcome) is the histogram
// quorumsync_acquire_duration_seconds, quorumsync.hold.duration is
// quorumsync_hold_duration_seconds, quorumsync.leases.held the gauge quorumsync_leases_held,
// quorumsync.renewals the counter quorumsync_renewals_total, and so on:
//
//	# TYPE quorumsync_acquire_duration_seconds histogram
//	...
//	quorumsync_acquire_duration_seconds_count{otel_scope_name="github.com/quorumsync/quorumsync/tracing",...,quorumsync_operation="Lock",quorumsync_outcome="acquired",quorumsync_primitive="mutex"} 1
//
// For Prometheus to scrape them, in prometheus.yml:
//
//	scrape_configs:
//	  - job_name: tracedservice
//	    static_configs:
//	      - targets: ["127.0.0.1:8080"]
//
// The providers are passed explicitly (lease.WithTracerProvider, otelhttp.WithTracerProvider, ...)
// so that the tests can run the program several times in one process; an application would
// rather set them once with otel.SetTracerProvider and otel.SetMeterProvider, which quorumsync
// and otelhttp use by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

const (
	lockName   = "tracedservice:counter"
	counterKey = "tracedservice:counter:value" // on the first node
	// embeddedNodes is the quorum size without REDIS_ADDRS: N=3, majority 2.
	embeddedNodes = 3
)

func main() { os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr)) }

// mainCode is main without os.Exit, so that its deferred calls run.
func mainCode(args []string, stdout, stderr io.Writer) int {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("tracedservice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Load, "load", cfg.Load, "requests to fire at the service before exiting")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "requests in flight at once")
	fs.StringVar(&cfg.Traces, "traces", cfg.Traces, `file the spans are written to, one JSON object per line ("-": stdout, "": none)`)
	fs.StringVar(&cfg.Serve, "serve", "", "serve on this address until interrupted, without the load (e.g. 127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.URLs = os.Getenv("REDIS_ADDRS")
	if cfg.URLs != "" && strings.Trim(cfg.URLs, ", \t") == "" {
		fmt.Fprintf(stderr, "tracedservice: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Serve == "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	res, err := run(ctx, stdout, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "tracedservice:", err)
		return 1
	}
	if res != nil && (res.Failed > 0 || res.Final != res.Expected) {
		return 1
	}
	return 0
}

// config is what the program runs on and what it does.
type config struct {
	URLs        string // Redis servers, as REDIS_ADDRS lists them; empty: start embeddedNodes in-process servers
	Load        int    // requests to fire
	Concurrency int    // requests in flight at once
	Traces      string // span file; "-": stdout; "": none
	Serve       string // listen address of serve mode; "": load mode on a loopback port
	TTL         time.Duration
}

func defaultConfig() config {
	return config{Load: 200, Concurrency: 16, Traces: "traces.json", TTL: 5 * time.Second}
}

// run sets up telemetry, Redis, the quorum and the HTTP server, then either serves until ctx ends
// (serve mode, nil result) or fires cfg.Load requests at the server and returns what it saw,
// after printing a summary to out. Everything it started is stopped before it returns, so the
// span file is complete by then.
func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	if cfg.Serve == "" && (cfg.Load < 1 || cfg.Concurrency < 1) {
		return nil, fmt.Errorf("need -load and -concurrency of at least 1, got %d and %d", cfg.Load, cfg.Concurrency)
	}
	// Deferred calls run last-first: the server stops, then the quorum and the clients, then the
	// embedded servers, and the telemetry last, so that it flushes every span.
	tel, err := newTelemetry(ctx, cfg.Traces, out, cfg.Serve == "")
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, tel.shutdown(sctx))
	}()

	// The servers cfg.URLs names, or embedded ones; Close stops only the ones it started.
	servers, err := quorumsynctest.Use(cfg.URLs, embeddedNodes)
	if err != nil {
		return nil, err
	}
	defer servers.Close()
	urls := servers.URLs()
	if servers.Embedded() {
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}

	clients := make([]redis.UniversalClient, len(urls))
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		// ContextTimeoutEnabled: NewQuorum requires it, so that its per-node deadlines reach
		// the sockets.
		opt.ContextTimeoutEnabled = true
		c := redis.NewClient(opt)
		defer c.Close()
		clients[i] = c
	}
	q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(cfg.TTL),
		lease.WithTracerProvider(tel.tp), lease.WithMeterProvider(tel.mp))
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, q.Close(cctx))
	}()
	say("quorum: %d node(s), majority %d, lease TTL %v", len(clients), len(clients)/2+1, cfg.TTL)

	counter := clients[0]
	svc := &service{q: q, rdb: counter, tracer: tel.tp.Tracer("github.com/quorumsync/quorumsync/examples/tracedservice")}
	listen := cfg.Serve
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: svc.handler(tel), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// stopServer shuts the server down once: it waits for the requests in flight, whose server
	// spans end only after their handler has returned, and for Serve to return.
	var stopped bool
	stopServer := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	defer func() { err = errors.Join(err, stopServer()) }()
	base := "http://" + ln.Addr().String()
	say("serving on %s (POST /increment, GET /counter, GET /metrics)", base)

	if cfg.Serve != "" {
		say("traces: %s; Ctrl-C to stop", tel.destination())
		select {
		case <-ctx.Done():
		case err := <-served:
			served <- err // for stopServer
		}
		return nil, nil
	}

	if err := counter.Set(ctx, counterKey, 0, 0).Err(); err != nil {
		return nil, fmt.Errorf("reset counter: %w", err)
	}
	res = &result{Requests: cfg.Load, Concurrency: cfg.Concurrency}
	fire(ctx, base, tel, cfg, res)
	res.Final, err = counter.Get(ctx, counterKey).Int64()
	if err != nil {
		return res, fmt.Errorf("read counter: %w", err)
	}
	res.Expected = int64(res.OK)
	if !servers.Embedded() {
		// Leave the servers as we found them.
		_ = counter.Del(ctx, counterKey).Err()
	}
	// Every span has ended once the server is down. What the batching exporters still hold is
	// flushed when the telemetry shuts down.
	if err := stopServer(); err != nil {
		return res, err
	}
	tel.summarize(ctx, res)
	res.print(out, tel)
	return res, nil
}
