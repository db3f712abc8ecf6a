package engine_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

func TestLeaseHeldOnMajorityAndReleasedEverywhere(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			q := newQuorum(t, nodes, engine.WithTTL(2*time.Second))
			require.Equal(t, n/2+1, q.Majority())

			before := time.Now()
			l, err := q.Acquire(context.Background(), "job")
			require.NoError(t, err)
			assert.Equal(t, "job", l.Name())
			assert.Nil(t, l.Err())

			// Validity is TTL − elapsed − drift, measured from before the request.
			drift := 2*time.Second/100 + 2*time.Millisecond
			after := time.Now()
			assert.False(t, l.Until().Before(before.Add(2*time.Second-drift)), "until %v is before the earliest possible start+TTL-drift", l.Until())
			assert.False(t, l.Until().After(after.Add(2*time.Second-drift)), "until %v is after the latest possible start+TTL-drift", l.Until())

			got := holders(t, nodes, "quorumsync:{job}")
			assert.GreaterOrEqual(t, count(got, l.Token()), q.Majority(), "token on %v; want it on a majority", got)

			require.NoError(t, l.Release(context.Background()))
			select {
			case <-l.Done():
			default:
				t.Fatal("Done not closed after Release")
			}
			assert.ErrorIs(t, l.Err(), engine.ErrReleased)
			redistest.RequireNoKeys(t, nodes, "*")
		})
	}
}

func TestTokensAre128BitRandomAndUnique(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		l, err := q.Acquire(context.Background(), "tok")
		require.NoError(t, err)
		assert.Regexp(t, hex32, l.Token())
		assert.False(t, seen[l.Token()], "token %s issued twice", l.Token())
		seen[l.Token()] = true
		require.NoError(t, l.Release(context.Background()))
	}
}

func TestTryAcquireFailsWhileHeldElsewhereAndLeavesNothing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	a := newQuorum(t, nodes)
	b := newQuorum(t, nodes)

	la, err := a.Acquire(context.Background(), "x")
	require.NoError(t, err)

	_, err = b.TryAcquire(context.Background(), "x")
	require.ErrorIs(t, err, engine.ErrNotAcquired)
	got := holders(t, nodes, "quorumsync:{x}")
	assert.Equal(t, 3, count(got, la.Token()), "holders %v; want a's token on every node", got)

	// The same process, same name: the local gate says no without asking Redis.
	_, err = a.TryAcquire(context.Background(), "x")
	require.ErrorIs(t, err, engine.ErrNotAcquired)

	require.NoError(t, la.Release(context.Background()))
	lb, err := b.TryAcquire(context.Background(), "x")
	require.NoError(t, err)
	require.NoError(t, lb.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestAcquireCtxEndLeavesNothingAndMatchesBothErrors(t *testing.T) {
	nodes := redistest.Start(t, 3)
	a := newQuorum(t, nodes)
	b := newQuorum(t, nodes)
	la, err := a.Acquire(context.Background(), "busy")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(ctx, "busy")
	require.ErrorIs(t, err, engine.ErrNotAcquired)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	_, err = b.Acquire(ctx2, "busy")
	require.ErrorIs(t, err, engine.ErrNotAcquired)
	require.ErrorIs(t, err, context.Canceled)

	require.NoError(t, la.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestWatchdogKeepsShortLeaseAlive(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond))
	l, err := q.Acquire(context.Background(), "long")
	require.NoError(t, err)

	select {
	case <-l.Done():
		t.Fatalf("lease lost after %v: %v", time.Since(l.Until()), l.Err())
	case <-time.After(3 * time.Second):
	}
	require.NoError(t, l.Err())
	assert.True(t, l.Until().After(time.Now()))
	got := holders(t, nodes, "quorumsync:{long}")
	assert.Equal(t, 3, count(got, l.Token()), "after 3s with TTL 300ms, holders %v", got)
	require.NoError(t, l.Release(context.Background()))
}

func TestLeaseLostWhenMajorityPausesClosesDoneByUntil(t *testing.T) {
	nodes := redistest.Start(t, 3)
	var lostErr = make(chan error, 1)
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond))
	l, err := q.Acquire(context.Background(), "p", engine.OnLost(func(err error) { lostErr <- err }))
	require.NoError(t, err)

	nodes[0].Stop()
	nodes[1].Stop()
	defer nodes[0].Continue()
	defer nodes[1].Continue()

	var until time.Time
	select {
	case <-l.Done():
		until = l.Until()
	case <-time.After(2 * time.Second):
		t.Fatal("lease not lost 2s after a majority paused, with TTL 300ms")
	}
	lostAt := time.Now()
	// Done closes on a timer at Until; the slack only covers scheduling on a loaded machine.
	assert.False(t, lostAt.After(until.Add(100*time.Millisecond)), "Done closed %v after Until", lostAt.Sub(until))
	require.ErrorIs(t, l.Err(), engine.ErrLost)
	require.ErrorIs(t, l.Err(), watchdog.ErrExpired)
	require.ErrorIs(t, <-lostErr, engine.ErrLost)

	nodes[0].Continue()
	nodes[1].Continue()
	// A late renewal reply must not revive it, and releasing reports the loss.
	time.Sleep(100 * time.Millisecond)
	require.ErrorIs(t, l.Err(), engine.ErrLost)
	require.ErrorIs(t, l.Release(context.Background()), engine.ErrLost)
}

