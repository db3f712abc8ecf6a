package mutex_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// A Multi's Locker, like a Mutex's, keeps trying through an outage and reports the failed
// attempts to the error handler, at most once a second: the same 300ms outage that
// TestLockerRetriesThroughRedisOutage has a Mutex's Locker report.
func TestMultiLockerReportsAnOutage(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	var reported atomic.Int32
	l := mutex.NewMulti(q, []string{"outage-a", "outage-b"}, mutex.WithErrorHandler(func(err error) {
		assert.ErrorIs(t, err, lease.ErrUnavailable)
		reported.Add(1)
	})).Locker()
	nodes[0].Stop()
	time.AfterFunc(300*time.Millisecond, nodes[0].Continue)
	start := time.Now()
	l.Lock() // blocks through the outage, then holds
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "Lock returned while the only node was paused")
	l.Unlock()
	assert.GreaterOrEqual(t, reported.Load(), int32(1), "no report of a 300ms outage (a Mutex's Locker reports it)")
}

// A Multi's Lock fails at once when any of its names is refused for good (here an ACL whose key
// pattern no longer covers it), as a Mutex's does, even when an earlier name is busy: it does not
// wait for the busy name before it says "misconfigured".
func TestMultiLockFailsAtOnceWhenALaterNameIsRefused(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	user := func(rules ...string) {
		for _, n := range nodes {
			args := []any{"acl", "setuser", "app"}
			for _, r := range rules {
				for _, f := range strings.Fields(r) {
					args = append(args, f)
				}
			}
			require.NoError(t, n.Client().Do(ctx, args...).Err())
		}
	}
	user("on >pw ~quorumsync:* &quorumsync:* +@all")
	o := nodes[0].Options()
	o.Username, o.Password = "app", "pw"
	app := redis.NewClient(o)
	t.Cleanup(func() { _ = app.Close() })
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{app})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })

	busy := mutex.New(newQuorum(t, nodes), "acct:a") // another process holds acct:a
	require.NoError(t, busy.Lock(ctx))
	defer busy.Unlock(ctx)
	// The administrator narrows the app's keys to acct:a's: acct:z is refused for good.
	user("resetkeys ~quorumsync:{acct:a}*")
	refused := mutex.New(q, "acct:z").Lock(ctx)
	require.ErrorIs(t, refused, lease.ErrMisconfigured, "a Mutex of acct:z")

	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	err = mutex.NewMulti(q, []string{"acct:z", "acct:a"}).Lock(wctx)
	t.Logf("Multi.Lock after %v: %v", time.Since(start).Round(time.Millisecond), err)
	assert.ErrorIs(t, err, lease.ErrMisconfigured, "a Multi with acct:z")
	assert.Less(t, time.Since(start), time.Second, "retried what cannot heal")
}

// A name a Multi took early can be lost while it waits for a later one (here an administrator
// breaks it, and another client takes it): Lock does not return holding a lost lease. It gives
// every name back and starts over, and returns only once every lease is sound, with a fencing
// token for the lost name above the one that took it meanwhile.
func TestMultiLockRetakesANameLostWhileItWaited(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	opts := []lease.Option{lease.WithTTL(time.Second)}
	qa, qb, qc, admin := newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...)
	y := mutex.New(qb, "lost-y", mutex.WithFencing())
	require.NoError(t, y.Lock(ctx)) // B holds lost-y
	type got struct {
		ml  *mutex.MultiLease
		err error
	}
	res := make(chan got, 1)
	go func() { // A takes lost-x, and waits for lost-y
		ml, err := mutex.NewMulti(qa, []string{"lost-y", "lost-x"}, mutex.WithFencing(), mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
		res <- got{ml, err}
	}()
	require.Eventually(t, func() bool {
		st, err := admin.Inspect(ctx, "lost-x")
		return err == nil && len(st.Holders) == 1
	}, 5*time.Second, 10*time.Millisecond, "A holds lost-x")
	_, err := admin.Break(ctx, "lost-x")
	require.NoError(t, err)
	c := mutex.New(qc, "lost-x", mutex.WithFencing())
	var lc *lease.Lease
	require.Eventually(t, func() bool { // C takes lost-x once A's lease there is found broken
		lc, err = c.TryObtain(ctx)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "C takes the broken lost-x")
	cFence, err := lc.Fence()
	require.NoError(t, err)
	// A learns of the break at its next renewal (TTL/3): until then it believes it holds lost-x,
	// the caveat of Break.
	time.Sleep(700 * time.Millisecond)
	require.NoError(t, y.Unlock(ctx)) // A gets lost-y now, finds lost-x lost, gives back, waits again
	select {
	case r := <-res:
		t.Fatalf("Obtain returned while C holds lost-x: err %v, lease valid %v", r.err, r.ml.Valid())
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, lc.Release(ctx))
	var r got
	select {
	case r = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("Obtain did not return within 5s of lost-x's release")
	}
	require.NoError(t, r.err)
	require.True(t, r.ml.Valid())
	require.NoError(t, r.ml.Err())
	fences, err := r.ml.Fences()
	require.NoError(t, err)
	assert.Greater(t, fences[0], cFence, "lost-x's token (names in order: lost-x, lost-y)")
	require.NoError(t, r.ml.Release(ctx))
}

// Names with characters that could break a hash tag, a key or a token (braces, spaces, ':',
// unicode, a leading '}') lock and exclude like any other, on a Cluster node too.
func TestMultiOddNames(t *testing.T) {
	names := []string{"}lead", "a{b}c", "with space", "colon:name", "ünïcode", "~tilde"}
	check := func(t *testing.T, q, other *lease.Quorum) {
		ctx := context.Background()
		m := mutex.NewMulti(q, names)
		require.NoError(t, m.Lock(ctx))
		for _, n := range names {
			assert.ErrorIs(t, mutex.New(other, n).TryLock(ctx), lease.ErrNotAcquired, "%q while the Multi holds it", n)
		}
		require.NoError(t, m.Unlock(ctx))
		for _, n := range names {
			o := mutex.New(other, n)
			require.NoError(t, o.TryLock(ctx), "%q after the Multi let go", n)
			require.NoError(t, o.Unlock(ctx))
		}
	}
	t.Run("N=3", func(t *testing.T) {
		nodes := redistest.Start(t, 3)
		check(t, newQuorum(t, nodes), newQuorum(t, nodes))
		redistest.RequireNoKeys(t, nodes, "quorumsync:*")
	})
	t.Run("cluster", func(t *testing.T) {
		nodes := redistest.StartCluster(t, 3)
		quorum := func() *lease.Quorum {
			c := redis.NewClusterClient(redistest.ClusterOptions(nodes))
			t.Cleanup(func() { _ = c.Close() })
			q, err := lease.NewQuorum(context.Background(), []redis.UniversalClient{c})
			require.NoError(t, err)
			t.Cleanup(func() { _ = q.Close(context.Background()) })
			return q
		}
		check(t, quorum(), quorum())
	})
}
