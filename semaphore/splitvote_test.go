package semaphore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
	"github.com/quorumsync/quorumsync/tracing"
)

// A waiter granted by too few nodes keeps its place where it gives the permits back (see the
// mutex package's TestASplitVoteKeepsTheWaitersPlace, and engine.Requeuer). With node 2 down, the
// holder's release of both permits reaches node 0 but is held back on its way to node 1: node 0
// serves A, first in line for 2 permits, whose rounds then find node 1 still full. A's undo must
// not pass the permits to B, behind it for 1: B's rounds would then be granted on node 0 and
// split, and two waiters served by different nodes could trade places round after round (a chaos
// run saw two make 640 rounds in 2.5s, the slowest acquire under faults taking 8.1s against a
// usual 3-5s). So none of B's rounds splits while the release is held back, and A, then B, acquire
// once it lands.
func TestASplitVoteKeepsTheWaitersPlace(t *testing.T) {
	nodes := redistest.Start(t, 3)
	clients := redistest.Clients(nodes)
	var heldBack interface{ Store(bool) }
	clients[1], heldBack = redistest.HoldBack(t, nodes[1])
	hq, err := lease.NewQuorum(context.Background(), clients, lease.WithNodeTimeout(3*time.Second))
	if err != nil {
		t.Fatalf("NewQuorum: %v", err)
	}
	t.Cleanup(func() { _ = hq.Close(context.Background()) })
	holder := semaphore.New(hq, "place", 2)
	if err := holder.Acquire(context.Background(), 2); err != nil {
		t.Fatalf("holder Acquire(2): %v", err)
	}
	a := semaphore.New(newQuorum(t, nodes), "place", 2)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	b := semaphore.New(newQuorum(t, nodes, lease.WithTracerProvider(tp)), "place", 2)
	looker := newQuorum(t, nodes)
	nodes[2].Kill() // (after the quorums' start-up checks, which would wait for it)
	acquired := make(chan string, 2)
	acquireAndRecord := func(s *semaphore.Semaphore, who string, n int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Acquire(ctx, n); err != nil {
			t.Errorf("%s Acquire(%d): %v", who, n, err)
			acquired <- who + " failed"
			return
		}
		acquired <- who
		if err := s.Release(context.Background(), n); err != nil {
			t.Errorf("%s Release(%d): %v", who, n, err)
		}
	}
	waitForWaiters := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := looker.Inspect(context.Background(), "place"); err == nil && len(st.Waiters) == n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%d waiters never showed queued", n)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { acquireAndRecord(a, "A", 2) })
	waitForWaiters(1)
	wg.Go(func() { acquireAndRecord(b, "B", 1) })
	waitForWaiters(2)

	heldBack.Store(true)
	from := time.Now()
	released := make(chan error, 1)
	go func() { released <- holder.Release(context.Background(), 2) }()
	// Node 0 serves A at once; A's rounds split on node 1. B, with a node down, polls meanwhile.
	time.Sleep(time.Second)
	to := time.Now()
	heldBack.Store(false)
	if err := <-released; err != nil {
		t.Fatalf("holder Release(2): %v", err)
	}
	for _, want := range []string{"A", "B"} {
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
	var retries, splits int
	for _, sp := range rec.Ended() {
		if sp.Name() != "semaphore.Acquire" {
			continue
		}
		for _, e := range sp.Events() {
			if e.Name != "retry" || e.Time.Before(from) || e.Time.After(to) {
				continue
			}
			retries++
			for _, kv := range e.Attributes {
				if kv.Key == tracing.RetryReasonKey && kv.Value == attribute.StringValue("split vote") {
					splits++
				}
			}
		}
	}
	if retries == 0 {
		t.Fatalf("B made no round while the release was held back; the test needs it to poll (node 2 down)")
	}
	if splits != 0 {
		t.Errorf("B's rounds while the release was held back: %d of %d split; want none (A's undo passed B the permits on node 0)", splits, retries)
	}
}