func TestMaxHoldEndsLease(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(200*time.Millisecond), engine.WithMaxHold(500*time.Millisecond))
	start := time.Now()
	l, err := q.Acquire(context.Background(), "wedged")
	require.NoError(t, err)
	select {
	case <-l.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("lease outlived its max hold time by seconds")
	}
	held := time.Since(start)
	require.ErrorIs(t, l.Err(), watchdog.ErrMaxHold)
	assert.GreaterOrEqual(t, held, 300*time.Millisecond, "lease ended after %v, before any renewal", held)
	// The servers let the key go by the max hold time too.
	assert.Eventually(t, func() bool { return holders(t, nodes, "quorumsync:{wedged}")[0] == "" }, time.Second, 20*time.Millisecond)
}

func TestReleaseOutcomesAreDistinct(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	l, err := q.Acquire(context.Background(), "r")
	require.NoError(t, err)
	require.NoError(t, l.Release(context.Background()))
	err = l.Release(context.Background())
	require.ErrorIs(t, err, engine.ErrReleased)

	// Key gone on the servers (expired, or a restart) while the lease was still valid locally.
	l2, err := q.Acquire(context.Background(), "r")
	require.NoError(t, err)
	require.NoError(t, nodes[0].Client().Del(context.Background(), "quorumsync:{r}").Err())
	err = l2.Release(context.Background())
	require.ErrorIs(t, err, engine.ErrNotHeld)
	require.NotErrorIs(t, err, engine.ErrReleased)
}

func TestRenewalFindsKeyGoneAndLosesAtOnce(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, engine.WithTTL(300*time.Millisecond))
	l, err := q.Acquire(context.Background(), "stolen")
	require.NoError(t, err)
	// Another holder took over (as after a restart without persistence).
	require.NoError(t, nodes[0].Client().Set(context.Background(), "quorumsync:{stolen}", "intruder", time.Minute).Err())
	select {
	case <-l.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("lease not lost after its key was taken")
	}
	require.ErrorIs(t, l.Err(), engine.ErrNotHeld)
	// Release does not delete the intruder's key.
	require.ErrorIs(t, l.Release(context.Background()), engine.ErrLost)
	assert.Equal(t, "intruder", holders(t, nodes, "quorumsync:{stolen}")[0])
}

func TestCloseReleasesHeldLeases(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes))
	require.NoError(t, err)
	l, err := q.Acquire(context.Background(), "c")
	require.NoError(t, err)
	require.NoError(t, q.Close(context.Background()))
	<-l.Done()
	require.ErrorIs(t, l.Err(), engine.ErrLost)
	require.ErrorIs(t, l.Err(), engine.ErrClosed)
	require.ErrorIs(t, l.Release(context.Background()), engine.ErrClosed)
	redistest.RequireNoKeys(t, nodes, "*")
	_, err = q.Acquire(context.Background(), "c")
	require.ErrorIs(t, err, engine.ErrClosed)
	require.ErrorIs(t, q.Close(context.Background()), engine.ErrClosed)
}

func TestOneSlowNodeDoesNotBlockAcquire(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[2].Stop()
	defer nodes[2].Continue()
	l, err := q.TryAcquire(context.Background(), "s")
	require.NoError(t, err)
	require.NoError(t, l.Release(context.Background()))

	// With two of three paused, the attempt fails with typed node errors.
	nodes[1].Stop()
	defer nodes[1].Continue()
	_, err = q.TryAcquire(context.Background(), "s")
	require.ErrorIs(t, err, engine.ErrUnavailable)
	var ne *engine.NodeError
	require.ErrorAs(t, err, &ne)
	assert.Contains(t, []int{1, 2}, ne.Index)
}

