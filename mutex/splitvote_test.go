package mutex_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/tracing"
)

// A waiter granted by too few nodes keeps its place where it gives the grant back. With node 2
// down, the holder's release reaches node 0 but is held back on its way to node 1: node 0 serves
// the first waiter, A, whose rounds then find node 1 still held (split votes). A's undo must not
// hand node 0 to B, the waiter behind it: B would then be granted there and split in turn, and
// with the two nodes serving different waiters, A and B could trade places round after round (a
// chaos run saw two waiters make 640 rounds in 2.5s). So none of B's rounds splits while the
// release is held back, and A, then B, acquire once it lands.
func TestASplitVoteKeepsTheWaitersPlace(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q, heldBack := quorumWithHeldBackNode(t, nodes, 1)
	holder := mutex.New(q, "place")
	if err := holder.Lock(context.Background()); err != nil {
		t.Fatalf("holder Lock: %v", err)
	}
	a := mutex.New(newQuorum(t, nodes), "place")
	r := newOtelRecorder(t)
	b := mutex.New(r.quorum(t, nodes), "place")
	looker := newQuorum(t, nodes)
	nodes[2].Kill() // (after the quorums' start-up checks, which would wait for it)
	locked := make(chan string, 2)
	lockAndRecord := func(m *mutex.Mutex, who string) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.Lock(ctx); err != nil {
			t.Errorf("%s Lock: %v", who, err)
			locked <- who + " failed"
			return
		}
		locked <- who
		if err := m.Unlock(context.Background()); err != nil {
			t.Errorf("%s Unlock: %v", who, err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { lockAndRecord(a, "A") })
	waitForWaiters(t, looker, "place", 1)
	wg.Go(func() { lockAndRecord(b, "B") })
	waitForWaiters(t, looker, "place", 2)

	heldBack.Store(true)
	from := time.Now()
	unlocked := make(chan error, 1)
	go func() { unlocked <- holder.Unlock(context.Background()) }()
	// Node 0 serves A at once; A's rounds split on node 1. B, on a node down, polls meanwhile.
	time.Sleep(time.Second)
	to := time.Now()
	heldBack.Store(false)
	if err := <-unlocked; err != nil {
		t.Fatalf("holder Unlock: %v", err)
	}
	for _, want := range []string{"A", "B"} {
		select {
		case got := <-locked:
			if got != want {
				t.Fatalf("locked: got %s; want %s (in arrival order)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not lock within 10s of the holder's release", want)
		}
	}
	wg.Wait()
	s := r.span(t, "mutex.Lock")
	var retries, splits int
	for _, e := range s.Events() {
		if e.Name != "retry" || e.Time.Before(from) || e.Time.After(to) {
			continue
		}
		retries++
		if attrMap(e.Attributes)[tracing.RetryReasonKey] == "split vote" {
			splits++
		}
	}
	if retries == 0 {
		t.Fatalf("B made no round while the release was held back; the test needs it to poll (node 2 down)")
	}
	if splits != 0 {
		t.Errorf("B's rounds while the release was held back: %d of %d split; want none (A's undo handed B its place on node 0)", splits, retries)
	}
}

// quorumWithHeldBackNode returns a quorum of nodes whose requests to nodes[held] are held back
// while the flag is set (see redistest.HoldBack). Its node timeout is long enough for a held-back
// request to wait for the flag to clear.
func quorumWithHeldBackNode(t *testing.T, nodes []*redistest.Node, held int) (*lease.Quorum, *atomic.Bool) {
	t.Helper()
	clients := redistest.Clients(nodes)
	c, flag := redistest.HoldBack(t, nodes[held])
	clients[held] = c
	q, err := lease.NewQuorum(context.Background(), clients, lease.WithNodeTimeout(3*time.Second))
	if err != nil {
		t.Fatalf("NewQuorum: %v", err)
	}
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q, flag
}

// waitForWaiters waits until the servers have n waiters queued for name.
func waitForWaiters(t *testing.T, looker *lease.Quorum, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := looker.Inspect(context.Background(), name)
		if err == nil && len(st.Waiters) == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d waiters never showed queued for %q", n, name)
}
