package lease_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
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
		lease.WithNodeTimeout(900*time.Millisecond), lease.WithReplicaAck(1, 400*time.Millisecond)) // wide: a loaded machine delays acks
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

// replProxy is a proxy to a master that tells the replication link apart from clients (the
// connection that sends REPLCONF or PSYNC) and, while stalled, holds back what the master sends on
// it, in order, until it flows again: a shard's replica that falls behind without its link
// breaking, while clients go through.
type replProxy struct {
	*redistest.Proxy
	repl atomic.Int32 // replication links seen

	mu      sync.Mutex
	stalled bool
	links   []*heldLink
}

// heldLink is one replication link's way to the replica, and what it holds back.
type heldLink struct {
	to      net.Conn
	pending []byte
}

// stall holds the replication links' bytes back (on) or lets them, and what was held, flow (off).
func (p *replProxy) stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = on
	if on {
		return
	}
	for _, l := range p.links {
		if len(l.pending) > 0 {
			_, _ = l.to.Write(l.pending)
			l.pending = nil
		}
	}
}

func newReplProxy(t *testing.T, upstream string) *replProxy {
	p := &replProxy{}
	p.Proxy = redistest.StartProxy(t, upstream, func(pipe *redistest.Pipe) redistest.Relay {
		link := &heldLink{to: pipe.Client}
		var isRepl atomic.Bool
		return func(up bool, b []byte) error {
			if up { // client -> master: spot the replica's handshake
				if s := strings.ToLower(string(b)); !isRepl.Load() && (strings.Contains(s, "replconf") || strings.Contains(s, "psync")) {
					isRepl.Store(true)
					p.repl.Add(1)
					p.mu.Lock()
					p.links = append(p.links, link)
					p.mu.Unlock()
				}
				return pipe.Pass(up, b)
			}
			// master -> client: held back on a stalled replication link
			p.mu.Lock()
			defer p.mu.Unlock()
			if isRepl.Load() && p.stalled {
				link.pending = append(link.pending, b...)
				return nil
			}
			return pipe.Pass(up, b)
		}
	})
	return p
}