func TestNewQuorumRejectsBadInput(t *testing.T) {
	nodes := redistest.Start(t, 2)
	good := redistest.Clients(nodes)
	noCtxTimeout := redis.NewClient(&redis.Options{Addr: nodes[0].Addr()})
	defer noCtxTimeout.Close()
	// The same server under another name: only its run_id shows it is a duplicate.
	alias := nodes[0].Options()
	alias.Addr = fmt.Sprintf("localhost:%d", nodes[0].Port())
	aliasClient := redis.NewClient(alias)
	defer aliasClient.Close()
	var nilClient *redis.Client
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": nodes[0].Addr()}, ContextTimeoutEnabled: true})
	defer ring.Close()

	cases := []struct {
		name  string
		nodes []redis.UniversalClient
		opts  []engine.Option
		arg   string
	}{
		{"no nodes", nil, nil, "nodes"},
		{"nil node", []redis.UniversalClient{good[0], nil}, nil, "nodes[1]"},
		{"typed nil node", []redis.UniversalClient{nilClient}, nil, "nodes[0]"},
		{"duplicate address", []redis.UniversalClient{good[0], good[1], nodes[0].Client()}, nil, "nodes[2]"},
		{"duplicate server", []redis.UniversalClient{good[0], aliasClient}, nil, "nodes[1]"},
		{"context timeouts off", []redis.UniversalClient{noCtxTimeout}, nil, "nodes[0]"},
		{"ring", []redis.UniversalClient{good[0], ring}, nil, "nodes[1]"},
		{"zero ttl", good, []engine.Option{engine.WithTTL(0)}, "ttl"},
		{"negative ttl", good, []engine.Option{engine.WithTTL(-time.Second)}, "ttl"},
		{"node timeout = ttl/3", good, []engine.Option{engine.WithTTL(3 * time.Second), engine.WithNodeTimeout(time.Second)}, "node timeout"},
		{"negative node timeout", good, []engine.Option{engine.WithNodeTimeout(-1)}, "node timeout"},
		{"negative max hold", good, []engine.Option{engine.WithMaxHold(-1)}, "max hold"},
		{"prefix with brace", good, []engine.Option{engine.WithKeyPrefix("a{")}, "key prefix"},
		{"nil backoff", good, []engine.Option{engine.WithBackOff(nil)}, "backoff"},
		{"nil option", good, []engine.Option{nil}, "option"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := engine.NewQuorum(context.Background(), tc.nodes, tc.opts...)
			require.Nil(t, q)
			require.ErrorIs(t, err, engine.ErrInvalidArgument)
			var ae *engine.ArgumentError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.arg, ae.Arg, "error %q names the wrong argument", err)
		})
	}
}

func TestMisuseReturnsErrorsNotPanics(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	var nilQ *engine.Quorum
	_, err := nilQ.Acquire(context.Background(), "x")
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	assert.ErrorIs(t, nilQ.Close(context.Background()), engine.ErrInvalidArgument)
	_, err = q.Acquire(context.Background(), "")
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	//lint:ignore SA1012 checking that a nil ctx is refused
	_, err = q.TryAcquire(nil, "x") //nolint:staticcheck
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	_, err = q.Acquire(context.Background(), "x", nil)
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	var nilL *engine.Lease
	assert.ErrorIs(t, nilL.Release(context.Background()), engine.ErrNotHeld)
	redistest.RequireNoKeys(t, nodes, "*")
}

func TestScriptsLoadWithExpectedHash(t *testing.T) {
	nodes := redistest.Start(t, 1)
	c := nodes[0].Client()
	for name, s := range engine.ScriptsForTest() {
		assert.Regexp(t, `(?s)^-- \w+: .*KEYS\[\d\].*ARGV\[1\].*Returns`, s.File, "script %s lacks its header comment", name)
		if s.Hash == "" {
			continue // a prelude, not a script of its own
		}
		got, err := c.ScriptLoad(context.Background(), s.Src).Result()
		require.NoError(t, err, "script %s does not load", name)
		assert.Equal(t, s.Hash, got, "script %s", name)
	}
}

func TestNodeErrorsAreTypedAndJoined(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(time.Second), engine.WithNodeTimeout(50*time.Millisecond))
	nodes[0].Kill()
	nodes[1].Kill()
	_, err := q.TryAcquire(context.Background(), "k")
	require.ErrorIs(t, err, engine.ErrUnavailable)
	var idx []int
	for _, e := range unwrapAll(err) {
		if ne, ok := e.(*engine.NodeError); ok {
			idx = append(idx, ne.Index)
		}
	}
	assert.ElementsMatch(t, []int{0, 1}, idx, "node errors in %q", err)
}

