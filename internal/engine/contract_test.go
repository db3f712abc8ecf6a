package engine_test

// The engine's contract where it is hardest to keep: a max hold time below the TTL, slow loss
// handlers, hung nodes, Close racing everything, nil ctxs, odd names, refused connections.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// syncBuffer is a log sink written from many goroutines.
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

// noKeysWithin waits until no node holds a key matching pattern, and fails if that takes longer
// than d.
func noKeysWithin(t *testing.T, nodes []*redistest.Node, pattern string, d time.Duration, why string) {
	t.Helper()
	var left []string
	ok := assert.Eventually(t, func() bool {
		left = left[:0]
		for _, n := range nodes {
			keys, err := n.Keys(context.Background())
			if err != nil {
				return false
			}
			for _, k := range keys {
				if strings.HasPrefix(k, strings.TrimSuffix(pattern, "*")) {
					left = append(left, k)
				}
			}
		}
		return len(left) == 0
	}, d, 10*time.Millisecond)
	if !ok {
		t.Errorf("%s: keys still there after %v: %q", why, d, left)
	}
}

// With a max hold time below the TTL, the capped renewal shortens the keys on the servers; Until
// must come down with it, or another process gets the lock while Done is still open.
func TestMaxHoldBelowTTLNeverLetsASecondHolderIn(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder := newQuorum(t, nodes, engine.WithTTL(time.Second), engine.WithMaxHold(600*time.Millisecond))
	other := newQuorum(t, nodes, engine.WithTTL(time.Second))
	start := time.Now()
	l, err := holder.Acquire(context.Background(), "capped")
	require.NoError(t, err)
	var got *engine.Lease
	for got == nil {
		require.Less(t, time.Since(start), 3*time.Second, "the other process never got the lock")
		if lo, err := other.TryAcquire(context.Background(), "capped"); err == nil {
			got = lo
		}
		time.Sleep(time.Millisecond)
	}
	at := time.Now()
	select {
	case <-l.Done():
	default:
		t.Fatalf("the other process got the lock %v after the acquire while the capped lease's Done was open (Until %v ahead)",
			at.Sub(start), l.Until().Sub(at))
	}
	assert.False(t, l.Until().After(at), "capped lease valid %v past the other's acquire", l.Until().Sub(at))
	assert.ErrorIs(t, l.Err(), watchdog.ErrMaxHold)
	assert.Less(t, at.Sub(start), 900*time.Millisecond, "the servers let the name go only after %v (max hold 600ms)", at.Sub(start))
	require.NoError(t, got.Release(context.Background()))
}

// A max hold at or below TTL/3 (before the first renewal) is honoured too: the first grant is
// already short.
func TestMaxHoldBelowAThirdOfTTLIsHonoured(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(3*time.Second), engine.WithMaxHold(300*time.Millisecond))
	start := time.Now()
	l, err := q.Acquire(context.Background(), "short")
	require.NoError(t, err)
	assert.False(t, l.Until().After(start.Add(300*time.Millisecond)), "Until %v after the acquire, past the 300ms cap", l.Until().Sub(start))
	pttl := nodes[0].Client().PTTL(context.Background(), "quorumsync:{short}").Val()
	assert.LessOrEqual(t, pttl, 300*time.Millisecond, "the key lives %v on the server, past the cap", pttl)
	select {
	case <-l.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a lease capped at 300ms still held after 2s (TTL 3s)")
	}
	assert.ErrorIs(t, l.Err(), watchdog.ErrMaxHold)
}

// A slow OnLost (a handler, an exporter) runs on the quorum's notifier: Done still closes at
// Until, and the other leases of the quorum keep being renewed.
func TestSlowLossHandlerDelaysNeitherDoneNorOtherRenewals(t *testing.T) {
	nodes := redistest.Start(t, 2)
	// Two single-node quorums would not share a watchdog; one quorum of... N=1 over the first
	// node for the victim and the bystander alike, so the same watchdog serves both.
	q := newQuorum(t, nodes[:1], engine.WithTTL(300*time.Millisecond), engine.WithNodeTimeout(20*time.Millisecond))
	release := make(chan struct{})
	defer close(release)
	handlerIn := make(chan struct{}, 1)
	victim, err := q.Acquire(context.Background(), "victim", engine.OnLost(func(error) {
		handlerIn <- struct{}{}
		<-release // a handler that hangs
	}))
	require.NoError(t, err)
	bystander, err := q.Acquire(context.Background(), "bystander")
	require.NoError(t, err)
	// The victim's key is taken over: its next renewal finds it gone and loses it at once.
	require.NoError(t, nodes[0].Client().Set(context.Background(), "quorumsync:{victim}", "intruder", time.Minute).Err())
	select {
	case <-victim.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed 1s after the key was taken (TTL 300ms)")
	}
	select {
	case <-handlerIn:
	case <-time.After(time.Second):
		t.Fatal("OnLost not called")
	}
	// The handler hangs; the bystander lives on for many TTLs.
	time.Sleep(time.Second)
	require.NoError(t, bystander.Err(), "another lease of the quorum was lost while a loss handler hung")
	require.NoError(t, bystander.Release(context.Background()))

	// Close honours its ctx while the handler hangs (the notifier exits once the handler returns).
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, q.Close(ctx), context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "Close with a 200ms ctx waited for a hung loss handler")
}