// laggingShard returns a Cluster of 3 shards with a replica each, whose shard serving name has its
// replication link (and its clients) through a replProxy, and that shard's replica.
func laggingShard(t *testing.T, name string) (nodes []*redistest.Node, proxy *replProxy, replica *redistest.Node) {
	t.Helper()
	nodes = redistest.StartClusterWithReplicas(t, 3)
	ctx := context.Background()
	cluster := redis.NewClusterClient(redistest.ClusterOptions(nodes))
	defer cluster.Close()
	master, err := cluster.MasterForKey(ctx, "quorumsync:{"+name+"}")
	require.NoError(t, err)
	masterAddr := master.Options().Addr
	var m *redistest.Node
	for _, n := range nodes {
		if n.Addr() == masterAddr {
			m = n
		}
		info, err := n.Client().Info(ctx, "replication").Result()
		require.NoError(t, err)
		if strings.Contains(info, "role:slave") && strings.Contains(info, fmt.Sprintf("master_port:%d\r", portOf(masterAddr))) {
			replica = n
		}
	}
	require.NotNil(t, m)
	require.NotNil(t, replica)
	proxy = newReplProxy(t, masterAddr)
	// The master announces the proxy's port: its replica, told by the cluster bus, follows it there.
	require.NoError(t, m.Client().ConfigSet(ctx, "cluster-announce-bus-port", strconv.Itoa(m.Port()+10000)).Err())
	require.NoError(t, m.Client().ConfigSet(ctx, "cluster-announce-port", strconv.Itoa(portOf(proxy.Addr()))).Err())
	require.Eventually(t, func() bool {
		info, err := replica.Client().Info(ctx, "replication").Result()
		return err == nil && proxy.repl.Load() > 0 && strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, fmt.Sprintf("master_port:%d\r", portOf(proxy.Addr())))
	}, 15*time.Second, 50*time.Millisecond, "the replica follows its master through the proxy")
	return nodes, proxy, replica
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// clusterQuorum returns a quorum whose one node is a Cluster client over nodes.
func clusterQuorum(t *testing.T, nodes []*redistest.Node, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	c := redis.NewClusterClient(redistest.ClusterOptions(nodes))
	t.Cleanup(func() { _ = c.Close() })
	opts = append([]lease.Option{lease.WithLogger(slog.New(slog.DiscardHandler)), lease.WithNodeTimeout(200 * time.Millisecond)}, opts...)
	q, err := lease.NewQuorum(context.Background(), []redis.UniversalClient{c}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// A Cluster shard's replica that missed a lock's write (its replication link stalled) is promoted
// by CLUSTER FAILOVER FORCE: without replica acknowledgement it grants the lock to a second holder
// while the first is still valid (the caveat); with it, the grant the replica missed never counted
// (the acquire failed while the link stalled), and a holder whose renewals it missed loses its
// lease on time, before the promoted replica lets the next holder in.
func TestClusterFailoverToALaggingReplica(t *testing.T) {
	t.Run("ack=false", func(t *testing.T) {
		nodes, proxy, replica := laggingShard(t, "lagging")
		ctx := context.Background()
		holder, other := clusterQuorum(t, nodes, lease.WithTTL(10*time.Second)), clusterQuorum(t, nodes)
		proxy.stall(true) // the replica hears nothing from its master from now on
		l, err := mutex.New(holder, "lagging", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
		require.NoError(t, err)
		require.NoError(t, replica.Client().Do(ctx, "cluster", "failover", "force").Err())
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		second, err := mutex.New(other, "lagging").Obtain(wctx)
		require.NoError(t, err, "the promoted replica, which never had the key, grants it")
		assert.True(t, time.Now().Before(l.Until()), "granted while the first holder's lease is still valid (%v left): two holders at once",
			time.Until(l.Until()))
		require.NoError(t, second.Release(ctx))
	})
	t.Run("ack=true", func(t *testing.T) {
		nodes, proxy, replica := laggingShard(t, "lagging")
		ctx := context.Background()
		const ttl = 3 * time.Second
		ack := lease.WithReplicaAck(1, 100*time.Millisecond)
		holder, other := clusterQuorum(t, nodes, lease.WithTTL(ttl), ack), clusterQuorum(t, nodes, lease.WithTTL(ttl))

		proxy.stall(true)
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := mutex.New(holder, "lagging").Obtain(wctx)
		require.ErrorIs(t, err, lease.ErrUnavailable, "no grant counts while the replica cannot confirm it")
		proxy.stall(false)
		require.Eventually(t, func() bool {
			info, err := replica.Client().Info(ctx, "replication").Result()
			return err == nil && strings.Contains(info, "master_link_status:up")
		}, 15*time.Second, 50*time.Millisecond, "the replica catches up once the link flows")

		l, err := mutex.New(holder, "lagging", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
		require.NoError(t, err, "granted once the replica confirms")
		proxy.stall(true) // from now on the replica misses the renewals
		time.Sleep(ttl * 3 / 4)
		require.NoError(t, replica.Client().Do(ctx, "cluster", "failover", "force").Err())
		wctx2, cancel2 := context.WithTimeout(ctx, 20*time.Second)
		defer cancel2()
		second, err := mutex.New(other, "lagging").Obtain(wctx2)
		require.NoError(t, err, "the promoted replica serves the next holder")
		assert.False(t, time.Now().Before(l.Until()), "second holder granted %v before the first's validity ended", time.Until(l.Until()))
		require.NoError(t, second.Release(ctx))
	})
}

// An ACL user without WAIT cannot have its grants confirmed: the acquire is refused as
// misconfigured (no retry heals it), not taken for a lagging replica, and leaves nothing.
func TestReplicaAckWithoutTheWaitCommandIsMisconfigured(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	require.NoError(t, nodes[0].Client().Do(ctx, "acl", "setuser", "nowait", "on", ">pw", "~quorumsync:*", "&quorumsync:*", "+@all", "-wait").Err())
	o := nodes[0].Options()
	o.Username, o.Password = "nowait", "pw"
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{c}, lease.WithReplicaAck(1, 10*time.Millisecond),
		lease.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	err = mutex.New(q, "nowait").Lock(ctx)
	require.ErrorIs(t, err, lease.ErrMisconfigured)
	redistest.RequireNoKeys(t, nodes, "quorumsync:{nowait}*")
}
