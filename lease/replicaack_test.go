package lease_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// WithReplicaAck's arguments are checked, and a node of a kind it cannot WAIT through is refused.
func TestReplicaAckOptionIsChecked(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	for _, opt := range []lease.Option{
		lease.WithReplicaAck(0, 10*time.Millisecond),
		lease.WithReplicaAck(1, 0),
		lease.WithReplicaAck(1, time.Second), // more than half the node timeout
	} {
		_, err := lease.NewQuorum(ctx, redistest.Clients(nodes), opt)
		require.ErrorIs(t, err, lease.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "replica ack")
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": nodes[0].Addr()}})
	defer ring.Close()
	_, err := lease.NewQuorum(ctx, []redis.UniversalClient{ring}, lease.WithReplicaAck(1, 10*time.Millisecond))
	require.ErrorIs(t, err, lease.ErrInvalidArgument)

	// A node with no replica: every grant fails, saying why, and nothing is left.
	q, err := lease.NewQuorum(ctx, redistest.Clients(nodes), lease.WithReplicaAck(1, 10*time.Millisecond),
		lease.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer q.Close(ctx)
	err = mutex.New(q, "alone").TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable)
	assert.Contains(t, err.Error(), "the write reached 0 of the 1 replicas asked for")
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
	health, err := q.Health(ctx)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(health[0].Warnings, "; "), "fewer than the 1 lease.WithReplicaAck asks for")
}

// On Redis Cluster with a replica per shard, a lock acquired with replica acknowledgement survives
// a forced failover of its shard (CLUSTER FAILOVER FORCE on the replica): the promoted replica had
// the grant and the renewals, the holder's renewals follow the new master, and the lock still
// excludes.
func TestClusterReplicaAckKeepsALockThroughAForcedFailover(t *testing.T) {
	nodes := redistest.StartClusterWithReplicas(t, 3)
	opts := redistest.ClusterOptions(nodes)
	cluster := redis.NewClusterClient(opts)
	t.Cleanup(func() { _ = cluster.Close() })
	ctx := context.Background()
	quiet := lease.WithLogger(slog.New(slog.DiscardHandler))
	const ttl = 3 * time.Second
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cluster}, quiet, lease.WithTTL(ttl),
		lease.WithNodeTimeout(200*time.Millisecond), lease.WithReplicaAck(1, 100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	other := redis.NewClusterClient(redistest.ClusterOptions(nodes))
	t.Cleanup(func() { _ = other.Close() })
	q2, err := lease.NewQuorum(ctx, []redis.UniversalClient{other}, quiet, lease.WithTTL(ttl))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q2.Close(context.Background()) })

	l, err := mutex.New(q, "failover").Obtain(ctx)
	require.NoError(t, err)

	// The shard's replica takes over.
	master, err := cluster.MasterForKey(ctx, "quorumsync:{failover}")
	require.NoError(t, err)
	masterAddr := master.Options().Addr
	var replica *redistest.Node
	for _, n := range nodes {
		info, err := n.Client().Info(ctx, "replication").Result()
		require.NoError(t, err)
		host, port, _ := strings.Cut(masterAddr, ":")
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_host:"+host) && strings.Contains(info, "master_port:"+port+"\r") {
			replica = n
		}
	}
	require.NotNil(t, replica, "the replica of %s", masterAddr)
	require.NoError(t, replica.Client().Do(ctx, "cluster", "failover", "force").Err())
	require.Eventually(t, func() bool {
		info, err := replica.Client().Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "role:master") && strings.Contains(info, "connected_slaves:1")
	}, 15*time.Second, 50*time.Millisecond, "the replica was promoted, and the old master follows it")
	n, err := replica.Client().Exists(ctx, "quorumsync:{failover}").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the promoted replica has the lock's key")

	time.Sleep(2 * ttl) // renewals go to the new master, and are acknowledged by the old one
	require.NoError(t, l.Err(), "the lock survived the failover")
	assert.True(t, l.Valid())
	require.ErrorIs(t, mutex.New(q2, "failover").TryLock(ctx), lease.ErrNotAcquired, "and it still excludes")
	require.NoError(t, l.Release(ctx))
}