// A loss handler may close the quorum.
func TestLossHandlerMayCloseTheQuorum(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes), engine.WithTTL(300*time.Millisecond))
	require.NoError(t, err)
	closed := make(chan error, 1)
	l, err := q.Acquire(context.Background(), "closer", engine.OnLost(func(error) { closed <- q.Close(context.Background()) }))
	require.NoError(t, err)
	require.NoError(t, nodes[0].Client().Set(context.Background(), "quorumsync:{closer}", "intruder", time.Minute).Err())
	<-l.Done()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(3 * time.Second):
		t.Fatal("Close called from a loss handler did not return (deadlock)")
	}
	_, err = q.Acquire(context.Background(), "closer")
	require.ErrorIs(t, err, engine.ErrClosed)
}

// warmQuorum returns a quorum whose clients each have a connection open and ready, so that the
// next request goes out at once on it: stopping the node then hangs it mid-request, with the
// request in its socket buffer, rather than before a connection handshake.
func warmQuorum(t *testing.T, nodes []*redistest.Node, opts ...engine.Option) *engine.Quorum {
	t.Helper()
	clients := redistest.Clients(nodes)
	q, err := engine.NewQuorum(context.Background(), clients, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	for _, c := range clients {
		require.NoError(t, c.Ping(context.Background()).Err())
	}
	return q
}

// A node that hangs mid-request still executes the request when it wakes. The undo of that same
// round must reach it then: a cancelled Lock leaves nothing behind, long before the TTL.
func TestCancelledAcquireBehindHungNodeLeavesNothingOnceItAnswers(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := warmQuorum(t, nodes, engine.WithTTL(10*time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[0].Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := q.Acquire(ctx, "hung")
	nodes[0].Continue()
	require.ErrorIs(t, err, engine.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The request the node got while stopped runs now; the undo follows once it answers a ping.
	require.Eventually(t, func() bool { return engine.OwedForTest(q)[0] == 0 }, 3*time.Second, 10*time.Millisecond,
		"cleanups still owed 3s after the node answered again")
	noKeysWithin(t, nodes, "quorumsync:*", time.Second, "a cancelled acquire behind a hung node (TTL 10s)")
}

func TestTryAcquiresBehindHungNodeLeaveNothingOnceItAnswers(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := warmQuorum(t, nodes, engine.WithTTL(10*time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[0].Stop()
	for i := 0; i < 3; i++ {
		_, err := q.TryAcquire(context.Background(), "hung")
		require.ErrorIs(t, err, engine.ErrUnavailable)
	}
	nodes[0].Continue()
	noKeysWithin(t, nodes, "quorumsync:*", 2*time.Second, "try-acquires behind a hung node (TTL 10s)")
}

// TryAcquires keep running while the node is stopped and resumed under them.
func TestNodeStoppedWhileTryAcquiresRunLeavesNothing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(10*time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var held, failed atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("busy%d", g)
			for ctx.Err() == nil {
				l, err := q.TryAcquire(context.Background(), name)
				if err != nil {
					failed.Add(1)
					continue
				}
				held.Add(1)
				_ = l.Release(context.Background())
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	nodes[0].Stop()
	nodes[1].Stop()
	time.Sleep(300 * time.Millisecond)
	nodes[0].Continue()
	nodes[1].Continue()
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	require.Positive(t, held.Load())
	require.Positive(t, failed.Load(), "no attempt failed while a majority was stopped")
	noKeysWithin(t, nodes, "quorumsync:*", 3*time.Second, "try-acquires while a majority was stopped and resumed (TTL 10s)")
}

// Close ends blocked acquires and returns only once they have returned, and so left the servers'
// queues: after Close the caller may close its clients, and no release reserves a name for a dead
// waiter. Here one node hangs just before Close, so leaving its queue takes the per-node timeout.
func TestCloseWaitsForBlockedAcquiresToLeaveTheQueue(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holder := newQuorum(t, nodes)
	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes), engine.WithNodeTimeout(300*time.Millisecond))
	require.NoError(t, err)
	const names = 5
	errs := make(chan error, 2*names)
	for i := 0; i < names; i++ {
		name := fmt.Sprintf("closing%d", i)
		h, err := holder.Acquire(context.Background(), name)
		require.NoError(t, err)
		defer h.Release(context.Background())
		for range 2 { // the second waits at the local gate
			go func() {
				_, err := q.Acquire(context.Background(), name)
				errs <- err
			}()
		}
		for _, n := range nodes {
			queued(t, n, name, 1)
		}
	}
	nodes[0].Stop()
	defer nodes[0].Continue()
	require.NoError(t, q.Close(context.Background()))
	for i := 0; i < 2*names; i++ {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, engine.ErrClosed)
		default:
			t.Fatalf("Close returned while %d blocked acquires had not", 2*names-i)
		}
	}
	for i := 0; i < names; i++ {
		for _, n := range nodes[1:] {
			assert.Zero(t, n.Client().ZCard(context.Background(), fmt.Sprintf("quorumsync:{closing%d}:q", i)).Val(),
				"closing%d queued on %s after Close returned", i, n.Addr())
		}
	}
}

// Close honours its ctx: a hung node does not hold it up past the deadline.
func TestCloseHonoursItsCtx(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes), engine.WithTTL(10*time.Second), engine.WithNodeTimeout(time.Second))
	require.NoError(t, err)
	var held []*engine.Lease
	for i := 0; i < 5; i++ {
		l, err := q.Acquire(context.Background(), fmt.Sprintf("c%d", i))
		require.NoError(t, err)
		held = append(held, l)
	}
	nodes[0].Stop()
	defer nodes[0].Continue()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = q.Close(ctx)
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, took, 700*time.Millisecond, "Close with a 100ms ctx took %v with the node hung (node timeout 1s)", took)
	for _, l := range held {
		<-l.Done()
		assert.ErrorIs(t, l.Err(), engine.ErrClosed)
	}
}

