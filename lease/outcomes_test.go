package lease_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// An acquire has four outcomes, told apart with errors.Is on every primitive, blocking and try, at
// N = 1 and N = 3 (DESIGN §9). These tests make each happen with real servers: another holder
// (busy); nodes paused with SIGSTOP or with nothing listening (unavailable); an ACL without the
// keys, a password changed under the client, a TLS server reached in plain text (misconfigured);
// and a ctx deadline during each.

// acquirer is one way to take a name: a primitive's try and blocking acquire, and how another
// process makes the name busy for it.
type acquirer struct {
	pkg   string
	try   func(ctx context.Context, q *lease.Quorum, name string) error
	block func(ctx context.Context, q *lease.Quorum, name string) error
	// hold takes the name in a way that makes try and block wait, and returns its release.
	hold func(ctx context.Context, q *lease.Quorum, name string) (func(), error)
}

func held(l *lease.Lease, err error) (func(), error) {
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release(context.Background()) }, nil
}

var acquirers = []acquirer{
	{
		pkg:   "mutex",
		try:   func(ctx context.Context, q *lease.Quorum, n string) error { return mutex.New(q, n).TryLock(ctx) },
		block: func(ctx context.Context, q *lease.Quorum, n string) error { return mutex.New(q, n).Lock(ctx) },
		hold: func(ctx context.Context, q *lease.Quorum, n string) (func(), error) {
			return held(mutex.New(q, n).Obtain(ctx))
		},
	},
	{
		pkg: "mutex.TryDo",
		try: func(ctx context.Context, q *lease.Quorum, n string) error {
			return mutex.New(q, n).TryDo(ctx, func(context.Context) error { return errFnRan })
		},
		block: func(ctx context.Context, q *lease.Quorum, n string) error {
			return mutex.New(q, n).Do(ctx, func(context.Context) error { return nil })
		},
		hold: func(ctx context.Context, q *lease.Quorum, n string) (func(), error) {
			return held(mutex.New(q, n).Obtain(ctx))
		},
	},
	{
		pkg:   "rwmutex writer",
		try:   func(ctx context.Context, q *lease.Quorum, n string) error { return rwmutex.New(q, n).TryLock(ctx) },
		block: func(ctx context.Context, q *lease.Quorum, n string) error { return rwmutex.New(q, n).Lock(ctx) },
		hold: func(ctx context.Context, q *lease.Quorum, n string) (func(), error) {
			return held(rwmutex.New(q, n).ObtainRead(ctx))
		},
	},
	{
		pkg:   "rwmutex reader",
		try:   func(ctx context.Context, q *lease.Quorum, n string) error { return rwmutex.New(q, n).TryRLock(ctx) },
		block: func(ctx context.Context, q *lease.Quorum, n string) error { return rwmutex.New(q, n).RLock(ctx) },
		hold: func(ctx context.Context, q *lease.Quorum, n string) (func(), error) {
			return held(rwmutex.New(q, n).Obtain(ctx))
		},
	},
	{
		pkg: "semaphore",
		try: func(ctx context.Context, q *lease.Quorum, n string) error {
			return semaphore.New(q, n, 2).TryAcquire(ctx, 2)
		},
		block: func(ctx context.Context, q *lease.Quorum, n string) error {
			return semaphore.New(q, n, 2).Acquire(ctx, 2)
		},
		hold: func(ctx context.Context, q *lease.Quorum, n string) (func(), error) {
			return held(semaphore.New(q, n, 2).Obtain(ctx, 1))
		},
	},
}

var errFnRan = errors.New("fn ran")

// outcome is what an acquire's error must match, and must not.
type outcome struct {
	is    []error
	isNot []error
}

var (
	busy          = outcome{is: []error{lease.ErrNotAcquired}, isNot: []error{lease.ErrUnavailable, lease.ErrMisconfigured}}
	unavailable   = outcome{is: []error{lease.ErrUnavailable}, isNot: []error{lease.ErrNotAcquired, lease.ErrMisconfigured}}
	misconfigured = outcome{is: []error{lease.ErrMisconfigured}, isNot: []error{lease.ErrNotAcquired, lease.ErrUnavailable, context.DeadlineExceeded}}
)

