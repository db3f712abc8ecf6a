package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// With a 10s TTL a waiter's fallback timer is about 5s (TTL/2), so an acquisition within 1s of
// the release can only come from the wake-up.
const wakeBound = time.Second

type acquired struct {
	l   *engine.Lease
	at  time.Time
	err error
}

func acquireAsync(q *engine.Quorum, name string) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		l, err := q.Acquire(context.Background(), name)
		ch <- acquired{l, time.Now(), err}
	}()
	return ch
}

// queued waits until n waiters are queued for name on node.
func queued(t *testing.T, node *redistest.Node, name string, n int64) {
	t.Helper()
	c := node.Client()
	require.Eventually(t, func() bool {
		return c.ZCard(context.Background(), "quorumsync:{"+name+"}:q").Val() == n
	}, 5*time.Second, 2*time.Millisecond, "want %d waiters queued for %q", n, name)
}

func numSub(node *redistest.Node, name string) int64 {
	c := node.Client()
	ch := "quorumsync:{" + name + "}:wake" + engine.ProcChannelForTest
	m := c.PubSubNumSub(context.Background(), ch).Val()
	return m[ch]
}

// subscribed waits until every node has the waiter's subscription, then lets the retry that the
// subscription confirmations trigger run out, so that what wakes the waiter next is the thing the
// test is about.
func subscribed(t *testing.T, nodes []*redistest.Node, name string) {
	t.Helper()
	for _, n := range nodes {
		require.Eventually(t, func() bool { return numSub(n, name) == 1 }, 5*time.Second, 2*time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
}

func TestWakeUpArrivesSoonAfterRelease(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			holder, waiterQ := newQuorum(t, nodes), newQuorum(t, nodes)
			h, err := holder.Acquire(context.Background(), "wake")
			require.NoError(t, err)
			got := acquireAsync(waiterQ, "wake")
			queued(t, nodes[0], "wake", 1)
			subscribed(t, nodes, "wake")

			released := time.Now()
			require.NoError(t, h.Release(context.Background()))
			a := <-got
			require.NoError(t, a.err)
			assert.Less(t, a.at.Sub(released), wakeBound, "waiter acquired %v after the release; its fallback is ~5s", a.at.Sub(released))
			require.NoError(t, a.l.Release(context.Background()))
		})
	}
}

func TestFallbackNoticesHolderThatDied(t *testing.T) {
	nodes := redistest.Start(t, 1)
	// The holder dies: its connections go, nothing renews or releases its key.
	clients := redistest.Clients(nodes)
	dead, err := engine.NewQuorum(context.Background(), clients, engine.WithTTL(time.Second))
	require.NoError(t, err)
	_, err = dead.Acquire(context.Background(), "died")
	require.NoError(t, err)
	for _, c := range clients {
		require.NoError(t, c.Close())
	}
	died := time.Now()
	defer dead.Close(context.Background())

	a := <-acquireAsync(newQuorum(t, nodes, engine.WithTTL(time.Second)), "died")
	require.NoError(t, a.err)
	assert.Less(t, a.at.Sub(died), time.Second+500*time.Millisecond, "expiry noticed %v after the holder died (TTL 1s)", a.at.Sub(died))
	require.NoError(t, a.l.Release(context.Background()))
}

func TestWaitersSurviveSubscriberConnectionKill(t *testing.T) {
	for _, releaseFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("release while disconnected=%v", releaseFirst), func(t *testing.T) {
			nodes := redistest.Start(t, 1)
			holder, waiterQ := newQuorum(t, nodes), newQuorum(t, nodes)
			h, err := holder.Acquire(context.Background(), "kill")
			require.NoError(t, err)
			got := acquireAsync(waiterQ, "kill")
			queued(t, nodes[0], "kill", 1)
			require.Eventually(t, func() bool { return numSub(nodes[0], "kill") == 1 }, 5*time.Second, 2*time.Millisecond)

			killed, err := nodes[0].Client().ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, killed, "pub/sub connections killed")
			if !releaseFirst {
				// Let the subscriber reconnect and re-subscribe before the release: then only the
				// release's message can wake the waiter. Otherwise it is the reconnection's
				// wake-up that must do it.
				subscribed(t, nodes, "kill")
			}
			released := time.Now()
			require.NoError(t, h.Release(context.Background()))
			a := <-got
			require.NoError(t, a.err)
			assert.Less(t, a.at.Sub(released), wakeBound, "acquired %v after the release", a.at.Sub(released))
			require.NoError(t, a.l.Release(context.Background()))
		})
	}
}

