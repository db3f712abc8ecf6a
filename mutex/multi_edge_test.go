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
