package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// A Redis Cluster counts as one node of a quorum: every key of a name shares its hash tag, so the
// scripts run on the one shard that owns the name, and the wake-up still reaches waiters.
func TestClusterAsOneNode(t *testing.T) {
	masters := redistest.StartCluster(t, 3)
	newClusterQuorum := func() *engine.Quorum {
		c := redis.NewClusterClient(redistest.ClusterOptions(masters))
		t.Cleanup(func() { _ = c.Close() })
		q, err := engine.NewQuorum(context.Background(), []redis.UniversalClient{c})
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close(context.Background()) })
		return q
	}
	holder, waiterQ := newClusterQuorum(), newClusterQuorum()
	ctx := context.Background()

	// Names spread over the shards.
	for _, name := range []string{"a", "b", "c", "orders:42", "jobs:nightly"} {
		l, err := holder.Acquire(ctx, name)
		require.NoError(t, err, name)
		_, err = waiterQ.TryAcquire(ctx, name)
		require.ErrorIs(t, err, engine.ErrNotAcquired, name)

		got := acquireAsync(waiterQ, name)
		time.Sleep(300 * time.Millisecond) // queued and subscribed
		released := time.Now()
		require.NoError(t, l.Release(ctx))
		a := <-got
		require.NoError(t, a.err)
		assert.Less(t, a.at.Sub(released), wakeBound, "%s: waiter acquired %v after the release (fallback ~5s)", name, a.at.Sub(released))
		require.NoError(t, a.l.Release(ctx))
	}
	redistest.RequireNoKeys(t, masters, "quorumsync:*")
}