func TestSubscriptionsAreReferenceCounted(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder, waiterQ := newQuorum(t, nodes), newQuorum(t, nodes)
	names := []string{"rc1", "rc2", "rc3"}
	var held []*engine.Lease
	var waits []<-chan acquired
	for _, name := range names {
		h, err := holder.Acquire(context.Background(), name)
		require.NoError(t, err)
		held = append(held, h)
		waits = append(waits, acquireAsync(waiterQ, name))
		queued(t, nodes[0], name, 1)
	}
	for _, name := range names {
		require.Eventually(t, func() bool { return numSub(nodes[0], name) == 1 }, 5*time.Second, 2*time.Millisecond, "channel of %s subscribed once", name)
	}
	for i := range names {
		require.NoError(t, held[i].Release(context.Background()))
		a := <-waits[i]
		require.NoError(t, a.err)
		require.NoError(t, a.l.Release(context.Background()))
	}
	// The last waiter of each name has left: after the linger, nothing is subscribed.
	for _, name := range names {
		require.Eventually(t, func() bool { return numSub(nodes[0], name) == 0 }, 3*time.Second, 10*time.Millisecond, "channel of %s still subscribed", name)
	}
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestOneSubscriberConnectionPerNodeWhateverTheNames(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holder, waiterQ := newQuorum(t, nodes), newQuorum(t, nodes)
	const names = 20
	var held []*engine.Lease
	var waits []<-chan acquired
	for i := 0; i < names; i++ {
		name := fmt.Sprintf("many%d", i)
		h, err := holder.Acquire(context.Background(), name)
		require.NoError(t, err)
		held = append(held, h)
		waits = append(waits, acquireAsync(waiterQ, name))
	}
	for i := 0; i < names; i++ {
		queued(t, nodes[0], fmt.Sprintf("many%d", i), 1)
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			c := n.Client()
			chans := c.PubSubChannels(context.Background(), "quorumsync:*").Val()
			return len(chans) == names
		}, 5*time.Second, 5*time.Millisecond, "all %d channels subscribed on %s", names, n.Addr())
		kinds, err := n.Client().ClientList(context.Background()).Result()
		require.NoError(t, err)
		subscribers := 0
		for _, line := range strings.Split(kinds, "\n") {
			if strings.Contains(line, " sub=") && !strings.Contains(line, " sub=0 ") {
				subscribers++
			}
		}
		assert.Equal(t, 1, subscribers, "pub/sub connections on %s for %d waiting names", n.Addr(), names)
	}
	for i := range held {
		require.NoError(t, held[i].Release(context.Background()))
		a := <-waits[i]
		require.NoError(t, a.err)
		require.NoError(t, a.l.Release(context.Background()))
	}
}

func TestQueueServesProcessesInArrivalOrder(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holder := newQuorum(t, nodes)
	h, err := holder.Acquire(context.Background(), "fifo")
	require.NoError(t, err)

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		q := newQuorum(t, nodes) // a process each
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := q.Acquire(context.Background(), "fifo")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			assert.NoError(t, l.Release(context.Background()))
		}()
		queued(t, nodes[0], "fifo", int64(i+1))
		// Arrival scores have millisecond resolution: keep arrivals apart.
		time.Sleep(3 * time.Millisecond)
	}
	require.NoError(t, h.Release(context.Background()))
	wg.Wait()
	assert.Equal(t, []int{0, 1, 2, 3}, order, "order of acquisition; want order of arrival")
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestWaiterThatGivesUpLeavesTheQueue(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder := newQuorum(t, nodes)
	h, err := holder.Acquire(context.Background(), "leave")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := newQuorum(t, nodes).Acquire(ctx, "leave")
		gaveUp <- err
	}()
	queued(t, nodes[0], "leave", 1)
	second := acquireAsync(newQuorum(t, nodes), "leave")
	queued(t, nodes[0], "leave", 2)

	cancel()
	require.ErrorIs(t, <-gaveUp, engine.ErrNotAcquired)
	queued(t, nodes[0], "leave", 1)

	released := time.Now()
	require.NoError(t, h.Release(context.Background()))
	a := <-second
	require.NoError(t, a.err)
	assert.Less(t, a.at.Sub(released), wakeBound, "the waiter behind one that left was not woken promptly")
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// A waiter whose process crashed stays in the queue until its liveness (one TTL) runs out, and
// holds up the lock for no longer than that.
func TestCrashedWaiterHoldsUpQueueAtMostOneTTL(t *testing.T) {
	nodes := redistest.Start(t, 1)
	c := nodes[0].Client()
	ctx := context.Background()
	ttl := time.Second
	// The ghost arrived first and was alive a moment ago, when the holder released and reserved
	// the lock for it (as release.lua does: the reservation lasts as long as the ghost's liveness).
	now := time.Now()
	require.NoError(t, c.ZAdd(ctx, "quorumsync:{ghost}:q", redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: "ghost"}).Err())
	require.NoError(t, c.HSet(ctx, "quorumsync:{ghost}:qlive", "ghost", now.Add(ttl).UnixMilli()).Err())
	require.NoError(t, c.Set(ctx, "quorumsync:{ghost}", "r:ghost", ttl).Err())

	q := newQuorum(t, nodes, engine.WithTTL(ttl))
	_, err := q.TryAcquire(ctx, "ghost")
	require.ErrorIs(t, err, engine.ErrNotAcquired, "a try must not jump the queue")

	a := <-acquireAsync(q, "ghost")
	require.NoError(t, a.err)
	assert.Less(t, a.at.Sub(now), ttl+500*time.Millisecond, "held up %v by a crashed waiter (liveness %v)", a.at.Sub(now), ttl)
	require.NoError(t, a.l.Release(ctx))
	redistest.RequireNoKeys(t, nodes, "*")
}

