package quorumsynctest_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exclusion checks that two quorums over the same servers (two processes, as far as the servers
// can tell) exclude each other, and that a waiter is served when the holder releases.
func exclusion(t *testing.T, s *quorumsynctest.Servers) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var qs []*lease.Quorum
	for range 2 {
		q, err := lease.Dial(ctx, s.URLs(), lease.WithTTL(time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close(context.Background()) })
		qs = append(qs, q)
	}
	a, b := mutex.New(qs[0], "job"), mutex.New(qs[1], "job")
	require.NoError(t, a.Lock(ctx))
	require.ErrorIs(t, b.TryLock(ctx), lease.ErrNotAcquired, "held by the other quorum")
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx) }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, a.Unlock(ctx))
	require.NoError(t, <-got)
	require.NoError(t, b.Unlock(ctx))
}

func TestNewGivesAQuorumThatLocks(t *testing.T) {
	q := quorumsynctest.New(t, 3)
	m := mutex.New(q, "x")
	require.NoError(t, m.Lock(context.Background()))
	require.NoError(t, m.Unlock(context.Background()))
}

func TestServersOnPathAndEmbedded(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		s := quorumsynctest.NewServers(t, 3)
		assert.Len(t, s.URLs(), 3)
		assert.False(t, s.Embedded(), "redis-server is on PATH in this project's test runs")
		exclusion(t, s)
	})
	t.Run("QUORUMSYNCTEST_EMBEDDED=0 means no", func(t *testing.T) {
		t.Setenv("QUORUMSYNCTEST_EMBEDDED", "0")
		s := quorumsynctest.NewServers(t, 1)
		assert.False(t, s.Embedded())
	})
	t.Run("embedded", func(t *testing.T) {
		t.Setenv("QUORUMSYNCTEST_EMBEDDED", "1")
		s := quorumsynctest.NewServers(t, 3)
		assert.True(t, s.Embedded())
		exclusion(t, s)
	})
	t.Run("a lease left behind expires on embedded servers", func(t *testing.T) {
		s, err := quorumsynctest.StartEmbedded(1)
		require.NoError(t, err)
		defer s.Close()
		ctx := context.Background()
		// A holder that crashed: its lock key, with what was left of its TTL, and nobody renewing.
		opt, err := redis.ParseURL(s.URLs()[0])
		require.NoError(t, err)
		raw := redis.NewClient(opt)
		defer raw.Close()
		require.NoError(t, raw.Set(ctx, "quorumsync:{left}", "crashed", 300*time.Millisecond).Err())
		q, err := lease.Dial(ctx, s.URLs())
		require.NoError(t, err)
		defer q.Close(ctx)
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, mutex.New(q, "left").Lock(wctx))
		assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "not before the key expired")
	})
	_, err := quorumsynctest.Start(0)
	require.Error(t, err)
	mine, err := quorumsynctest.Use(" localhost:6379, rediss://example.com:6380 ", 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"redis://localhost:6379", "rediss://example.com:6380"}, mine.URLs())
	assert.False(t, mine.Embedded())
	secret, err := quorumsynctest.Use("redis://app:hunter2@localhost:6379", 1)
	require.NoError(t, err)
	assert.NotContains(t, secret.String(), "hunter2", "String hides passwords")
	assert.Contains(t, secret.String(), "localhost:6379")
	mine.Close() // not ours to stop: does nothing
	started, err := quorumsynctest.Use("", 2)
	require.NoError(t, err)
	assert.True(t, started.Embedded())
	assert.Len(t, started.URLs(), 2)
	started.Close()
}