// The documented exception to Close's ctx: a pub/sub connection in the middle of reconnecting
// (go-redis dials and handshakes under the lock its PubSub.Close takes) holds Close until the
// handshake times out, when the node accepts connections but never answers. Close still returns
// within the client's dial and read timeouts, with its goroutines stopped.
func TestCloseWaitsForAReconnectingSubscriberAtMostTheClientTimeouts(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	holder, err := engine.NewQuorum(ctx, redistest.Clients(nodes))
	require.NoError(t, err)
	t.Cleanup(func() { _ = holder.Close(ctx) }) // (a second Close returns ErrClosed)
	q, err := engine.NewQuorum(ctx, redistest.Clients(nodes), engine.WithNodeTimeout(time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(ctx) }) // ends the waiter if it never subscribed

	// A waiter opens q's pub/sub connection, which stays open after it gives up. The holder then
	// lets go and closes, so that nothing but that connection talks to the node.
	l, err := holder.Acquire(ctx, "reconnect")
	require.NoError(t, err)
	waitCtx, cancelWait := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := q.Acquire(waitCtx, "reconnect")
		got <- err
	}()
	require.Eventually(t, func() bool {
		return len(nodes[0].Client().PubSubChannels(ctx, "*").Val()) > 0
	}, 10*time.Second, 10*time.Millisecond, "the waiter never subscribed")
	cancelWait()
	require.ErrorIs(t, <-got, context.Canceled)
	require.NoError(t, l.Release(ctx))
	require.NoError(t, holder.Close(ctx))

	// The node dies and its port accepts connections that never get an answer: the subscriber
	// reconnects into a handshake that waits for the read timeout (2s in redistest's options).
	nodes[0].Kill()
	_, accepted := redistest.Silent(t, nodes[0].Addr())
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber did not reconnect")
	}

	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = q.Close(closeCtx)
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	opts := nodes[0].Options()
	t.Logf("Close with a 100ms ctx took %v", took)
	assert.Greater(t, took, opts.ReadTimeout/2, "Close did not wait for the reconnect: the doc's caveat is out of date")
	assert.Less(t, took, opts.DialTimeout+opts.ReadTimeout+time.Second, "Close outlasted the client's timeouts")
}

