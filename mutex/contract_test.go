package mutex_test

// What a caller of package mutex can act on: errors that name this package and say what happened
// once, Do's three outcomes, where losses are reported, a TTL per mutex, and what the sync.Locker
// does when nothing can heal.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// takeOver makes the mutex's lease vanish under its holder, as a restart without persistence would:
// the next renewal finds it gone.
func takeOver(t *testing.T, nodes []*redistest.Node, name string) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, n.Client().Set(context.Background(), "quorumsync:{"+name+"}", "intruder", time.Minute).Err())
	}
}

func TestErrorsNameThePackageCalled(t *testing.T) {
	nodes := redistest.Start(t, 1)
	a, b := newQuorum(t, nodes), newQuorum(t, nodes)
	ma, mb := mutex.New(a, "orders:42"), mutex.New(b, "orders:42")
	ctx := context.Background()
	require.NoError(t, ma.Lock(ctx))

	err := mb.TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	assert.True(t, strings.HasPrefix(err.Error(), `mutex: not acquired "orders:42"`), "%q", err)

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = mb.Lock(cctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, `mutex: not acquired "orders:42": context deadline exceeded`, err.Error())

	err = mb.Unlock(ctx)
	require.ErrorIs(t, err, mutex.ErrNotLocked)
	assert.Equal(t, `mutex: unlock of unlocked mutex "orders:42"`, err.Error())

	err = mutex.New(a, "").Lock(ctx)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.True(t, strings.HasPrefix(err.Error(), "mutex: invalid argument name"), "%q", err)

	require.NoError(t, ma.Unlock(ctx))
	// (The package's own sentinels are gone: the errors above name the package in their text and
	// match the lease sentinels, which are the ones to match with errors.Is.)
}

// Do tells its caller whether fn failed, never ran, or succeeded with a release that failed.
func TestDoOutcomesAreDistinct(t *testing.T) {
	nodes := redistest.Start(t, 3)
	q := newQuorum(t, nodes, lease.WithTTL(3*time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	m := mutex.New(q, "do")
	ctx := context.Background()

	// fn failed.
	failed := errors.New("charge declined")
	err := m.Do(ctx, func(context.Context) error { return failed })
	require.ErrorIs(t, err, failed)
	assert.NotErrorIs(t, err, lease.ErrLost)
	assert.NotErrorIs(t, err, lease.ErrNotReleased)
	assert.Equal(t, failed, err, "fn's error comes back as it is")

	// fn never ran.
	other := mutex.New(newQuorum(t, nodes), "do")
	require.NoError(t, other.Lock(ctx))
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	ran := false
	err = m.Do(tctx, func(context.Context) error { ran = true; return nil })
	// Busy; or unavailable if, on a loaded machine, healthy nodes ran past the 50ms node timeout.
	require.True(t, errors.Is(err, lease.ErrNotAcquired) || errors.Is(err, lease.ErrUnavailable), "%v", err)
	assert.False(t, ran, "fn ran without the lock")
	require.NoError(t, other.Unlock(ctx))

	// fn succeeded, but the release reached one node of three.
	err = m.Do(ctx, func(context.Context) error {
		nodes[0].Stop()
		nodes[1].Stop()
		return nil
	})
	nodes[0].Continue()
	nodes[1].Continue()
	require.ErrorIs(t, err, lease.ErrNotReleased)
	assert.NotErrorIs(t, err, lease.ErrLost)
	var ne *lease.NodeError
	assert.ErrorAs(t, err, &ne)
	assert.NotContains(t, err.Error(), "\n")
	require.ErrorIs(t, m.Unlock(ctx), mutex.ErrNotLocked, "Do's lease is its own: it left nothing on the mutex to unlock")
}

// A loss that Do returns is not also handed to the error handler; a loss nobody is told of
// otherwise is, through the quorum's logger by default.
func TestLossesAreReportedOnceAndOnlyWhenNobodyElseHearsOfThem(t *testing.T) {
	nodes := redistest.Start(t, 1)
	var logs syncBuffer
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	m := mutex.New(q, "inDo")
	err := m.Do(context.Background(), func(ctx context.Context) error {
		takeOver(t, nodes, "inDo")
		<-ctx.Done()
		return context.Cause(ctx)
	})
	require.ErrorIs(t, err, lease.ErrLost)
	assert.Equal(t, 1, strings.Count(err.Error(), "not held"), "the cause, once: %q", err)
	time.Sleep(200 * time.Millisecond)
	assert.NotContains(t, logs.String(), "inDo", "a loss Do returned was logged too")

	held := mutex.New(q, "held")
	require.NoError(t, held.Lock(context.Background()))
	takeOver(t, nodes, "held")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `mutex: lost \"held\"`) }, 2*time.Second, 10*time.Millisecond,
		"a loss outside Do reaches the quorum's logger; log: %s", logs.String())
	require.ErrorIs(t, held.Unlock(context.Background()), lease.ErrLost)
}

