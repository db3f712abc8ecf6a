package lease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// exercise runs every primitive on q the ways a user does — uncontended and contended (a waiter
// woken by the release), blocking and try — and fails the test on the first error.
func exercise(t *testing.T, q *lease.Quorum, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	contend := func(what string, take func() (*lease.Lease, error)) {
		t.Helper()
		first, err := take()
		require.NoError(t, err, what)
		got := make(chan error, 1)
		go func() {
			l, err := take()
			if err == nil {
				err = l.Release(ctx)
			}
			got <- err
		}()
		time.Sleep(50 * time.Millisecond) // the second one queues on the servers
		require.NoError(t, first.Release(ctx), what)
		require.NoError(t, <-got, what)
	}
	// Each primitive in a quorum of its own, as separate processes: a waiter in the same process
	// would be served by the local gate, without the servers' queue.
	m := mutex.New(q, prefix+"m", mutex.WithFencing())
	contend("mutex", func() (*lease.Lease, error) { return m.Obtain(ctx) })
	require.NoError(t, m.TryDo(ctx, func(context.Context) error { return nil }), "mutex TryDo")
	rw := rwmutex.New(q, prefix+"rw", rwmutex.WithFencing())
	contend("rwmutex writer", func() (*lease.Lease, error) { return rw.Obtain(ctx) })
	require.NoError(t, rw.RDo(ctx, func(context.Context) error { return nil }), "rwmutex RDo")
	require.NoError(t, rw.TryRDo(ctx, func(context.Context) error { return nil }), "rwmutex TryRDo")
	s := semaphore.New(q, prefix+"s", 2, semaphore.WithFencing())
	contend("semaphore", func() (*lease.Lease, error) { return s.Obtain(ctx, 2) })
	require.NoError(t, s.Acquire(ctx, 1), "semaphore Acquire")
	require.NoError(t, s.TryAcquire(ctx, 1), "semaphore TryAcquire")
	require.NoError(t, s.Release(ctx, 2), "semaphore Release")
}

// operate looks up, lists and breaks a lock, and asks for the nodes' health, failing the test on
// the first error.
func operate(t *testing.T, q *lease.Quorum, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := mutex.New(q, prefix+"op").Obtain(ctx)
	require.NoError(t, err)
	st, err := q.Inspect(ctx, prefix+"op")
	require.NoError(t, err)
	require.Len(t, st.Holders, 1)
	names, err := q.List(ctx, prefix+"*")
	require.NoError(t, err)
	assert.Contains(t, names, prefix+"op")
	_, err = q.Break(ctx, prefix+"op")
	require.NoError(t, err)
	health, err := q.Health(ctx)
	require.NoError(t, err)
	for _, h := range health {
		require.NoError(t, h.Err)
		require.NoError(t, h.ACL)
		assert.NotEmpty(t, h.Version, "INFO answered")
		assert.NotEmpty(t, h.Eviction, "CONFIG GET answered")
	}
	<-l.Done()
	require.ErrorIs(t, l.Err(), lease.ErrLost)
}

// aclFor returns the README's minimal ACL rules for a key prefix.
func aclFor(prefix string) string {
	return strings.ReplaceAll(minimalACL, "quorumsync:", prefix)
}

func TestEveryPrimitiveWorksUnderTheMinimalACL(t *testing.T) {
	for _, prefix := range []string{"quorumsync:", "billing:locks:"} {
		t.Run(prefix, func(t *testing.T) {
			nodes := redistest.Start(t, 3)
			setUser(t, nodes, "app", "on >pw", aclFor(prefix))
			var opts []lease.Option
			if prefix != "quorumsync:" {
				opts = append(opts, lease.WithKeyPrefix(prefix))
			}
			q := newQuorum(t, userClients(t, nodes, "app", "pw"), opts...)
			exercise(t, q, "acl-")
			operate(t, q, "acl-")
			redistest.RequireTTLs(t, nodes, "*")
		})
	}
}