// Releases that race Close are the holders' business: Close does not report them.
func TestCloseDoesNotReportReleasesThatRacedIt(t *testing.T) {
	nodes := redistest.Start(t, 1)
	for round := 0; round < 3; round++ {
		q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes))
		require.NoError(t, err)
		var held []*engine.Lease
		for i := 0; i < 50; i++ {
			l, err := q.Acquire(context.Background(), fmt.Sprintf("race%d", i))
			require.NoError(t, err)
			held = append(held, l)
		}
		var wg sync.WaitGroup
		for _, l := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.Release(context.Background()); err != nil {
					assert.ErrorIs(t, err, engine.ErrClosed, "a release that lost the race to Close")
				}
			}()
		}
		require.NoError(t, q.Close(context.Background()), "round %d", round)
		wg.Wait()
	}
	redistest.RequireNoKeys(t, nodes, "*")
}

// A key without a TTL (left by another tool) holds the name for ever: a waiter backs off rather
// than polling every millisecond.
func TestKeyWithoutTTLIsPolledWithBackOff(t *testing.T) {
	nodes := redistest.Start(t, 1)
	c := nodes[0].Client()
	require.NoError(t, c.Set(context.Background(), "quorumsync:{foreign}", "not ours", 0).Err())
	q := newQuorum(t, nodes)
	require.NoError(t, c.ConfigResetStat(context.Background()).Err())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := q.Acquire(ctx, "foreign")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	stats := c.Info(context.Background(), "commandstats").Val()
	scripts := callsOf(stats, "evalsha") + callsOf(stats, "eval")
	assert.Less(t, scripts, 60, "scripts run in 1s against a key with no TTL")
	assert.Contains(t, err.Error(), `"foreign"`)
}

// callsOf reads a command's call count from INFO commandstats.
func callsOf(stats, cmd string) int {
	for _, line := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

// A nil ctx is an invalid argument everywhere, and changes nothing.
func TestNilCtxIsRefusedAndChangesNothing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	//lint:ignore SA1012 checking that a nil ctx is refused
	q, err := engine.NewQuorum(nil, redistest.Clients(nodes)) //nolint:staticcheck
	require.ErrorIs(t, err, engine.ErrInvalidArgument)
	require.Nil(t, q)

	q, err = engine.NewQuorum(context.Background(), redistest.Clients(nodes), engine.WithTTL(300*time.Millisecond))
	require.NoError(t, err)
	l, err := q.Acquire(context.Background(), "nilctx")
	require.NoError(t, err)
	//lint:ignore SA1012 checking that a nil ctx is refused
	require.ErrorIs(t, q.Close(nil), engine.ErrInvalidArgument) //nolint:staticcheck
	//lint:ignore SA1012 checking that a nil ctx is refused
	require.ErrorIs(t, l.Release(nil), engine.ErrInvalidArgument) //nolint:staticcheck
	time.Sleep(time.Second)                                       // three TTLs: still renewed
	require.NoError(t, l.Err())
	require.NoError(t, l.Release(context.Background()))
	require.NoError(t, q.Close(context.Background()))
}

// Every name works, on a plain node and on a Cluster: the engine escapes what would break the
// hash tag (a leading '}'), and everything else is binary-safe.
func TestOddNamesWork(t *testing.T) {
	names := []string{"}", "}abc", "{", "a{b}c", "{}", "~", "~x", " spaced name ", "new\nline", "ünïcödé", "*?[", strings.Repeat("x", 1000)}
	check := func(t *testing.T, newQ func() *engine.Quorum, all []*redistest.Node) {
		holder, waiterQ := newQ(), newQ()
		ctx := context.Background()
		for _, name := range names {
			l, err := holder.Acquire(ctx, name)
			require.NoError(t, err, "%q", name)
			_, err = waiterQ.TryAcquire(ctx, name)
			require.ErrorIs(t, err, engine.ErrNotAcquired, "%q", name)
			got := acquireAsync(waiterQ, name)
			time.Sleep(100 * time.Millisecond) // queued
			released := time.Now()
			require.NoError(t, l.Release(ctx), "%q", name)
			a := <-got
			require.NoError(t, a.err, "%q", name)
			assert.Less(t, a.at.Sub(released), wakeBound, "%q: waiter acquired %v after the release", name, a.at.Sub(released))
			require.NoError(t, a.l.Release(ctx), "%q", name)
		}
		redistest.RequireNoKeys(t, all, "quorumsync:*")
	}
	t.Run("node", func(t *testing.T) {
		nodes := redistest.Start(t, 1)
		check(t, func() *engine.Quorum { return newQuorum(t, nodes) }, nodes)
	})
	t.Run("cluster", func(t *testing.T) {
		masters := redistest.StartCluster(t, 3)
		check(t, func() *engine.Quorum {
			c := redis.NewClusterClient(redistest.ClusterOptions(masters))
			t.Cleanup(func() { _ = c.Close() })
			q, err := engine.NewQuorum(context.Background(), []redis.UniversalClient{c})
			require.NoError(t, err)
			t.Cleanup(func() { _ = q.Close(context.Background()) })
			return q
		}, masters)
	})
}

