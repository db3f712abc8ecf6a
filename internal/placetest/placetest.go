// Package placetest is a test, shared by the primitives' packages, of a waiter that keeps its
// place in line when a round is granted by too few nodes (see engine.Requeuer).
package placetest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/tracing"
)

// Claim is one claim on the test's name: a blocking acquire and its release.
type Claim struct {
	Acquire, Release func(context.Context) error
}

// Run checks that a waiter granted by too few nodes keeps its place where it gives the grant back.
// On 3 nodes, with node 2 down, holder's release reaches node 0 but is held back on its way to
// node 1: node 0 serves first, the first waiter in line, whose rounds then find node 1 still held
// (split votes). Its undo must not hand node 0 to second, the waiter behind it: second would then
// be granted there and split in turn, and with the two nodes serving different waiters, the two
// could trade places round after round (a chaos run saw two waiters make 640 rounds in 2.5s). So
// none of second's rounds splits while the release is held back (its span, named span, says why
// each round failed), and first, then second, acquire once it lands.
//
// Each function makes its claim on the quorum it is given; second's quorum records its spans.
func Run(t *testing.T, span string, holder, first, second func(*lease.Quorum) Claim) {
	t.Helper()
	nodes := redistest.Start(t, 3)
	newQuorum := func(clients []redis.UniversalClient, opts ...lease.Option) *lease.Quorum {
		t.Helper()
		q, err := lease.NewQuorum(context.Background(), clients, opts...)
		if err != nil {
			t.Fatalf("NewQuorum: %v", err)
		}
		t.Cleanup(func() { _ = q.Close(context.Background()) })
		return q
	}
	clients := redistest.Clients(nodes)
	held, gate := redistest.HoldBack(t, nodes[1])
	clients[1] = held
	// A node timeout long enough for the held-back release to wait for the flag to clear.
	h := holder(newQuorum(clients, lease.WithNodeTimeout(3*time.Second)))
	// The waiters' node timeouts are long too: a live node that timed out under load would count
	// as not answering, and the first waiter's undo would then be a release (see the engine's
	// round), which hands its place on.
	recA, tpA := recorder(t)
	a := first(newQuorum(redistest.Clients(nodes), lease.WithNodeTimeout(3*time.Second), lease.WithTracerProvider(tpA)))
	recB, tpB := recorder(t)
	b := second(newQuorum(redistest.Clients(nodes), lease.WithNodeTimeout(3*time.Second), lease.WithTracerProvider(tpB)))
	looker := newQuorum(redistest.Clients(nodes))
	if err := h.Acquire(context.Background()); err != nil {
		t.Fatalf("holder: acquire: %v", err)
	}
	nodes[2].Kill() // (after the quorums' start-up checks, which would wait for it)

	acquired := make(chan string, 2)
	claim := func(c Claim, who string) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Acquire(ctx); err != nil {
			t.Errorf("%s: acquire: %v", who, err)
			acquired <- who + " failed"
			return
		}
		acquired <- who
		if err := c.Release(context.Background()); err != nil {
			t.Errorf("%s: release: %v", who, err)
		}
	}
	queued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if st, err := looker.Inspect(context.Background(), "place"); err == nil && len(st.Waiters) == n {
				return
			}
		}
		t.Fatalf("%d waiters never showed queued", n)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { claim(a, "first") })
	queued(1)
	wg.Go(func() { claim(b, "second") })
	queued(2)

	publishedBefore := publishes(t, nodes[0])
	gate.Hold()
	from := time.Now()
	released := make(chan error, 1)
	go func() { released <- h.Release(context.Background()) }()
	// Node 0 serves the first waiter at once; its rounds split on node 1. The second, with a node
	// down, polls meanwhile.
	time.Sleep(time.Second)
	to := time.Now()
	published := publishes(t, nodes[0])
	gate.Release()
	if err := <-released; err != nil {
		t.Fatalf("holder: release: %v", err)
	}
	for _, want := range []string{"first", "second"} {
		select {
		case got := <-acquired:
			if got != want {
				t.Fatalf("acquired: got %s; want %s (in arrival order)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not acquire within 10s of the holder's release", want)
		}
	}
	wg.Wait()
	retries := events(recB, span, "retry", tracing.RetryReasonKey, from, to)
	splits := retries["split vote"]
	if sum(retries) == 0 {
		t.Fatalf("the second waiter made no round while the release was held back; the test needs it to poll (node 2 down)")
	}
	if splits != 0 {
		t.Errorf("the second waiter's rounds while the release was held back: %d of %d split; want none (the first one's undo handed it its place on node 0)", splits, sum(retries))
	}
	// The first waiter's own requeues serve it on node 0 again and again, and must not wake it:
	// node 0 publishes once in the window, for the holder's release. (Counted on the server: the
	// waiters also wake whenever the pub/sub connection to the dead node 2 fails again.)
	if firstRetries := events(recA, "", "retry", tracing.RetryReasonKey, from, to); firstRetries["split vote"] == 0 {
		t.Fatalf("the first waiter's rounds while the release was held back: %v; want split votes", firstRetries)
	}
	if n := published - publishedBefore; n != 1 {
		t.Errorf("node 0 published %d messages while the release was held back; want 1 (the holder's release), none for the first waiter's own requeues", n)
	}
}

// publishes returns how many PUBLISH calls node has run, scripts' included.
func publishes(t *testing.T, node *redistest.Node) int {
	t.Helper()
	info, err := node.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	_, rest, found := strings.Cut(info, "cmdstat_publish:calls=")
	if !found {
		return 0
	}
	digits, _, _ := strings.Cut(rest, ",")
	n, err := strconv.Atoi(digits)
	if err != nil {
		t.Fatalf("INFO commandstats: publish calls %q: %v", digits, err)
	}
	return n
}

// recorder returns a span recorder and a tracer provider that feeds it.
func recorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// events counts the events called event of the spans called span ("": any) that rec recorded
// between from and to, by the value of their attribute key.
func events(rec *tracetest.SpanRecorder, span, event string, key attribute.Key, from, to time.Time) map[string]int {
	out := map[string]int{}
	for _, s := range rec.Ended() {
		if span != "" && s.Name() != span {
			continue
		}
		for _, e := range s.Events() {
			if e.Name != event || e.Time.Before(from) || e.Time.After(to) {
				continue
			}
			for _, kv := range e.Attributes {
				if kv.Key == key {
					out[kv.Value.Emit()]++
				}
			}
		}
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