// In a plain contended loop — 32 goroutines over 4 clients, no hold time — every goroutine gets
// the lock, and the most served gets it at most 3 times as often as the least served.
func TestContendedLoopIsFair(t *testing.T) {
	nodes := redistest.Start(t, 1)
	var qs []*engine.Quorum
	for i := 0; i < 4; i++ {
		qs = append(qs, newQuorum(t, nodes))
	}
	const goroutines = 32
	counts := make([]int, goroutines)
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				l, err := qs[g%len(qs)].Acquire(context.Background(), "fair")
				if !assert.NoError(t, err) {
					return
				}
				counts[g]++
				if !assert.NoError(t, l.Release(context.Background())) {
					return
				}
			}
		}()
	}
	wg.Wait()
	least, most := counts[0], counts[0]
	for _, c := range counts {
		least, most = min(least, c), max(most, c)
	}
	require.Positive(t, least, "a goroutine starved; counts %v", counts)
	assert.LessOrEqual(t, float64(most)/float64(least), 3.0, "most/least acquisitions; counts %v", counts)
	t.Logf("acquisitions per goroutine: %v", counts)
}

// Waiters with different TTLs share a name's queue: one with a short TTL that joins after one
// with a long TTL must not shorten the queue's life under it. The long waiter stays queued after
// the short one gives up, and the release wakes it.
func TestAShortTTLWaiterDoesNotShortenTheQueueForALongOne(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder, err := newQuorum(t, nodes).Acquire(context.Background(), "ttls")
	require.NoError(t, err)

	long := make(chan *engine.Lease, 1)
	go func() {
		l, err := newQuorum(t, nodes).Acquire(context.Background(), "ttls", engine.TTL(20*time.Second))
		if assert.NoError(t, err) {
			long <- l
		}
	}()
	c := nodes[0].Client()
	defer c.Close()
	queued := func(n int64) func() bool {
		return func() bool { return c.ZCard(context.Background(), "quorumsync:{ttls}:q").Val() == n }
	}
	require.Eventually(t, queued(1), 5*time.Second, 5*time.Millisecond, "the long waiter queued")

	sctx, giveUp := context.WithCancel(context.Background())
	short := make(chan error, 1)
	go func() {
		q := newQuorum(t, nodes, engine.WithNodeTimeout(20*time.Millisecond))
		_, err := q.Acquire(sctx, "ttls", engine.TTL(300*time.Millisecond))
		short <- err
	}()
	require.Eventually(t, queued(2), 5*time.Second, 5*time.Millisecond, "the short waiter queued")
	giveUp()
	require.ErrorIs(t, <-short, context.Canceled)

	// Past the short waiter's whole life in the queue (2 × its TTL), with margin.
	time.Sleep(time.Second)
	assert.Greater(t, c.PTTL(context.Background(), "quorumsync:{ttls}:q").Val(), 30*time.Second, "the queue's TTL came down to the short waiter's")
	require.True(t, queued(1)(), "the long waiter is still queued")
	released := time.Now()
	require.NoError(t, holder.Release(context.Background()))
	select {
	case l := <-long:
		assert.Less(t, time.Since(released), 2*time.Second, "the release woke the long waiter")
		require.NoError(t, l.Release(context.Background()))
	case <-time.After(15 * time.Second):
		t.Fatal("the long waiter never got the name")
	}
}
