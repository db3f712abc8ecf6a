package lease_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// waitFor polls f until it returns true, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// modes lists the holdings' modes and weights, in order.
func modes(hs []lease.Holding) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Mode+":"+string(rune('0'+h.Weight)))
	}
	return out
}

// Inspect sees, for one name, every primitive's holders and waiters from other quorums (other
// processes, as far as the servers can tell), with their labels, their time left on each of the
// three nodes, the fencing counter, and the waiters in the order they are served.
func TestInspectShowsHoldersAndWaitersOfEveryPrimitive(t *testing.T) {
	nodes := redistest.Start(t, 3)
	holders, waiters, looker := newQuorum(t, redistest.Clients(nodes)), newQuorum(t, redistest.Clients(nodes)), newQuorum(t, redistest.Clients(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const name = "orders:{42} odd name"
	label := "job=nightly report: ünïcode 100%"

	lock, err := mutex.New(holders, name, mutex.WithLabel(label), mutex.WithFencing()).Obtain(ctx)
	require.NoError(t, err)
	fence, err := lock.Fence()
	require.NoError(t, err)
	rw := rwmutex.New(holders, name, rwmutex.WithLabel("reader"))
	require.NoError(t, rw.RLock(ctx))
	sem := semaphore.New(holders, name, 3, semaphore.WithLabel("pool"))
	require.NoError(t, sem.Acquire(ctx, 2))

	// Waiters, queued in this order on the servers.
	done := make(chan error, 3)
	go func() { done <- mutex.New(waiters, name, mutex.WithLabel("w1")).Lock(ctx) }()
	waitFor(t, 5*time.Second, "the mutex waiter queued", func() bool {
		st, err := looker.Inspect(ctx, name)
		return err == nil && len(st.Waiters) == 1
	})
	go func() { done <- rwmutex.New(waiters, name).Lock(ctx) }()
	waitFor(t, 5*time.Second, "the writer queued", func() bool {
		st, err := looker.Inspect(ctx, name)
		return err == nil && len(st.Waiters) == 2
	})
	go func() { done <- semaphore.New(waiters, name, 3).Acquire(ctx, 2) }()
	var st lease.State
	waitFor(t, 5*time.Second, "the semaphore waiter queued, seen by every node", func() bool {
		// A node this loaded machine kept from answering within the node timeout is skipped
		// for a moment: look again.
		st, err = looker.Inspect(ctx, name)
		return err == nil && len(st.Waiters) == 3 && slices.Equal(st.NodeErrs, []error{nil, nil, nil})
	})

	assert.Equal(t, name, st.Name)
	assert.Equal(t, []error{nil, nil, nil}, st.NodeErrs)
	require.Equal(t, []string{"lock:1", "read:1", "permits:2"}, modes(st.Holders))
	assert.Equal(t, []string{"lock:1", "write:1", "permits:2"}, modes(st.Waiters), "queue order")
	host, _ := os.Hostname()
	for _, h := range append(st.Holders, st.Waiters...) {
		assert.Len(t, h.Token, 32)
		assert.Equal(t, os.Getpid(), h.PID)
		assert.NotEmpty(t, h.Host)
		if host != "" && !strings.ContainsAny(host, " :") {
			assert.Equal(t, host, h.Host)
		}
		assert.WithinDuration(t, time.Now(), h.Since, 30*time.Second)
		require.Len(t, h.TTL, 3)
		for i, ttl := range h.TTL {
			assert.True(t, ttl > 0 && ttl <= 2*time.Second, "%s on node %d: %v left", h.Mode, i, ttl)
		}
	}
	assert.Equal(t, lock.Holder().Token, st.Holders[0].Token)
	assert.Equal(t, label, st.Holders[0].Label, "the label comes back as it was given")
	assert.Equal(t, label, lock.Holder().Label)
	assert.Equal(t, fence, st.Holders[0].Fence)
	assert.Equal(t, "reader", st.Holders[1].Label)
	assert.Equal(t, "pool", st.Holders[2].Label)
	assert.Equal(t, "w1", st.Waiters[0].Label)

	// A node that does not answer is in NodeErrs, and missing from the TTLs.
	nodes[2].Stop()
	st, err = looker.Inspect(ctx, name)
	nodes[2].Continue()
	require.NoError(t, err)
	var ne *lease.NodeError
	require.ErrorAs(t, st.NodeErrs[2], &ne)
	assert.Equal(t, 2, ne.Index)
	require.NotEmpty(t, st.Holders)
	assert.Zero(t, st.Holders[0].TTL[2])
	assert.Positive(t, st.Holders[0].TTL[0])
	// Most nodes not answering: a holder may hold unseen, so unavailable, with what one node has.
	nodes[1].Stop()
	nodes[2].Stop()
	st, err = looker.Inspect(ctx, name)
	nodes[1].Continue()
	nodes[2].Continue()
	require.ErrorIs(t, err, lease.ErrUnavailable)
	require.NotEmpty(t, st.Holders, "the answering node's holders are still returned")

	require.NoError(t, lock.Release(ctx))
	require.NoError(t, rw.RUnlock(ctx))
	require.NoError(t, sem.Release(ctx, 2))
	for range 3 {
		require.NoError(t, <-done)
	}
}

// Break removes every holder of a name on every node and wakes the waiters as a release does; a
// broken holder learns it at its next renewal — within TTL/3 and a round trip — with a cause that
// says so.
func TestBreakWakesTheWaitersAndTellsTheHolder(t *testing.T) {
	nodes := redistest.Start(t, 3)
	const ttl = 3 * time.Second
	holders := newQuorum(t, redistest.Clients(nodes), lease.WithTTL(ttl))
	waiters, admin := newQuorum(t, redistest.Clients(nodes)), newQuorum(t, redistest.Clients(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type held struct {
		name string
		l    *lease.Lease
		wait func(context.Context) error
	}
	m, err := mutex.New(holders, "job", mutex.WithLabel("stuck")).Obtain(ctx)
	require.NoError(t, err)
	w, err := rwmutex.New(holders, "table").Obtain(ctx)
	require.NoError(t, err)
	s, err := semaphore.New(holders, "pool", 2).Obtain(ctx, 2)
	require.NoError(t, err)
	cases := []held{
		{"job", m, mutex.New(waiters, "job").Lock},
		{"table", w, rwmutex.New(waiters, "table").RLock},
		{"pool", s, func(ctx context.Context) error { return semaphore.New(waiters, "pool", 2).Acquire(ctx, 1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan time.Time, 1)
			go func() {
				if err := c.wait(ctx); err == nil {
					got <- time.Now()
				}
				close(got)
			}()
			waitFor(t, 5*time.Second, "the waiter queued", func() bool {
				st, err := admin.Inspect(ctx, c.name)
				return err == nil && len(st.Waiters) == 1
			})
			broke := time.Now()
			st, err := admin.Break(ctx, c.name)
			require.NoError(t, err)
			require.Len(t, st.Holders, 1, "Break returns the holder it removed")
			assert.Equal(t, c.l.Holder().Token, st.Holders[0].Token)

			at, ok := <-got
			require.True(t, ok, "the waiter acquired")
			assert.Less(t, at.Sub(broke), ttl/3, "the waiter was woken, not left to find the name free by polling")

			select {
			case <-c.l.Done():
			case <-time.After(ttl/3 + time.Second):
				t.Fatal("the broken holder did not learn it within TTL/3 and a round trip (plus a margin)")
			}
			assert.Less(t, time.Since(broke), ttl/3+time.Second)
			require.ErrorIs(t, c.l.Err(), lease.ErrLost)
			assert.Contains(t, c.l.Err().Error(), "broken by an administrator")

			after, err := admin.Inspect(ctx, c.name)
			require.NoError(t, err)
			require.Len(t, after.Holders, 1)
			assert.NotEqual(t, st.Holders[0].Token, after.Holders[0].Token, "the waiter holds it now")
		})
	}

	// Nothing to break: no error, nothing removed.
	st, err := admin.Break(ctx, "nobody-holds-this")
	require.NoError(t, err)
	assert.Empty(t, st.Holders)

	// Given tokens, only those holders are broken: not one that took the name since.
	l, err := mutex.New(holders, "confirmed", mutex.WithErrorHandler(func(error) {})).Obtain(ctx)
	require.NoError(t, err)
	st, err = admin.Break(ctx, "confirmed", "0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	assert.Empty(t, st.Holders, "another token: nothing broken")
	st, err = admin.Break(ctx, "confirmed", l.Holder().Token)
	require.NoError(t, err)
	require.Len(t, st.Holders, 1)

	// With most nodes not answering, "nothing holds it" cannot be told: unavailable.
	nodes[1].Stop()
	nodes[2].Stop()
	_, err = admin.Break(ctx, "nobody-holds-this")
	nodes[1].Continue()
	nodes[2].Continue()
	require.ErrorIs(t, err, lease.ErrUnavailable)
}

// List finds the names in use under every primitive, odd names included, by pattern; a name
// nothing holds any more is gone from it even though its fencing counter stays.
func TestListNamesInUse(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, redistest.Clients(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	names := []string{"orders:1", "orders:2", "}odd", "~tilde", "a b{c}d", "pool"}
	require.NoError(t, mutex.New(q, names[0]).Lock(ctx))
	require.NoError(t, rwmutex.New(q, names[1]).RLock(ctx))
	require.NoError(t, mutex.New(q, names[2]).Lock(ctx))
	require.NoError(t, mutex.New(q, names[3]).Lock(ctx))
	require.NoError(t, rwmutex.New(q, names[4]).Lock(ctx))
	require.NoError(t, semaphore.New(q, names[5], 4).Acquire(ctx, 1))
	fenced := mutex.New(q, "released", mutex.WithFencing())
	require.NoError(t, fenced.Lock(ctx))
	require.NoError(t, fenced.Unlock(ctx))

	all, err := q.List(ctx, "")
	require.NoError(t, err)
	assert.ElementsMatch(t, names, all)
	some, err := q.List(ctx, "orders:*")
	require.NoError(t, err)
	assert.Equal(t, []string{"orders:1", "orders:2"}, some)
	odd, err := q.List(ctx, "}o*")
	require.NoError(t, err)
	assert.Equal(t, []string{"}odd"}, odd)
	none, err := q.List(ctx, "nothing*")
	require.NoError(t, err)
	assert.Empty(t, none)

	// Patterns match names, not keys: "a" is not "a}b", and names stored with a '~' in front
	// are found by patterns that start with a wildcard or a class.
	require.NoError(t, mutex.New(q, "a").Lock(ctx))
	require.NoError(t, mutex.New(q, "a}b").Lock(ctx))
	require.NoError(t, mutex.New(q, "~}x").Lock(ctx))
	for pattern, want := range map[string][]string{
		"a":       {"a"},
		"a*":      {"a", "a b{c}d", "a}b"},
		"?odd":    {"}odd"},
		"[}]odd":  {"}odd"},
		"~*":      {"~tilde", "~}x"},
		"?}x":     {"~}x"},
		"[^a-z]*": {"}odd", "~tilde", "~}x"},
		`a\}b`:    {"a}b"},
	} {
		got, err := q.List(ctx, pattern)
		require.NoError(t, err)
		assert.Equal(t, want, got, "pattern %q", pattern)
	}

	// A node that does not answer is said, with what the others have.
	three := redistest.Start(t, 3)
	q3 := newQuorum(t, redistest.Clients(three))
	require.NoError(t, mutex.New(q3, "seen").Lock(ctx))
	three[1].Stop()
	three[2].Stop()
	got, err := q3.List(ctx, "*")
	three[1].Continue()
	three[2].Continue()
	require.ErrorIs(t, err, lease.ErrUnavailable, "two of three did not answer")
	require.ErrorIs(t, err, lease.ErrNodeTimeout)
	assert.Contains(t, err.Error(), `unavailable "*": `, "the error names the pattern")
	assert.Equal(t, []string{"seen"}, got)
}

// Inspect, List and Break work on a Cluster node: every key of a name shares its hash tag, and
// List scans every master.
func TestOperatingOnACluster(t *testing.T) {
	masters := redistest.StartCluster(t, 3)
	client := func() redis.UniversalClient {
		c := redis.NewClusterClient(redistest.ClusterOptions(masters))
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	holders := newQuorum(t, []redis.UniversalClient{client()}, lease.WithTTL(3*time.Second))
	admin := newQuorum(t, []redis.UniversalClient{client()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	names := []string{"a", "b", "c", "orders:42", "jobs:nightly"} // spread over the shards
	var leases []*lease.Lease
	for _, name := range names {
		l, err := mutex.New(holders, name, mutex.WithLabel("cluster")).Obtain(ctx)
		require.NoError(t, err)
		leases = append(leases, l)
	}
	listed, err := admin.List(ctx, "*")
	require.NoError(t, err)
	assert.ElementsMatch(t, names, listed)
	for i, name := range names {
		st, err := admin.Inspect(ctx, name)
		require.NoError(t, err)
		require.Len(t, st.Holders, 1, name)
		assert.Equal(t, "cluster", st.Holders[0].Label)
		assert.Equal(t, leases[i].Holder().Token, st.Holders[0].Token)
	}
	_, err = admin.Break(ctx, "orders:42")
	require.NoError(t, err)
	select {
	case <-leases[3].Done():
		assert.Contains(t, leases[3].Err().Error(), "broken")
	case <-time.After(3 * time.Second):
		t.Fatal("the broken holder did not learn it")
	}
	assert.NoError(t, leases[0].Err(), "the others are untouched")
}

// The label is checked: a longer one than 128 bytes is a caller's mistake, and lookups check
// their arguments.
func TestOperatingArgumentsAreChecked(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, redistest.Clients(nodes))
	ctx := context.Background()
	err := mutex.New(q, "x", mutex.WithLabel(strings.Repeat("l", 129))).Lock(ctx)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "mutex:")
	assert.Contains(t, err.Error(), "label")
	_, err = q.Inspect(ctx, "")
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, err = q.Inspect(nil, "x") //nolint:staticcheck
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	_, err = q.Break(ctx, "")
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, err = q.Break(nil, "x") //nolint:staticcheck
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, err = q.List(nil, "*") //nolint:staticcheck
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, err = q.Health(nil) //nolint:staticcheck
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, err = lease.Dial(nil, []string{nodes[0].Addr()}) //nolint:staticcheck
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	// A cancelled ctx: the caller's own error, not a node's.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Inspect(cancelled, "x")
	require.ErrorIs(t, err, context.Canceled)
	_, err = q.Break(cancelled, "x")
	require.ErrorIs(t, err, context.Canceled)
	_, err = q.List(cancelled, "*")
	require.ErrorIs(t, err, context.Canceled)
	_, err = q.Health(cancelled)
	require.ErrorIs(t, err, context.Canceled)
	var nilQ *lease.Quorum
	_, err = nilQ.List(ctx, "*")
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	require.NoError(t, q.Close(ctx))
	_, err = q.Inspect(ctx, "x")
	require.True(t, errors.Is(err, lease.ErrClosed))
}

// Health says, per node, what NewQuorum checks at start-up: a node that does not answer, the
// persistence and eviction policy, and an ACL that lost a permission after start-up.
func TestHealthReportsEachNode(t *testing.T) {
	plain := redistest.Start(t, 2)
	aof := redistest.Start(t, 1, redistest.WithAppendOnly())
	nodes := append(plain, aof...)
	setUser(t, nodes, "ops", "on >pw", minimalACL)
	q := newQuorum(t, userClients(t, nodes, "ops", "pw"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, nodes[0].Client().ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	setUser(t, nodes[1:2], "ops", "-zadd")

	hs, err := q.Health(ctx)
	require.NoError(t, err)
	require.Len(t, hs, 3)
	for i, h := range hs {
		require.NoError(t, h.Err, "node %d", i)
		assert.Equal(t, nodes[i].Addr(), h.Addr)
		assert.Positive(t, h.Latency)
		assert.NotEmpty(t, h.Version)
		assert.Equal(t, "master", h.Role)
		assert.Zero(t, h.Replicas)
	}
	assert.Equal(t, "allkeys-lru", hs[0].Eviction)
	assert.Contains(t, strings.Join(hs[0].Warnings, "\n"), "maxmemory-policy allkeys-lru")
	assert.False(t, hs[0].AOF)
	assert.Contains(t, strings.Join(hs[0].Warnings, "\n"), "no AOF")
	assert.True(t, hs[2].AOF)
	assert.NotEmpty(t, hs[2].Fsync)
	assert.NotContains(t, strings.Join(hs[2].Warnings, "\n"), "no AOF")
	assert.NoError(t, hs[0].ACL)
	require.ErrorIs(t, hs[1].ACL, lease.ErrMisconfigured)
	assert.Contains(t, hs[1].ACL.Error(), "ZADD")

	nodes[2].Stop()
	hs, err = q.Health(ctx)
	require.NoError(t, err)
	require.Error(t, hs[2].Err)
	// Asked again, now that the node is known to be hung (suspect): still bounded.
	hs, err = q.Health(context.Background())
	nodes[2].Continue()
	require.NoError(t, err)
	var ne *lease.NodeError
	require.ErrorAs(t, hs[2].Err, &ne)
	assert.Equal(t, 2, ne.Index)
	assert.NoError(t, hs[0].Err)
}
