package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// The direct grant (N = 1): a release hands the lock to the waiter first in line and its wake-up
// carries the grant, so the waiter holds with no request of its own — while the grant's validity,
// counted from the request that queued the waiter, allows; otherwise the waiter asks the server.

// evalCalls returns how many scripts node has run (EVALSHA and EVAL), from INFO commandstats.
func evalCalls(t *testing.T, node *redistest.Node) int64 {
	t.Helper()
	c := node.Client()
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	var n int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(line[strings.IndexByte(line, ':')+1:], "calls="), ",")
		v, err := strconv.ParseInt(calls, 10, 64)
		require.NoError(t, err, line)
		n += v
	}
	return n
}

func TestDirectGrantNeedsNoRequestFromTheWaiter(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder, waiterQ := newQuorum(t, nodes), newQuorum(t, nodes)
	h, err := holder.Acquire(context.Background(), "direct")
	require.NoError(t, err)
	got := acquireAsync(waiterQ, "direct")
	queued(t, nodes[0], "direct", 1)
	subscribed(t, nodes, "direct")

	before := evalCalls(t, nodes[0])
	require.NoError(t, h.Release(context.Background()))
	a := <-got
	require.NoError(t, a.err)
	// The holder's release is the only script run: the waiter held on the strength of its wake-up.
	assert.Equal(t, int64(1), evalCalls(t, nodes[0])-before, "scripts run between the release and the waiter's acquisition")
	assert.Equal(t, []string{a.l.Token()}, holders(t, nodes, "quorumsync:{direct}"))
	// The grant lasts until the waiter's liveness ends (its queueing request's execution + TTL, at
	// least 200ms before the release), not a whole TTL past the release: a waiter that crashed
	// holds the name up no longer than a reservation would.
	pttl, err := nodes[0].Client().PTTL(context.Background(), "quorumsync:{direct}").Result()
	require.NoError(t, err)
	assert.Less(t, pttl, 10*time.Second-200*time.Millisecond, "the key's TTL after the grant")
	// Its validity counts from the request that queued it, at least 200ms before the release.
	left := time.Until(a.l.Until())
	assert.Less(t, left, 10*time.Second-200*time.Millisecond)
	assert.Greater(t, left, 10*time.Second/4)
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestDirectGrantKeepsFencingTokensIncreasing(t *testing.T) {
	nodes := redistest.Start(t, 1)
	qs := []*engine.Quorum{newQuorum(t, nodes), newQuorum(t, nodes)}
	req := func() *engine.Request {
		return &engine.Request{Kind: engine.Exclusive, Name: "fenced", Wait: true, Fencing: true}
	}
	l, err := qs[0].Claim(context.Background(), req())
	require.NoError(t, err)
	last, err := l.Fence()
	require.NoError(t, err)
	for i := 1; i <= 6; i++ {
		next := make(chan acquired, 1)
		go func() {
			nl, err := qs[i%2].Claim(context.Background(), req())
			next <- acquired{l: nl, err: err}
		}()
		queued(t, nodes[0], "fenced", 1)
		subscribed(t, nodes, "fenced")
		before := evalCalls(t, nodes[0])
		require.NoError(t, l.Release(context.Background()))
		a := <-next
		require.NoError(t, a.err)
		assert.Equal(t, int64(1), evalCalls(t, nodes[0])-before, "handoff %d took a request of the waiter's", i)
		f, err := a.l.Fence()
		require.NoError(t, err)
		assert.Greater(t, f, last, "handoff %d: the fencing token must increase", i)
		counter, err := nodes[0].Client().Get(context.Background(), "quorumsync:{fenced}:fence").Uint64()
		require.NoError(t, err)
		assert.Equal(t, counter, f, "handoff %d: the token is the counter the grant set", i)
		l, last = a.l, f
	}
	require.NoError(t, l.Release(context.Background()))
}

// A waiter paused between its last request and the wake-up, past the grant's whole TTL: another
// client takes the lock meanwhile, and the waiter, woken late, must not think it holds.
func TestDirectGrantIgnoredWhenTheWaiterWakesPastItsTTL(t *testing.T) {
	nodes := redistest.Start(t, 1)
	const ttl = 2 * time.Second
	holder, waiterQ, third := newQuorum(t, nodes, engine.WithTTL(ttl)), newQuorum(t, nodes, engine.WithTTL(ttl)), newQuorum(t, nodes, engine.WithTTL(ttl))
	pause, resume := make(chan struct{}), make(chan struct{})
	var armed, paused atomic.Bool // armed: the wake-ups of the subscription are over
	engine.SetWokenForTest(waiterQ, func() bool {
		if armed.Load() && paused.CompareAndSwap(false, true) {
			close(pause)
			<-resume
		}
		return true
	})
	h, err := holder.Acquire(context.Background(), "paused")
	require.NoError(t, err)
	got := acquireAsync(waiterQ, "paused")
	queued(t, nodes[0], "paused", 1)
	subscribed(t, nodes, "paused")
	armed.Store(true)
	require.NoError(t, h.Release(context.Background())) // grants the waiter, which is paused on waking
	<-pause
	// The grant runs out on the server; a third client takes the free lock.
	require.Eventually(t, func() bool { return nodes[0].Client().Exists(context.Background(), "quorumsync:{paused}").Val() == 0 },
		3*ttl, 10*time.Millisecond)
	other, err := third.TryAcquire(context.Background(), "paused")
	require.NoError(t, err)
	close(resume)
	select {
	case a := <-got:
		t.Fatalf("the waiter acquired (err %v) while another client holds the lock: it took a grant that had run out", a.err)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, other.Release(context.Background()))
	a := <-got
	require.NoError(t, a.err)
	assert.Equal(t, []string{a.l.Token()}, holders(t, nodes, "quorumsync:{paused}"))
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// A wake-up delayed until less than TTL/4 of the grant's sure validity is left: the waiter asks
// the server, which finds the lock the waiter's and renews it, so it holds with a fresh validity.
func TestDirectGrantReverifiedWhenTheWakeUpIsLate(t *testing.T) {
	nodes := redistest.Start(t, 1)
	const ttl = 2 * time.Second
	holder, waiterQ := newQuorum(t, nodes, engine.WithTTL(ttl)), newQuorum(t, nodes, engine.WithTTL(ttl))
	var armed, delayed atomic.Bool
	engine.SetWokenForTest(waiterQ, func() bool {
		if armed.Load() && delayed.CompareAndSwap(false, true) {
			time.Sleep(ttl * 3 / 4) // the grant is still on the server, but its sure validity is short
		}
		return true
	})
	h, err := holder.Acquire(context.Background(), "late")
	require.NoError(t, err)
	got := acquireAsync(waiterQ, "late")
	queued(t, nodes[0], "late", 1)
	subscribed(t, nodes, "late")
	armed.Store(true)
	before := evalCalls(t, nodes[0])
	require.NoError(t, h.Release(context.Background()))
	a := <-got
	require.NoError(t, a.err)
	assert.Greater(t, evalCalls(t, nodes[0])-before, int64(1), "the waiter must have asked the server")
	assert.Greater(t, time.Until(a.l.Until()), ttl/2, "a re-verified grant's validity counts from the new request")
	assert.Equal(t, []string{a.l.Token()}, holders(t, nodes, "quorumsync:{late}"))
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// A lost wake-up: the waiter's timer, bounded by the holder's remaining TTL, brings it back, and
// the server finds the grant already its own.
func TestDirectGrantWithALostWakeUp(t *testing.T) {
	nodes := redistest.Start(t, 1)
	const ttl = 2 * time.Second
	holder, waiterQ := newQuorum(t, nodes, engine.WithTTL(ttl)), newQuorum(t, nodes, engine.WithTTL(ttl))
	var lost atomic.Int32
	engine.SetWokenForTest(waiterQ, func() bool {
		lost.Add(1)
		return false // every wake-up is lost
	})
	h, err := holder.Acquire(context.Background(), "lost")
	require.NoError(t, err)
	got := acquireAsync(waiterQ, "lost")
	queued(t, nodes[0], "lost", 1)
	released := time.Now()
	require.NoError(t, h.Release(context.Background()))
	a := <-got
	require.NoError(t, a.err)
	assert.Positive(t, lost.Load(), "no wake-up reached the waiter")
	// The waiter slept at most TTL/2 at a time; the lock was its own all along.
	assert.Less(t, time.Since(released), ttl, "the waiter came back by its timer")
	assert.Greater(t, time.Until(a.l.Until()), ttl/2)
	assert.Equal(t, []string{a.l.Token()}, holders(t, nodes, "quorumsync:{lost}"))
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// A waiter that gives up after the release granted it the lock, before it heard: its leave gives
// the lock up, and the next waiter gets it.
func TestDirectGrantGivenUpPassesOn(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder, waiterQ, lastQ := newQuorum(t, nodes), newQuorum(t, nodes), newQuorum(t, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	var armed atomic.Bool
	engine.SetWokenForTest(waiterQ, func() bool {
		if !armed.Load() {
			return true
		}
		cancel() // the caller gives up just as the grant arrives
		return false
	})
	h, err := holder.Acquire(context.Background(), "giveup")
	require.NoError(t, err)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := waiterQ.Acquire(ctx, "giveup")
		gaveUp <- err
	}()
	queued(t, nodes[0], "giveup", 1)
	last := acquireAsync(lastQ, "giveup")
	queued(t, nodes[0], "giveup", 2)
	require.Eventually(t, func() bool { return numSub(nodes[0], "giveup") == 2 }, 5*time.Second, 2*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // the subscriptions' wake-ups are over
	armed.Store(true)
	require.NoError(t, h.Release(context.Background()))
	require.ErrorIs(t, <-gaveUp, context.Canceled)
	a := <-last
	require.NoError(t, a.err)
	assert.Equal(t, []string{a.l.Token()}, holders(t, nodes, "quorumsync:{giveup}"))
	require.NoError(t, a.l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// loseReply is a client hook that, once armed, lets the next script run on the server, then calls
// between (while the reply is on its way) and makes the caller see a failed call instead of the
// reply.
type loseReply struct {
	armed   *atomic.Bool
	between func()
}

func (h loseReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h loseReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h loseReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "evalsha" && h.armed.CompareAndSwap(true, false) {
			h.between()
			cmd.SetErr(errors.New("read: i/o timeout (the reply was lost)"))
			return cmd.Err()
		}
		return err
	}
}

// The request that queued a waiter ran, but its reply was lost; the holder's release granted the
// waiter meanwhile. The failed round undoes the request — which releases the grant — so the
// wake-up that names that request must not be taken for a grant (an outside review found this
// double grant: the waiter held with the key gone, and a third client got it too).
func TestDirectGrantUndoneByItsRoundIsNotTaken(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder, third := newQuorum(t, nodes), newQuorum(t, nodes)
	h, err := holder.Acquire(context.Background(), "undone")
	require.NoError(t, err)
	c := nodes[0].Client()
	var armed atomic.Bool
	armed.Store(true) // the waiter's first script is the one that queues it (its SET NX is no script)
	c.AddHook(loseReply{armed: &armed, between: func() {
		assert.NoError(t, h.Release(context.Background()))
		time.Sleep(50 * time.Millisecond) // the wake-up reaches the waiter's subscriber
	}})
	waiterQ, err := engine.NewQuorum(context.Background(), []redis.UniversalClient{c})
	require.NoError(t, err)
	t.Cleanup(func() { _ = waiterQ.Close(context.Background()) })

	l, err := waiterQ.Acquire(context.Background(), "undone")
	require.NoError(t, err)
	assert.False(t, armed.Load(), "the hook never ran")
	assert.Equal(t, []string{l.Token()}, holders(t, nodes, "quorumsync:{undone}"), "the waiter holds, so the server must say so")
	_, err = third.TryAcquire(context.Background(), "undone")
	require.ErrorIs(t, err, engine.ErrNotAcquired, "a third client got the lock the waiter holds")
	require.NoError(t, l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}