// One error handler per quorum serves every mutex that has none of its own.
func TestQuorumErrorHandlerServesEveryMutex(t *testing.T) {
	nodes := redistest.Start(t, 1)
	got := make(chan error, 4)
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond), lease.WithErrorHandler(func(err error) { got <- err }))
	mine := make(chan error, 1)
	a := mutex.New(q, "a")
	b := mutex.New(q, "b", mutex.WithErrorHandler(func(err error) { mine <- err }))
	require.NoError(t, a.Lock(context.Background()))
	require.NoError(t, b.Lock(context.Background()))
	takeOver(t, nodes, "a")
	takeOver(t, nodes, "b")
	select {
	case err := <-got:
		require.ErrorIs(t, err, lease.ErrLost)
		assert.Contains(t, err.Error(), `"a"`)
	case <-time.After(2 * time.Second):
		t.Fatal("the quorum's handler was not told of a's loss")
	}
	select {
	case err := <-mine:
		assert.Contains(t, err.Error(), `"b"`)
	case <-time.After(2 * time.Second):
		t.Fatal("b's own handler was not told of its loss")
	}
	select {
	case err := <-got:
		t.Fatalf("the quorum's handler got %v too", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// A mutex takes its own TTL; one quorum serves mutexes of different TTLs.
func TestMutexTTL(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(10*time.Second), lease.WithNodeTimeout(50*time.Millisecond))
	short := mutex.New(q, "short", mutex.WithTTL(400*time.Millisecond))
	long := mutex.New(q, "long")
	sl, err := short.Obtain(context.Background())
	require.NoError(t, err)
	require.NoError(t, long.Lock(context.Background()))
	c := nodes[0].Client()
	assert.LessOrEqual(t, c.PTTL(context.Background(), "quorumsync:{short}").Val(), 400*time.Millisecond)
	assert.Greater(t, c.PTTL(context.Background(), "quorumsync:{long}").Val(), 5*time.Second)
	time.Sleep(time.Second)
	require.NoError(t, sl.Err(), "renewed at its own TTL/3")
	require.NoError(t, sl.Release(context.Background()))
	require.NoError(t, long.Unlock(context.Background()))

	err = mutex.New(q, "bad", mutex.WithTTL(100*time.Millisecond)).Lock(context.Background())
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.True(t, strings.HasPrefix(err.Error(), "mutex: invalid argument ttl"), "%q", err)
}

// A sync.Locker cannot return an error. On a closed quorum no retry can help: Lock reports the
// error and panics with it, rather than spin for ever or let the caller in unprotected.
func TestLockerPanicsOnAClosedQuorum(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q, err := lease.NewQuorum(context.Background(), redistest.Clients(nodes))
	require.NoError(t, err)
	reported := make(chan error, 1)
	l := mutex.New(q, "closed", mutex.WithErrorHandler(func(err error) { reported <- err })).Locker()
	require.NoError(t, q.Close(context.Background()))
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		l.Lock()
	}()
	err, ok := recovered.(error)
	require.True(t, ok, "Lock on a closed quorum: recovered %v; want a panic with an error", recovered)
	require.ErrorIs(t, err, lease.ErrClosed)
	require.ErrorIs(t, <-reported, lease.ErrClosed, "the error is reported before the panic")
}

// Unlock with a nil ctx changes nothing: the lock stays held (and renewed) until a real Unlock.
func TestUnlockWithNilCtxKeepsTheLock(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(300*time.Millisecond))
	m := mutex.New(q, "nilctx")
	require.NoError(t, m.Lock(context.Background()))
	//lint:ignore SA1012 checking that a nil ctx is refused
	require.ErrorIs(t, m.Unlock(nil), lease.ErrInvalidArgument) //nolint:staticcheck
	// Over three TTLs: still held only if the watchdog kept renewing it.
	time.Sleep(time.Second)
	require.ErrorIs(t, mutex.New(newQuorum(t, nodes), "nilctx").TryLock(context.Background()), lease.ErrNotAcquired)
	// Unlock(nil) neither forgot the lease (that would be ErrNotLocked) nor let it be lost
	// (ErrLost): the real Unlock releases it.
	require.NoError(t, m.Unlock(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")
}

// The lease of a mutex that could not be had (a failed TryObtain) is nil and safe to use.
func TestLeaseOfAnUnlockedMutexIsSafe(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	holder := mutex.New(newQuorum(t, nodes), "unlocked")
	require.NoError(t, holder.Lock(ctx))
	m := mutex.New(newQuorum(t, nodes), "unlocked")
	l, err := m.TryObtain(ctx)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.Nil(t, l)
	select {
	case <-l.Done():
	default:
		t.Fatal("Done of an unlocked mutex's lease is open")
	}
	assert.ErrorIs(t, l.Err(), lease.ErrNotHeld)
	assert.True(t, l.Until().IsZero())
	assert.ErrorIs(t, l.Release(ctx), lease.ErrNotHeld)
	require.NoError(t, holder.Unlock(ctx))
}