func (o outcome) check(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	for _, want := range o.is {
		assert.ErrorIs(t, err, want, what)
	}
	for _, not := range o.isNot {
		assert.NotErrorIs(t, err, not, what)
	}
	assert.NotErrorIs(t, err, errFnRan, "%s: fn ran", what)
	assert.NotContains(t, err.Error(), "\n", what)
}

// fast are the options of a quorum whose tests wait out node timeouts: nodes paused or gone.
var fast = []lease.Option{lease.WithTTL(time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}

// quiet is a logger for quorums whose start-up warnings are expected.
var quiet = lease.WithLogger(slog.New(slog.DiscardHandler))

func newQuorum(t *testing.T, clients []redis.UniversalClient, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	// A node timeout long beside a loaded machine's scheduling delays, so that a busy name never
	// reads as unavailable because a healthy node was slow to answer; the rows about unavailable
	// nodes ask for a short one.
	q, err := lease.NewQuorum(context.Background(), clients, append([]lease.Option{quiet, lease.WithTTL(2 * time.Second), lease.WithNodeTimeout(250 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// minimalACL is the README's minimal ACL for the default key prefix, without the user's name and
// password.
const minimalACL = "~quorumsync:* &quorumsync:* -@all +set +get +del +exists +pexpire +pttl +incr +hget +hset +hdel +hincrby " +
	"+zadd +zrem +zcard +zscore +zrange +zrangebyscore +zremrangebyscore +publish +time +eval +evalsha +script|load " +
	"+subscribe +unsubscribe +ping +info +config|get +scan"

// setUser runs ACL SETUSER name rules... on every node, as the default user.
func setUser(t *testing.T, nodes []*redistest.Node, name string, rules ...string) {
	t.Helper()
	for _, n := range nodes {
		args := []any{"acl", "setuser", name}
		for _, r := range rules {
			for _, f := range strings.Fields(r) {
				args = append(args, f)
			}
		}
		require.NoError(t, n.Client().Do(context.Background(), args...).Err())
	}
}

// userClients returns clients of nodes that log in as name with password.
func userClients(t *testing.T, nodes []*redistest.Node, name, password string) []redis.UniversalClient {
	t.Helper()
	cs := make([]redis.UniversalClient, len(nodes))
	for i, n := range nodes {
		o := n.Options()
		o.Username, o.Password = name, password
		c := redis.NewClient(o)
		t.Cleanup(func() { _ = c.Close() })
		cs[i] = c
	}
	return cs
}

func TestEveryAcquireTellsItsOutcome(t *testing.T) {
	for _, n := range []int{1, 3} {
		// down is how many nodes a row takes away: all of them at N=1, a majority at N=3.
		down := n/2 + 1
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			t.Parallel()
			t.Run("busy", func(t *testing.T) {
				nodes := redistest.Start(t, n)
				q := newQuorum(t, redistest.Clients(nodes))
				other := newQuorum(t, redistest.Clients(nodes))
				for i, a := range acquirers {
					name := fmt.Sprintf("busy-%d", i)
					release, err := a.hold(context.Background(), other, name)
					require.NoError(t, err, a.pkg)
					err = a.try(context.Background(), q, name)
					busy.check(t, err, a.pkg+" try")
					assert.Contains(t, err.Error(), fmt.Sprintf("%q", name), "%s: the error names the lock", a.pkg)
					pkg := strings.FieldsFunc(a.pkg, func(r rune) bool { return r == '.' || r == ' ' })[0]
					assert.True(t, strings.HasPrefix(err.Error(), pkg+": "), "%s: the error names the package called: %q", a.pkg, err)
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					err = a.block(ctx, q, name)
					cancel()
					busy.check(t, err, a.pkg+" blocking, deadline")
					assert.ErrorIs(t, err, context.DeadlineExceeded, a.pkg)
					release()
				}
				redistest.RequireNoLockKeysWithin(t, nodes, "*", 2*time.Second)
			})
			for _, fault := range []struct {
				name  string
				apply func(*redistest.Node)
				heal  func(*redistest.Node)
			}{
				{"unavailable/stopped", (*redistest.Node).Stop, (*redistest.Node).Continue},
				{"unavailable/nothing-listening", (*redistest.Node).Kill, nil},
			} {
				t.Run(fault.name, func(t *testing.T) {
					nodes := redistest.Start(t, n)
					q := newQuorum(t, redistest.Clients(nodes), fast...)
					for _, nd := range nodes[n-down:] {
						fault.apply(nd)
					}
					if fault.heal != nil {
						defer func() {
							for _, nd := range nodes[n-down:] {
								fault.heal(nd)
							}
						}()
					}
					for i, a := range acquirers {
						name := fmt.Sprintf("down-%d", i)
						err := a.try(context.Background(), q, name)
						unavailable.check(t, err, a.pkg+" try")
						var ne *lease.NodeError
						assert.ErrorAs(t, err, &ne, "%s: carries the node errors", a.pkg)
						ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
						err = a.block(ctx, q, name)
						cancel()
						unavailable.check(t, err, a.pkg+" blocking, deadline")
						assert.ErrorIs(t, err, context.DeadlineExceeded, a.pkg)
						assert.ErrorAs(t, err, &ne, "%s: carries the last round's node errors", a.pkg)
					}
				})
			}
			t.Run("misconfigured/no-key-permission", func(t *testing.T) {
				nodes := redistest.Start(t, n)
				setUser(t, nodes, "app", "on >pw", minimalACL)
				q := newQuorum(t, userClients(t, nodes, "app", "pw"))
				// The administrator narrows the user's keys while the quorum runs.
				setUser(t, nodes, "app", "resetkeys ~other:*")
				checkMisconfigured(t, q, "keys")
			})
			t.Run("misconfigured/password-changed", func(t *testing.T) {
				nodes := redistest.Start(t, n)
				setUser(t, nodes, "app", "on >pw", minimalACL)
				q := newQuorum(t, userClients(t, nodes, "app", "pw"))
				setUser(t, nodes, "app", "resetpass >changed")
				for _, nd := range nodes {
					require.NoError(t, nd.Client().Do(context.Background(), "client", "kill", "user", "app").Err())
				}
				checkMisconfigured(t, q, "user name or password")
			})
			t.Run("misconfigured/tls-server-plain-client", func(t *testing.T) {
				nodes := redistest.Start(t, n, redistest.WithTLS())
				plain := make([]redis.UniversalClient, n)
				for i, nd := range nodes {
					o := nd.Options()
					o.TLSConfig = nil
					c := redis.NewClient(o)
					t.Cleanup(func() { _ = c.Close() })
					plain[i] = c
				}
				// NewQuorum says so when the nodes answer...
				_, err := lease.NewQuorum(context.Background(), plain, quiet)
				require.ErrorIs(t, err, lease.ErrMisconfigured)
				assert.Contains(t, err.Error(), "speaks TLS")
				// ...and an acquire says so when they did not answer NewQuorum.
				for _, nd := range nodes {
					nd.Stop()
				}
				q := newQuorum(t, plain)
				for _, nd := range nodes {
					nd.Continue()
				}
				// Calls skip a node that timed out until its probe hears from it; the probe then
				// finds what the node speaks.
				require.Eventually(t, func() bool {
					return errors.Is(mutex.New(q, "probe").TryLock(context.Background()), lease.ErrMisconfigured)
				}, 5*time.Second, 20*time.Millisecond)
				checkMisconfigured(t, q, "speaks TLS")
			})
		})
	}
}

// checkMisconfigured checks that every acquirer fails at once, blocking or not, with an error
// matching ErrMisconfigured whose text contains words.
func checkMisconfigured(t *testing.T, q *lease.Quorum, words string) {
	t.Helper()
	for i, a := range acquirers {
		name := fmt.Sprintf("mis-%d", i)
		err := a.try(context.Background(), q, name)
		misconfigured.check(t, err, a.pkg+" try")
		assert.Contains(t, err.Error(), words, a.pkg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err = a.block(ctx, q, name)
		cancel()
		misconfigured.check(t, err, a.pkg+" blocking")
		assert.Less(t, time.Since(start), 5*time.Second, "%s: a blocking acquire retried what cannot heal", a.pkg)
	}
}

// newTextLogger returns a logger that writes text lines to w.
func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestLockerReportsFailuresWhileItWaitsAtMostOnceASecond(t *testing.T) {
	nodes := redistest.Start(t, 1)
	var mu sync.Mutex
	var reports []error
	q := newQuorum(t, redistest.Clients(nodes), fast...)
	m := mutex.New(q, "locker-outage", mutex.WithErrorHandler(func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	}))
	nodes[0].Stop()
	locked := make(chan struct{})
	go func() {
		m.Locker().Lock()
		close(locked)
	}()
	time.Sleep(2500 * time.Millisecond)
	nodes[0].Continue()
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("the Locker did not lock once the node was back")
	}
	m.Locker().Unlock()
	mu.Lock()
	defer mu.Unlock()
	// Failed rounds every few milliseconds for 2.5s, folded into one report a second.
	require.GreaterOrEqual(t, len(reports), 2, "reports: %v", reports)
	assert.LessOrEqual(t, len(reports), 4, "reports: %v", reports)
	folded := 0
	for _, err := range reports {
		assert.ErrorIs(t, err, lease.ErrUnavailable)
		if strings.Contains(err.Error(), "more failed attempts since the last report") {
			folded++
		}
	}
	assert.GreaterOrEqual(t, folded, 1, "no report counts the failures it stands for: %v", reports)
}

func TestGoroutinesQueuedInTheProcessGetTheOutageToo(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, redistest.Clients(nodes), fast...)
	nodes[1].Stop()
	nodes[2].Stop()
	defer nodes[1].Continue()
	defer nodes[2].Continue()
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			errs <- mutex.New(q, "queued").Lock(ctx)
		}()
	}
	for range 10 {
		err := <-errs
		unavailable.check(t, err, "a goroutine that waited")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var ne *lease.NodeError
		assert.ErrorAs(t, err, &ne, "carries the last round's node errors: %v", err)
		assert.Contains(t, err.Error(), `"queued"`)
	}
}

