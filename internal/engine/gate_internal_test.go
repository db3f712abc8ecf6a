package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// A waiter that gives up at the moment its holder passes it the lease releases what it was handed
// and leaves the gate's reference count as it found it: the gate is dropped exactly once, so it
// cannot go back to the pool while in use and be shared by two names.
func TestAWaiterHandedALeaseAsItGivesUpDropsTheGateOnce(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	q, err := NewQuorum(ctx, redistest.Clients(nodes), WithHandoff(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(ctx)

	holder, err := q.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	key := keysFor(q.cfg.prefix, Exclusive, "a")[keyQueue]
	q.gmu.Lock()
	g := q.gates[key]
	q.gmu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	passed := make(chan struct{})
	testHookGaveUp = func() {
		testHookGaveUp = nil
		// The holder releases as the waiter gives up: the lease is passed to the waiter.
		if err := holder.Release(ctx); err != nil {
			t.Errorf("holder's release: %v", err)
		}
		close(passed)
	}
	defer func() { testHookGaveUp = nil }()
	done := make(chan error, 1)
	go func() {
		_, err := q.Acquire(wctx, "a")
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		n := len(g.waiters)
		g.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued at the gate")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter's acquire: %v; want context.Canceled", err)
	}
	<-passed
	if holder.passed.Load() == nil {
		t.Fatal("the holder's release did not pass the lease: the test did not reach the race")
	}
	q.gmu.Lock()
	refs, left := g.refs, len(q.gates)
	q.gmu.Unlock()
	if refs != 0 || left != 0 {
		t.Fatalf("gate refs %d, gates kept %d; want 0 and 0", refs, left)
	}
	redistest.RequireNoKeys(t, nodes, "*")
}
