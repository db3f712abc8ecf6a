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

	"github.com/quorumsync/quorumsync/internal/engine"
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

// renewals returns how many calls of the exclusive kind's renewal script h has seen.
func (h *cmdLog) renewals() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cmd := range h.cmds {
		if strings.HasPrefix(cmd, "evalsha "+renewHash+" ") {
			n++
		}
	}
	return n
}

var renewHash = engine.ScriptsForTest()["renew.lua"].Hash

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
// The commands cover the fast and the queued paths, a handover, a leave, renewals of every kind,
// and the EVAL a node that lost its scripts gets.
func TestCommandsReadAsTextAndGoToTheirShard(t *testing.T) {
	ctx := context.Background()
	masters := redistest.StartCluster(t, 3)
	log := &cmdLog{}
	newQuorum := func() *lease.Quorum {
		c := redis.NewClusterClient(redistest.ClusterOptions(masters))
		t.Cleanup(func() { _ = c.Close() })
		c.AddHook(log)
		q, err := lease.NewQuorum(ctx, []redis.UniversalClient{c}, lease.WithTTL(1500*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close(ctx) })
		return q
	}
	// A holder, a waiter that queues on the servers, and one that gives up and leaves the queue.
	holder, waiterQ, leaverQ := newQuorum(), newQuorum(), newQuorum()
	log.mu.Lock()
	log.cmds = nil // not NewQuorum's set-up: the acquires' and releases' commands
	log.mu.Unlock()
	before := moved(t, masters)

	// The check can fail: a key sent to a shard that does not own it is answered MOVED. The same
	// key goes to every master, so all but its owner answer MOVED, whatever the slots' layout.
	for _, m := range masters {
		_ = m.Client().Get(ctx, "quorumsync:probe").Err()
	}
	require.Equal(t, before+len(masters)-1, moved(t, masters), "MOVED replies counted for a key sent to every shard")
	before = moved(t, masters)

	use := func(name string) {
		m := mutex.New(holder, name)
		require.NoError(t, m.Lock(ctx))
		require.NoError(t, m.Unlock(ctx))
		require.NoError(t, m.Lock(ctx))
		waiter := mutex.New(waiterQ, name)
		got := make(chan error, 1)
		go func() { got <- waiter.Lock(ctx) }()
		gaveUp, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		require.ErrorIs(t, mutex.New(leaverQ, name).Lock(gaveUp), context.DeadlineExceeded)
		cancel()

		fenced := mutex.New(holder, name+":fenced", mutex.WithFencing())
		require.NoError(t, fenced.Lock(ctx))
		rw := rwmutex.New(holder, name)
		require.NoError(t, rw.RLock(ctx))
		s := semaphore.New(holder, name, 3)
		require.NoError(t, s.Acquire(ctx, 1))
		require.NoError(t, s.Acquire(ctx, 2))

		// Held until the Mutexes' renewals (at TTL/3 = 500ms) are seen; the other leases, taken
		// in the same few milliseconds, renew in the same batches.
		renewed := log.renewals()
		require.Eventually(t, func() bool { return log.renewals() >= renewed+2 }, 10*time.Second, 20*time.Millisecond,
			"the two Mutexes' leases were not renewed")
		require.NoError(t, m.Unlock(ctx)) // hands the name to the waiter
		require.NoError(t, <-got)
		require.NoError(t, waiter.Unlock(ctx))
		require.NoError(t, fenced.Unlock(ctx))
		require.NoError(t, rw.RUnlock(ctx))
		require.NoError(t, rw.Lock(ctx))
		require.NoError(t, rw.Unlock(ctx))
		require.NoError(t, s.Release(ctx, 3))
	}
	names := []string{"a", "orders:42", "}odd{", "ünï"} // no spaces: the check splits commands on them
	for _, name := range names {
		use(name)
	}
	for _, m := range masters {
		require.NoError(t, m.FlushScripts(ctx))
	}
	use("after-flush") // NOSCRIPT, then EVAL

	assert.Equal(t, before, moved(t, masters), "a command went to a shard that does not own its keys")
	log.mu.Lock()
	defer log.mu.Unlock()
	count := map[string]int{}
	for _, cmd := range log.cmds {
		assert.NotContains(t, cmd, "0x", "an argument reads as an address: %s", cmd)
		f := strings.Fields(cmd)
		switch f[0] {
		case "eval": // its source has spaces: look for a key and a token
			count["eval"]++
			assert.Contains(t, cmd, " quorumsync:{", "no key that reads as text: %s", cmd)
			assert.Regexp(t, ` [0-9a-f]{32}@`, cmd, "no token that reads as text: %s", cmd)
		case "evalsha":
			count["evalsha"]++
			if f[1] == renewHash {
				count["exclusive renew"]++
			}
			n, err := strconv.Atoi(f[2])
			require.NoError(t, err, cmd)
			for _, k := range f[3 : 3+n] {
				assert.True(t, strings.HasPrefix(k, "quorumsync:{"), "key %q does not read as a key: %s", k, cmd)
			}
			assert.Regexp(t, ` [0-9a-f]{32}@`, cmd, "no token that reads as text: %s", cmd)
		case "set":
			count["set"]++
			assert.Regexp(t, `^set quorumsync:\{\S+ [0-9a-f]{32}@\S+ px 1500 nx`, cmd)
		}
	}
	t.Logf("commands seen: %v", count)
	assert.Greater(t, count["evalsha"], 10*len(names), "too few script calls seen: %v", count)
	assert.Positive(t, count["eval"], "no EVAL seen after the scripts were flushed: %v", count)
	assert.GreaterOrEqual(t, count["exclusive renew"], len(names), "too few renewals of a Mutex seen: %v", count)
	assert.GreaterOrEqual(t, count["set"], len(names), "too few SETs seen: %v", count)
	redistest.RequireNoLockKeysWithin(t, masters, "quorumsync:{*", time.Second) // (fencing counters stay)
}