// A nil *Lease reads as a lease not held; nothing panics.
func TestNilLeaseIsSafe(t *testing.T) {
	var l *engine.Lease
	select {
	case <-l.Done():
	default:
		t.Fatal("Done of a nil lease is open")
	}
	assert.ErrorIs(t, l.Err(), engine.ErrNotHeld)
	assert.True(t, l.Until().IsZero())
	assert.Empty(t, l.Name())
	assert.Empty(t, l.Token())
	assert.Nil(t, l.Units())
	assert.Equal(t, engine.Holder{}, l.Holder())
	assert.ErrorIs(t, l.Release(context.Background()), engine.ErrNotHeld)
	l.Observe(context.Background())()
}

// A node's own timeout is not the caller's deadline: the error does not match
// context.DeadlineExceeded when the caller gave none.
func TestNodeTimeoutDoesNotReadAsCallerDeadline(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[1].Stop()
	nodes[2].Stop()
	defer nodes[1].Continue()
	defer nodes[2].Continue()
	_, err := q.TryAcquire(context.Background(), "nt")
	require.ErrorIs(t, err, engine.ErrUnavailable)
	require.ErrorIs(t, err, engine.ErrNodeTimeout)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "%v", err)
	var ne *engine.NodeError
	require.ErrorAs(t, err, &ne)
	assert.ErrorIs(t, ne, engine.ErrNodeTimeout)
	assert.NotContains(t, err.Error(), "\n", "one line")
	assert.Contains(t, err.Error(), `"nt"`)
}

// A refused connection at start-up is reported as refused, and later calls that skip the node say
// so too, rather than "deadline exceeded".
func TestRefusedNodeIsReportedAsRefused(t *testing.T) {
	nodes := redistest.Start(t, 2)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	down := redis.NewClient(&redis.Options{Addr: closedAddr, ContextTimeoutEnabled: true})
	defer down.Close()
	clients := append(redistest.Clients(nodes), down)
	var logs syncBuffer
	q, err := engine.NewQuorum(context.Background(), clients, engine.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	defer q.Close(context.Background())
	assert.Contains(t, logs.String(), "connection refused", "start-up log: %s", logs.String())
	assert.NotContains(t, logs.String(), "deadline exceeded", "start-up log: %s", logs.String())
	assert.Contains(t, logs.String(), "DialerRetries: 1", "the log says which options make a refusal fail fast")

	ld, err := q.TryAcquire(context.Background(), "refused")
	require.NoError(t, err, "two of three nodes answer")
	require.NoError(t, ld.Release(context.Background()))
	nodes[1].Kill()
	_, err = q.TryAcquire(context.Background(), "refused")
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), "deadline exceeded")
}

// Each lease records its holder in the value the servers store anyway: host, pid and when the
// acquisition began. The uncontended acquire is still one SET.
func TestHolderIsRecordedWithoutARoundTrip(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	c := nodes[0].Client()
	require.NoError(t, c.ConfigResetStat(context.Background()).Err())
	before := time.Now().Truncate(time.Millisecond)
	l, err := q.Acquire(context.Background(), "who")
	require.NoError(t, err)
	after := time.Now()
	stats := c.Info(context.Background(), "commandstats").Val()
	v, err := c.Get(context.Background(), "quorumsync:{who}").Result()
	require.NoError(t, err)
	token, h, ok := engine.ParseHolder(v)
	require.True(t, ok, "stored value %q is not a holder record", v)
	assert.Equal(t, l.Token(), token)
	host, _ := os.Hostname()
	assert.NotEmpty(t, h.Host)
	if host != "" && !strings.ContainsAny(host, ": ") {
		assert.Equal(t, host, h.Host)
	}
	assert.Equal(t, os.Getpid(), h.PID)
	assert.False(t, h.Since.Before(before) || h.Since.After(after), "since %v not within the acquire [%v, %v]", h.Since, before, after)
	assert.Equal(t, h, l.Holder())
	assert.Equal(t, 1, callsOf(stats, "set"), "commands: %s", stats)
	assert.Zero(t, callsOf(stats, "evalsha")+callsOf(stats, "eval")+callsOf(stats, "hset"), "commands: %s", stats)
	require.NoError(t, l.Release(context.Background()))
}