// Each permission the minimal ACL grants is needed: without it NewQuorum refuses the node, and an
// acquire on a quorum made before the ACL changed fails at once, each saying what is missing.
func TestEachMissingPermissionIsMisconfigured(t *testing.T) {
	nodes := redistest.Start(t, 1)
	for _, c := range []struct {
		remove string // the rule that takes the permission away
		words  string // what the error must say
	}{
		{"-zadd", "ZADD"},
		{"-hset", "HSET"},
		{"-publish", "PUBLISH"},
		{"-evalsha -eval", "'eval' command"},
		{"-script|load", "SCRIPT LOAD"},
		{"resetkeys ~other:*", "keys"},
		{"resetchannels &other:*", "channel"},
	} {
		t.Run(c.remove, func(t *testing.T) {
			user := fmt.Sprintf("u%d", time.Now().UnixNano())
			setUser(t, nodes, user, "on >pw", minimalACL, c.remove)
			_, err := lease.NewQuorum(context.Background(), userClients(t, nodes, user, "pw"), quiet)
			require.ErrorIs(t, err, lease.ErrMisconfigured)
			assert.Contains(t, err.Error(), c.words)
			assert.Contains(t, err.Error(), "node 0 ("+nodes[0].Addr()+")")
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		setUser(t, nodes, "pw-user", "on >right", minimalACL)
		_, err := lease.NewQuorum(context.Background(), userClients(t, nodes, "pw-user", "wrong"), quiet)
		require.ErrorIs(t, err, lease.ErrMisconfigured)
		assert.Contains(t, err.Error(), "user name or password")
	})
	t.Run("no INFO or CONFIG: skipped, logged", func(t *testing.T) {
		setUser(t, nodes, "noinfo", "on >pw", minimalACL, "-info -config|get")
		var log strings.Builder
		q, err := lease.NewQuorum(context.Background(), userClients(t, nodes, "noinfo", "pw"), lease.WithLogger(newTextLogger(&log)))
		require.NoError(t, err)
		require.NoError(t, q.Close(context.Background()))
		assert.Contains(t, log.String(), "start-up check skipped")
		assert.Contains(t, log.String(), "INFO")
		assert.Contains(t, log.String(), "CONFIG GET")
	})
	// A node that refuses counts as a failed vote while the others can make a quorum: one of
	// three misconfigured is an outage of one node, not of the lock; two of three is
	// misconfigured.
	t.Run("refused by a minority, then a majority", func(t *testing.T) {
		three := redistest.Start(t, 3)
		setUser(t, three, "some", "on >pw", minimalACL)
		q := newQuorum(t, userClients(t, three, "some", "pw"))
		setUser(t, three[2:], "some", "resetkeys ~other:*")
		ctx := context.Background()
		for _, a := range acquirers {
			release, err := a.hold(ctx, q, "minority")
			require.NoError(t, err, "%s: one refusing node of three", a.pkg)
			release()
		}
		setUser(t, three[1:2], "some", "resetkeys ~other:*")
		err := mutex.New(q, "majority").Lock(ctx)
		require.ErrorIs(t, err, lease.ErrMisconfigured)
		assert.Contains(t, err.Error(), "node 1")
		assert.Contains(t, err.Error(), "node 2")
	})
	// At call time: the quorum was made with every permission; the administrator then takes
	// one away. The acquire's error names the command, which the server's reply to a script does
	// not (it names only the script's hash).
	t.Run("revoked at call time", func(t *testing.T) {
		setUser(t, nodes, "later", "on >pw", minimalACL)
		q := newQuorum(t, userClients(t, nodes, "later", "pw"))
		setUser(t, nodes, "later", "-zadd")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := semaphore.New(q, "revoked", 3).Acquire(ctx, 2)
		require.ErrorIs(t, err, lease.ErrMisconfigured)
		assert.Contains(t, err.Error(), "ZADD")
		assert.Less(t, time.Since(start), 5*time.Second, "retried what cannot heal")
		redistest.RequireNoLockKeysWithin(t, nodes, "*", 2*time.Second)
	})
}