func unwrapAll(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func TestManyNamesKeepNoLocalState(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	for i := 0; i < 200; i++ {
		l, err := q.Acquire(context.Background(), fmt.Sprintf("order:%d", i))
		require.NoError(t, err)
		require.NoError(t, l.Release(context.Background()))
	}
	assert.Zero(t, engine.GatesForTest(q), "local gates kept after their names were released")
}

func TestKeysOfANameShareItsHashTag(t *testing.T) {
	got := engine.KeysForTest("quorumsync:", engine.Exclusive, "orders:42")
	assert.Equal(t, []string{"quorumsync:{orders:42}:q", "quorumsync:{orders:42}:qlive", "quorumsync:{orders:42}:wake", "quorumsync:{orders:42}", "quorumsync:{orders:42}:fence", "quorumsync:{orders:42}:broken"}, got)
}

// A node that hangs costs the whole per-node timeout once; after that it is suspect and skipped (a
// failed vote, no I/O) until it answers a ping. The bound below is 70% of the timeout per call, so
// the margin is wide.
func TestHungNodeCostsTheTimeoutOnceNotOnEveryCall(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(6*time.Second), engine.WithNodeTimeout(time.Second))
	nodes[2].Stop()
	defer nodes[2].Continue()
	var times []time.Duration
	for i := 0; i < 6; i++ {
		start := time.Now()
		l, err := q.TryAcquire(context.Background(), "hung")
		require.NoError(t, err)
		require.NoError(t, l.Release(context.Background()))
		times = append(times, time.Since(start))
	}
	for i, d := range times[1:] {
		assert.Less(t, d, 700*time.Millisecond, "acquire+release %d took %v with one node of three hung (timeout 1s); all: %v", i+2, d, times)
	}

	// Once it answers again, it votes again.
	nodes[2].Continue()
	require.Eventually(t, func() bool {
		l, err := q.TryAcquire(context.Background(), "hung")
		if err != nil {
			return false
		}
		defer l.Release(context.Background())
		return holders(t, nodes, "quorumsync:{hung}")[2] == l.Token()
	}, 5*time.Second, 50*time.Millisecond, "the recovered node never voted again")
}

// A node that answers again is used again within a tenth of the quorum's TTL plus one node timeout,
// however long it was away: its probe's pauses stop growing at TTL/10. Here the quorum needs it
// (the third node is hung too), so the first acquire to succeed after it resumes shows when it
// came back. Three times, each after its probe has reached its longest pause.
func TestAHealedNodeIsUsedAgainWithinATenthOfTheTTL(t *testing.T) {
	const ttl, timeout = time.Second, 50 * time.Millisecond
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, engine.WithTTL(ttl), engine.WithNodeTimeout(timeout))
	ctx := context.Background()
	nodes[2].Stop()
	defer nodes[2].Continue()
	l, err := q.TryAcquire(ctx, "suspect-2") // on nodes 0 and 1; node 2 is now skipped
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	bound := ttl/10 + timeout
	for i := range 3 {
		nodes[1].Stop()
		_, err := q.TryAcquire(ctx, fmt.Sprintf("suspect-1-%d", i))
		require.ErrorIs(t, err, engine.ErrUnavailable)
		time.Sleep(ttl) // the probe's pauses grow to their longest
		nodes[1].Continue()
		resumed := time.Now()
		var took time.Duration
		for j := 0; ; j++ {
			l, err := q.TryAcquire(ctx, fmt.Sprintf("back-%d-%d", i, j))
			if err == nil {
				took = time.Since(resumed)
				require.NoError(t, l.Release(ctx))
				break
			}
			require.Less(t, time.Since(resumed), 5*time.Second, "node 1 never voted again")
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("resume %d: node 1 voted again %v after it resumed (bound %v)", i, took.Round(time.Millisecond), bound)
		assert.Less(t, took, bound+250*time.Millisecond, "resume %d: node 1 used again %v after it answered again; want within TTL/10 + node timeout = %v (and a margin for a loaded machine)", i, took, bound)
	}
}

func TestCloseEndsBlockedAcquires(t *testing.T) {
	nodes := redistest.Start(t, 1)
	holder := newQuorum(t, nodes)
	h, err := holder.Acquire(context.Background(), "closing")
	require.NoError(t, err)
	defer h.Release(context.Background())

	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes))
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		_, err := q.Acquire(context.Background(), "closing")
		got <- err
	}()
	queued := func() bool { return nodes[0].Client().ZCard(context.Background(), "quorumsync:{closing}:q").Val() == 1 }
	require.Eventually(t, queued, 5*time.Second, 2*time.Millisecond)
	require.NoError(t, q.Close(context.Background()))
	select {
	case err := <-got:
		require.ErrorIs(t, err, engine.ErrClosed)
	case <-time.After(time.Second):
		t.Fatal("Acquire still blocked 1s after Close (its fallback timer is ~5s)")
	}
	assert.Zero(t, nodes[0].Client().ZCard(context.Background(), "quorumsync:{closing}:q").Val(), "the closed waiter is still queued")
}