// A lease can have its own TTL; one quorum and one watchdog serve every TTL.
func TestLeaseTTLPerAcquire(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(10*time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	short, err := q.Acquire(context.Background(), "short", engine.TTL(300*time.Millisecond))
	require.NoError(t, err)
	long, err := q.Acquire(context.Background(), "long")
	require.NoError(t, err)
	c := nodes[0].Client()
	assert.LessOrEqual(t, c.PTTL(context.Background(), "quorumsync:{short}").Val(), 300*time.Millisecond)
	assert.Greater(t, c.PTTL(context.Background(), "quorumsync:{long}").Val(), 5*time.Second)
	time.Sleep(time.Second) // three short TTLs
	require.NoError(t, short.Err(), "the watchdog did not renew the short lease")
	require.NoError(t, short.Release(context.Background()))
	require.NoError(t, long.Release(context.Background()))

	_, err = q.Acquire(context.Background(), "bad", engine.TTL(time.Millisecond))
	var ae *engine.ArgumentError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "ttl", ae.Arg)
}

// Errors say what happened once, on one line, with the name.
func TestAcquireErrorsCarryTheNameAndTheLastAttemptsNodeErrors(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[0].Stop()
	nodes[2].Stop()
	defer nodes[0].Continue()
	defer nodes[2].Continue()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := q.Acquire(ctx, "outage")
	require.ErrorIs(t, err, engine.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne *engine.NodeError
	require.ErrorAs(t, err, &ne, "an outage must not look like contention: %v", err)
	msg := err.Error()
	assert.Contains(t, msg, `"outage"`)
	assert.Contains(t, msg, "last attempt")
	assert.Contains(t, msg, "node 0")
	assert.Contains(t, msg, "node 2")
	assert.NotContains(t, msg, "\n")
	assert.NotContains(t, msg, "%!")
	assert.True(t, strings.HasPrefix(msg, "lease: unavailable"), "%q", msg)
	assert.False(t, errors.Is(err, engine.ErrNotHeld))
}

// An acquire that retries through a node that refuses connections owes that node the undo of
// each failed round. When the node comes back (a restart, a Sentinel failover to a replica), a
// later round of the same acquire may be granted there; the undo still owed, sent with the same
// token afterwards, must not release that grant. (Found with a Sentinel failover: the next
// holder's lock vanished under it.)
func TestUndoOwedToARefusingNodeNeverReleasesALaterGrant(t *testing.T) {
	nodes := redistest.Start(t, 1)
	// A client that reports a refused dial at once (lease.Dial's settings), so the node does not
	// time out and is not skipped as hung.
	o := nodes[0].Options()
	o.DialerRetries = 1
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	q, err := engine.NewQuorum(context.Background(), []redis.UniversalClient{c}, engine.WithTTL(5*time.Second), engine.WithNodeTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	for i := range 3 {
		nodes[0].Kill()
		name := fmt.Sprintf("back-%d", i)
		got := make(chan error, 1)
		var l *engine.Lease
		go func() {
			var err error
			l, err = q.Acquire(context.Background(), name)
			got <- err
		}()
		time.Sleep(time.Second) // rounds fail: connection refused, undos owed
		nodes[0].RestartEmpty()
		require.NoError(t, <-got)
		time.Sleep(time.Second) // the probe pays what is owed, if it had not before the grant
		require.Eventually(t, func() bool { return engine.OwedForTest(q)[0] == 0 }, 3*time.Second, 10*time.Millisecond)
		v, err := nodes[0].Client().Get(context.Background(), "quorumsync:{"+name+"}").Result()
		require.NoError(t, err, "round %d: the lock key is still there", i)
		assert.Equal(t, l.Token(), v[:32], "round %d: and holds the grant's token", i)
		require.NoError(t, l.Release(context.Background()))
	}
}
