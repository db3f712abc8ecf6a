package lease_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// On a Cluster node of several shards, with WithReplicaAck, TryLock of free names succeeds: the
// fast acquire (a plain SET NX PX, whose key is among its arguments) and its WAIT go to the shard
// master of the claim's key, not to a random one.
func TestClusterReplicaAckFindsTheKeysShard(t *testing.T) {
	nodes := redistest.StartClusterWithReplicas(t, 3)
	cluster := redis.NewClusterClient(redistest.ClusterOptions(nodes))
	t.Cleanup(func() { _ = cluster.Close() })
	ctx := context.Background()
	// Wide: a loaded machine delays a replica's ack (a full run beside the other packages once
	// took over 400ms), and a WAIT sent to a shard other than the key's fails whatever the wait.
	const nodeTimeout = 2 * time.Second
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cluster}, lease.WithLogger(slog.New(slog.DiscardHandler)),
		lease.WithTTL(10*time.Second), lease.WithNodeTimeout(nodeTimeout), lease.WithReplicaAck(1, nodeTimeout/2))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })

	bad := 0
	for i := 0; i < 12; i++ {
		m := mutex.New(q, fmt.Sprintf("shard%d", i))
		start := time.Now()
		err := m.TryLock(ctx)
		took := time.Since(start)
		t.Logf("TryLock(shard%d): err=%v, took %v", i, err, took)
		if err != nil {
			bad++
		}
		if err == nil {
			require.NoError(t, m.Unlock(ctx))
		}
	}
	require.Zero(t, bad, "free names, every shard with its replica in sync: every TryLock should succeed at once")
}

// Quorum.Health does not compare WithReplicaAck's count, which WAIT applies per shard, with a
// Cluster's replicas, which it counts over every shard: 3 shards with 1 replica each, asked for 1,
// give no warning about it.
func TestClusterHealthMakesNoReplicaAckComparison(t *testing.T) {
	nodes := redistest.StartClusterWithReplicas(t, 3)
	cluster := redis.NewClusterClient(redistest.ClusterOptions(nodes))
	t.Cleanup(func() { _ = cluster.Close() })
	ctx := context.Background()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cluster}, lease.WithLogger(slog.New(slog.DiscardHandler)),
		lease.WithNodeTimeout(300*time.Millisecond), lease.WithReplicaAck(1, 100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	health, err := q.Health(ctx)
	require.NoError(t, err)
	t.Logf("replicas %d, warnings %q", health[0].Replicas, health[0].Warnings)
	for _, w := range health[0].Warnings {
		require.NotContains(t, w, "WithReplicaAck", "every shard has exactly the 1 replica asked for")
	}
}
