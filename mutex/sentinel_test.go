package mutex_test

// Sentinel, as one node of a quorum: a master with a replica, failed over by a Sentinel. What a
// failover does to a held lock — kept through a graceful one, lost on time when the master dies
// and the failover takes longer than the TTL, and given to a second holder when a replica that
// missed the lock's write is promoted (the caveat of DESIGN §7 and the package doc).

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// sentinel is a master, its replica and one Sentinel that watches them.
type sentinel struct {
	master, replica *redistest.Node
	addr            string // the Sentinel's
}

const masterName = "quorumsync-test"

// startSentinel starts a master, a replica of it (through replicaVia, when not nil, which gets
// the master's address and returns the one the replica should follow), and a Sentinel that fails
// the master over downAfter after it stops answering.
func startSentinel(t *testing.T, downAfter time.Duration, replicaVia func(master string) string) *sentinel {
	t.Helper()
	s := &sentinel{master: redistest.Start(t, 1)[0]}
	follow := s.master.Addr()
	if replicaVia != nil {
		follow = replicaVia(follow)
	}
	host, port, _ := net.SplitHostPort(follow)
	s.replica = redistest.Start(t, 1, redistest.WithArgs("--replicaof", host, port))[0]
	ctx := context.Background()
	require.Eventually(t, func() bool {
		info, err := s.replica.Client().Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	}, 10*time.Second, 20*time.Millisecond, "the replica synced")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sport := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
`, sport, dir, masterName, s.master.Port(), masterName, downAfter.Milliseconds(), masterName), 0o600))
	cmd := exec.Command("redis-server", conf, "--sentinel")
	redistest.DieWithParent(cmd)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s.addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(sport))
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
	t.Cleanup(func() { _ = sc.Close() })
	require.Eventually(t, func() bool {
		r, err := sc.Replicas(ctx, masterName).Result()
		return err == nil && len(r) == 1
	}, 10*time.Second, 20*time.Millisecond, "the Sentinel found the replica")
	return s
}

// blackhole is a proxy to a node that, once on, keeps the connections open and drops every byte:
// a replication link that has stalled without breaking.
type blackhole struct {
	*redistest.Proxy
	on atomic.Bool
}

func newBlackhole(t *testing.T, upstream string) *blackhole {
	b := &blackhole{}
	b.Proxy = redistest.StartProxy(t, upstream, func(pipe *redistest.Pipe) redistest.Relay {
		return func(up bool, chunk []byte) error {
			if b.on.Load() {
				return nil
			}
			return pipe.Pass(up, chunk)
		}
	})
	return b
}

// quiet is a logger for quorums whose set-up warnings (replicas, no persistence) are expected.
var quiet = lease.WithLogger(slog.New(slog.DiscardHandler))

// quorum returns a quorum whose one node is the Sentinel-managed master, as lease.Dial makes it
// from a redis+sentinel:// URL.
func (s *sentinel) quorum(t *testing.T, ttl time.Duration) *lease.Quorum {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := lease.Dial(ctx, []string{"redis+sentinel://" + s.addr + "?master_name=" + masterName}, quiet, lease.WithTTL(ttl),
		lease.WithNodeTimeout(200*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// masterAddr asks the Sentinel which node is the master now.
func (s *sentinel) masterAddr(t *testing.T) string {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(context.Background(), masterName).Result()
	require.NoError(t, err)
	return net.JoinHostPort(a[0], a[1])
}

// A graceful failover (SENTINEL FAILOVER, the replica in sync) keeps a held lock: the promoted
// replica has its key, and the renewals follow the new master.
func TestSentinelGracefulFailoverKeepsAHeldLock(t *testing.T) {
	s := startSentinel(t, time.Second, nil)
	const ttl = 3 * time.Second
	holder, other := s.quorum(t, ttl), s.quorum(t, ttl)
	ctx := context.Background()
	l, err := mutex.New(holder, "graceful").Obtain(ctx)
	require.NoError(t, err)
	require.NoError(t, s.master.Client().Do(ctx, "wait", 1, 1000).Err(), "the replica has the key")

	sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
	defer sc.Close()
	// A Sentinel that has just found the replica may not trust it yet (NOGOODSLAVE): ask again.
	require.Eventually(t, func() bool { return sc.Failover(ctx, masterName).Err() == nil }, 15*time.Second, 200*time.Millisecond, "SENTINEL FAILOVER accepted")
	require.Eventually(t, func() bool { return s.masterAddr(t) == s.replica.Addr() }, 15*time.Second, 50*time.Millisecond, "the replica was promoted")

	time.Sleep(2 * ttl) // renewals go to the new master for two TTLs
	require.NoError(t, l.Err(), "the lock survived the failover")
	assert.True(t, l.Valid())
	require.ErrorIs(t, mutex.New(other, "graceful").TryLock(ctx), lease.ErrNotAcquired, "and it still excludes")
	require.NoError(t, l.Release(ctx))
}

// The master dies and the failover takes longer than the TTL: the holder's lease ends on time —
// Done closes by its last Until — and the next holder, served by the promoted replica, gets the
// lock only after that (the replica had the key, with the same expiry).
func TestSentinelMasterKilledLosesTheLockOnTime(t *testing.T) {
	s := startSentinel(t, 1500*time.Millisecond, nil)
	const ttl = time.Second
	holder, other := s.quorum(t, ttl), s.quorum(t, 5*time.Second)
	ctx := context.Background()
	l, err := mutex.New(holder, "killed", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
	require.NoError(t, err)
	require.NoError(t, s.master.Client().Do(ctx, "wait", 1, 1000).Err())

	s.master.Kill()
	killed := time.Now()
	var until time.Time
	select {
	case <-l.Done():
		until = l.Until()
	case <-time.After(3 * ttl):
		t.Fatal("the lease did not end after the master died")
	}
	assert.False(t, time.Now().After(until.Add(500*time.Millisecond)), "Done closed when the validity ended, not later")
	require.ErrorIs(t, l.Err(), lease.ErrLost)

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	second, err := mutex.New(other, "killed").Obtain(wctx)
	require.NoError(t, err, "the promoted replica serves the next holder")
	got := time.Now()
	assert.True(t, got.After(until), "no second holder inside the first's validity (granted %v after the kill, the first valid until %v after it)",
		got.Sub(killed), until.Sub(killed))
	assert.Equal(t, s.replica.Addr(), s.masterAddr(t))
	if err := second.Release(ctx); err != nil {
		v, verr := s.replica.Client().Get(ctx, "quorumsync:{killed}").Result()
		role, _ := s.replica.Client().Info(ctx, "replication").Result()
		t.Fatalf("release: %v; second err %v, granted %v after kill; key on the replica: %q %v; token %s; %s", err, second.Err(), got.Sub(killed), v, verr, second.Holder().Token, role)
	}
}

// The caveat: a replica that has not received the lock's write (replication is asynchronous; here
// its link to the master is a black hole) is promoted when the master dies, and grants the lock
// to a second holder while the first still holds it, valid for most of its TTL.
func TestCaveatSentinelPromotesALaggingReplica(t *testing.T) {
	var link *blackhole
	s := startSentinel(t, 500*time.Millisecond, func(master string) string {
		link = newBlackhole(t, master)
		return link.Addr()
	})
	const ttl = 10 * time.Second
	holder, other := s.quorum(t, ttl), s.quorum(t, ttl)
	ctx := context.Background()

	link.on.Store(true) // the replica hears nothing from the master from now on
	l, err := mutex.New(holder, "lagging", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
	require.NoError(t, err)
	s.master.Kill()

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	second, err := mutex.New(other, "lagging").Obtain(wctx)
	require.NoError(t, err, "the promoted replica, which never had the key, grants it")
	assert.Equal(t, s.replica.Addr(), s.masterAddr(t))
	assert.True(t, time.Now().Before(l.Until()), "granted while the first holder's lease is still valid")
	assert.NoError(t, l.Err(), "and the first has not learnt it yet: two holders at once")
	require.NoError(t, second.Release(ctx))
}

// quorumWith returns a quorum like quorum's, with more options.
func (s *sentinel) quorumWith(t *testing.T, ttl time.Duration, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]lease.Option{quiet, lease.WithTTL(ttl), lease.WithNodeTimeout(200 * time.Millisecond)}, opts...)
	q, err := lease.Dial(ctx, []string{"redis+sentinel://" + s.addr + "?master_name=" + masterName}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// With lease.WithReplicaAck, a grant counts only once the replica has it: while the replication
// link is stalled, an acquire fails (unavailable, saying how many replicas confirmed) and leaves
// nothing on the master; once the link flows again, it succeeds.
func TestSentinelReplicaAckRefusesAGrantTheReplicaMissed(t *testing.T) {
	var link *blackhole
	s := startSentinel(t, 10*time.Second, func(master string) string {
		link = newBlackhole(t, master)
		return link.Addr()
	})
	q := s.quorumWith(t, 3*time.Second, lease.WithReplicaAck(1, 50*time.Millisecond), lease.WithNodeTimeout(800*time.Millisecond))
	ctx := context.Background()
	link.on.Store(true)
	_, err := mutex.New(q, "acked").TryObtain(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable)
	assert.Contains(t, err.Error(), "the write reached 0 of the 1 replicas asked for")
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = mutex.New(q, "acked").Obtain(wctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, lease.ErrUnavailable, "%v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	n, err := s.master.Client().Exists(ctx, "quorumsync:{acked}").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the unconfirmed grant was undone on the master")

	link.on.Store(false)
	l, err := mutex.New(q, "acked").Obtain(ctx)
	require.NoError(t, err, "granted once the replica confirms")
	require.NoError(t, l.Release(ctx))
}

// A holder whose renewals the replica misses (the link stalls after the grant), then a failover to
// that replica: without replica acknowledgement the renewals count, the replica's key expires
// before the holder's validity, and a second holder gets in while the first is still valid (the
// caveat); with it, the renewals do not count, the first lease ends on time, and the second holder
// comes after it.
func TestSentinelReplicaAckKeepsExclusionWhenRenewalsAreNotReplicated(t *testing.T) {
	for _, acked := range []bool{false, true} {
		t.Run(fmt.Sprintf("ack=%v", acked), func(t *testing.T) {
			var link *blackhole
			s := startSentinel(t, 500*time.Millisecond, func(master string) string {
				link = newBlackhole(t, master)
				return link.Addr()
			})
			const ttl = 3 * time.Second
			var opts []lease.Option
			if acked {
				opts = append(opts, lease.WithReplicaAck(1, 50*time.Millisecond))
			}
			holder, other := s.quorumWith(t, ttl, opts...), s.quorumWith(t, ttl)
			ctx := context.Background()
			l, err := mutex.New(holder, "renewed", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
			require.NoError(t, err)
			require.NoError(t, s.master.Client().Do(ctx, "wait", 1, 1000).Err(), "the replica has the grant")
			link.on.Store(true) // from now on the replica misses the renewals
			time.Sleep(ttl * 3 / 4)
			s.master.Kill()

			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			second, err := mutex.New(other, "renewed").Obtain(wctx)
			require.NoError(t, err, "the promoted replica serves the next holder")
			got := time.Now()
			require.Equal(t, s.replica.Addr(), s.masterAddr(t))
			overlap := got.Before(l.Until())
			if acked {
				assert.False(t, overlap, "second holder granted %v before the first's validity ended", l.Until().Sub(got))
			} else {
				assert.True(t, overlap, "the caveat: without acknowledgement the second holder gets in while the first is valid (granted %v after its Until)", got.Sub(l.Until()))
			}
			require.NoError(t, second.Release(ctx))
		})
	}
}
