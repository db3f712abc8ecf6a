package engine_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
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

// cmdLog keeps every command a client sends, as a hook that formats commands (redisotel's, a
// logger's) sees it.
type cmdLog struct {
	mu   sync.Mutex
	cmds []string
}

func (h *cmdLog) add(cmd redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, cmd.String())
}

func (h *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}
func (h *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.add(cmd)
		}
		return next(ctx, cmds)
	}
}

// moved returns how many MOVED replies the masters have sent.
func moved(t *testing.T, masters []*redistest.Node) int {
	t.Helper()
	n := 0
	for _, m := range masters {
		info, err := m.Client().Info(context.Background(), "errorstats").Result()
		require.NoError(t, err)
		for line := range strings.Lines(info) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "errorstat_MOVED:count="); ok {
				c, err := strconv.Atoi(rest)
				require.NoError(t, err)
				n += c
			}
		}
	}
	return n
}

// Most keys and the token go to go-redis by pointer, so that boxing them allocates nothing. Every
// primitive's commands must still read as text to a hook that formats them, and, on a Cluster,
// reach the shard that owns their keys the first time: go-redis routes by the first key's text.
func TestCommandsReadAsTextAndGoToTheirShard(t *testing.T) {
	ctx := context.Background()
	masters := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(redistest.ClusterOptions(masters))
	t.Cleanup(func() { _ = c.Close() })
	log := &cmdLog{}
	c.AddHook(log)
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{c}, lease.WithTTL(600*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(ctx) })
	before := moved(t, masters)

	// The check can fail: a key sent to a shard that does not own it is answered MOVED.
	for _, m := range masters {
		_ = m.Client().Get(ctx, "quorumsync:probe:"+m.Addr()).Err()
	}
	require.Greater(t, moved(t, masters), before, "no MOVED counted for keys sent to the wrong shards")
	before = moved(t, masters)

	names := []string{"a", "orders:42", "}odd{", "ünï"} // no spaces: the check splits commands on them
	for _, name := range names {
		// Uncontended, then contended (a queued waiter, a handover), held past a renewal.
		m := mutex.New(q, name)
		require.NoError(t, m.Lock(ctx))
		require.NoError(t, m.Unlock(ctx))
		require.NoError(t, m.Lock(ctx))
		waiter := mutex.New(q, name) // the same name from a second Mutex: it queues
		got := make(chan error, 1)
		go func() { got <- waiter.Lock(ctx) }()
		time.Sleep(400 * time.Millisecond) // past a renewal (TTL/3)
		require.NoError(t, m.Unlock(ctx))
		require.NoError(t, <-got)
		require.NoError(t, waiter.Unlock(ctx))

		fenced := mutex.New(q, name+":fenced", mutex.WithFencing())
		require.NoError(t, fenced.Lock(ctx))
		require.NoError(t, fenced.Unlock(ctx))

		rw := rwmutex.New(q, name)
		require.NoError(t, rw.RLock(ctx))
		require.NoError(t, rw.RUnlock(ctx))
		require.NoError(t, rw.Lock(ctx))
		require.NoError(t, rw.Unlock(ctx))

		s := semaphore.New(q, name, 3)
		require.NoError(t, s.Acquire(ctx, 1))
		require.NoError(t, s.Acquire(ctx, 2))
		require.NoError(t, s.Release(ctx, 3))
	}

	assert.Equal(t, before, moved(t, masters), "a command went to a shard that does not own its keys")
	log.mu.Lock()
	defer log.mu.Unlock()
	scripts, sets := 0, 0
	for _, cmd := range log.cmds {
		assert.NotContains(t, cmd, "0xc", "an argument reads as an address: %s", cmd)
		f := strings.Fields(cmd)
		switch f[0] {
		case "evalsha":
			scripts++
			n, err := strconv.Atoi(f[2])
			require.NoError(t, err, cmd)
			for _, k := range f[3 : 3+n] {
				assert.True(t, strings.HasPrefix(k, "quorumsync:{"), "key %q does not read as a key: %s", k, cmd)
			}
		case "set":
			sets++
			assert.Regexp(t, `^set quorumsync:\{\S+ [0-9a-f]{32}@\S+ px 600 nx`, cmd)
		}
	}
	assert.Greater(t, scripts, 10*len(names), "too few script calls seen")
	assert.GreaterOrEqual(t, sets, len(names), "too few SETs seen")
	redistest.RequireNoLockKeysWithin(t, masters, "quorumsync:{*", time.Second) // (fencing counters stay)
}