// TryDo is a "run at most one at a time, skip when another runs" guard across replicas. With one
// node exactly one of three simultaneous tries runs the job. With three nodes at most one does:
// tries that reach the nodes in different orders can split the vote so that none gets a majority
// and all skip (the doc says so).
func TestTryDoRunsTheJobAtMostOnceAcrossReplicas(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			var ran atomic.Int32
			start := make(chan struct{})
			errs := make(chan error, 3)
			for range 3 {
				q := newQuorum(t, redistest.Clients(nodes)) // a replica: a process of its own
				go func() {
					<-start
					errs <- mutex.New(q, "cron").TryDo(context.Background(), func(context.Context) error {
						ran.Add(1)
						time.Sleep(time.Second) // long beside a try's one round trip, even on a loaded machine
						return nil
					})
				}()
			}
			close(start)
			skipped := 0
			for range 3 {
				if err := <-errs; err != nil {
					busy.check(t, err, "a replica that skipped")
					skipped++
				}
			}
			assert.Equal(t, 3-int(ran.Load()), skipped)
			if n == 1 {
				assert.Equal(t, int32(1), ran.Load(), "one node: exactly one replica runs the job")
			} else {
				assert.LessOrEqual(t, ran.Load(), int32(1), "the job ran on more than one replica")
			}
		})
	}
}

// A zero Lease, like a nil one, reads as a lease not held, and its methods do not panic.
func TestAZeroLeaseReadsAsNotHeld(t *testing.T) {
	for _, l := range []*lease.Lease{nil, new(lease.Lease)} {
		assert.False(t, l.Valid())
		assert.True(t, l.Until().IsZero())
		assert.ErrorIs(t, l.Err(), lease.ErrNotHeld)
		assert.ErrorIs(t, l.Release(context.Background()), lease.ErrNotHeld)
		_, err := l.Fence()
		assert.ErrorIs(t, err, lease.ErrInvalidArgument)
		_, err = l.Fences()
		assert.ErrorIs(t, err, lease.ErrInvalidArgument)
		assert.Nil(t, l.Units())
		assert.Equal(t, lease.Holder{}, l.Holder())
		select {
		case <-l.Done():
		default:
			t.Error("Done of a lease not held is open")
		}
	}
}
