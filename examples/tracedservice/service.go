package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// workTime is the "work" between the GET and the SET: it widens the window in which, without
// the lock, two requests would read the same value and one increment would be lost.
const workTime = 200 * time.Microsecond

// service is the HTTP service: a counter in Redis, incremented under a quorumsync mutex.
type service struct {
	q      *lease.Quorum
	rdb    redis.UniversalClient // holds the counter
	tracer trace.Tracer
}

// handler returns the service's routes wrapped in otelhttp, which starts a server span per
// request (named after the route, e.g. "POST /increment") and puts it in the request's context,
// where the mutex finds it; and, beside them, GET /metrics, which serves the metrics for
// Prometheus to scrape. The scrapes are left untraced: one every few seconds would only crowd
// the service's own spans.
func (s *service) handler(tel *telemetry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /increment", s.increment)
	mux.HandleFunc("GET /counter", s.counter)
	root := http.NewServeMux()
	root.Handle("GET /metrics", tel.metricsHandler())
	root.Handle("/", traced(mux, tel))
	return root
}

// traced wraps mux in otelhttp.
func traced(mux *http.ServeMux, tel *telemetry) http.Handler {
	return otelhttp.NewHandler(mux, "tracedservice",
		otelhttp.WithTracerProvider(tel.tp),
		otelhttp.WithMeterProvider(tel.mp),
		otelhttp.WithPropagators(tel.propagator),
		// The route pattern, not the path, so that unknown paths don't make a span name each.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if _, pattern := mux.Handler(r); pattern != "" {
				return pattern
			}
			return r.Method
		}))
}

// increment adds one to the counter with a read-modify-write under the mutex, and answers with
// the new value: {"value": n}.
func (s *service) increment(w http.ResponseWriter, r *http.Request) {
	var value int64
	done := false
	// Do locks (the "mutex.Lock" span is a child of r's server span), runs the function with a
	// ctx that ends if the lease is lost, and unlocks. A lost lease also shows as a "lease.lost"
	// event on the server span.
	err := mutex.New(s.q, lockName).Do(r.Context(), func(ctx context.Context) error {
		ctx, span := s.tracer.Start(ctx, "counter.increment")
		defer span.End()
		n, err := s.readModifyWrite(ctx)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			return err
		}
		span.SetAttributes(attribute.Int64("counter.value", n))
		value, done = n, true
		return nil
	})
	switch {
	case done:
		// The write happened under the lock. An error here is the unlock's (a node too slow to
		// answer): the keys left expire within the TTL, and the increment stands.
		if err != nil {
			slog.Warn("tracedservice: unlock", "err", err)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"value": value})
	case errors.Is(err, lease.ErrNotAcquired):
		// The client went away, or too few nodes answered.
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// readModifyWrite is the critical section: GET, a little work, SET. It stops if ctx ends (the
// lease was lost, or the client went away) rather than write unprotected.
func (s *service) readModifyWrite(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, counterKey).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("get counter: %w", err)
	}
	t := time.NewTimer(workTime)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
	if err := s.rdb.Set(ctx, counterKey, n+1, 0).Err(); err != nil {
		return 0, fmt.Errorf("set counter: %w", err)
	}
	return n + 1, nil
}

// counter answers with the counter's value: {"value": n}.
func (s *service) counter(w http.ResponseWriter, r *http.Request) {
	n, err := s.rdb.Get(r.Context(), counterKey).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"value": n})
}
