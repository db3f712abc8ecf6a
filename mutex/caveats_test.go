package mutex_test

// The documented ways mutual exclusion can be broken (DESIGN §7), each shown happening, next to
// the mitigation that prevents it where there is one.

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

func TestCaveatRestartWithoutPersistenceLetsASecondHolderIn(t *testing.T) {
	nodes := redistest.Start(t, 1)
	a := mutex.New(newQuorum(t, nodes), "restart", mutex.WithErrorHandler(func(error) {}))
	b := mutex.New(newQuorum(t, nodes), "restart")
	ctx := context.Background()
	al, err := a.Obtain(ctx)
	require.NoError(t, err)

	nodes[0].Restart() // comes back empty: it forgot a's key
	require.NoError(t, b.TryLock(ctx), "after the restart b gets the lock a still believes it holds")
	assert.NoError(t, al.Err(), "a has not noticed yet: two holders at once")
	require.NoError(t, b.Unlock(ctx))
}

func TestCaveatRestartWithAppendOnlyKeepsTheLock(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithAppendOnly())
	a := mutex.New(newQuorum(t, nodes), "restart-aof", mutex.WithErrorHandler(func(error) {}))
	b := mutex.New(newQuorum(t, nodes), "restart-aof")
	ctx := context.Background()
	require.NoError(t, a.Lock(ctx))
	nodes[0].Restart()
	require.ErrorIs(t, b.TryLock(ctx), lease.ErrNotAcquired, "with AOF (fsync always) the restarted node remembers a's key")
}

func TestCaveatEvictionDropsLockKeysAndIsWarnedAbout(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithArgs("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-random"))
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	qa := newQuorum(t, nodes, lease.WithLogger(logger))
	assert.Contains(t, logs.String(), "maxmemory-policy=allkeys-random", "no start-up warning about the eviction policy")

	a := mutex.New(qa, "evicted", mutex.WithErrorHandler(func(error) {}))
	ctx := context.Background()
	require.NoError(t, a.Lock(ctx))
	c := nodes[0].Client()
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 400; i++ { // 25MB into a 4MB server: the lock key goes sooner or later
		c.Set(ctx, "filler:"+string(rune('a'+i%26))+strings.Repeat("z", i), big, 0)
		if c.Exists(ctx, "quorumsync:{evicted}").Val() == 0 {
			break
		}
	}
	require.Zero(t, c.Exists(ctx, "quorumsync:{evicted}").Val(), "lock key survived memory pressure")
	b := mutex.New(newQuorum(t, nodes), "evicted")
	require.NoError(t, b.TryLock(ctx), "the evicted lock is free for b while a holds it")
	require.NoError(t, b.Unlock(ctx))
}

// A wall-clock jump on the server (an NTP step, date(1)) larger than the drift margin expires a
// held lock's key early: a second holder gets in while the first's validity has seconds left. A
// resource fenced with the tokens refuses the first holder's late write all the same.
func TestCaveatServerClockJumpExpiresKeyEarly(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithClockJumps())
	ctx := context.Background()
	a := mutex.New(newQuorum(t, nodes, lease.WithTTL(10*time.Second)), "clock", mutex.WithFencing(), mutex.WithErrorHandler(func(error) {}))
	al, err := a.Obtain(ctx)
	require.NoError(t, err)
	aToken, err := al.Fence()
	require.NoError(t, err)
	rdb := nodes[0].Client()
	require.NoError(t, fence.Set(ctx, rdb, "clock:fence", aToken, "clock:resource", "a", 0))

	nodes[0].JumpClock(15 * time.Second) // past the key's 10s TTL: far more than the drift margin (102ms)
	b := mutex.New(newQuorum(t, nodes), "clock", mutex.WithFencing())
	bl, err := b.TryObtain(ctx)
	require.NoError(t, err, "the key expired early: b holds while a's validity has seconds left")
	assert.True(t, al.Valid() && al.Until().After(time.Now().Add(5*time.Second)), "a still holds, by its own clock")
	bToken, err := bl.Fence()
	require.NoError(t, err)
	require.Greater(t, bToken, aToken)
	require.NoError(t, fence.Set(ctx, rdb, "clock:fence", bToken, "clock:resource", "b", 0))
	// a, still believing it holds, writes: the fenced resource refuses it.
	require.ErrorIs(t, fence.Set(ctx, rdb, "clock:fence", aToken, "clock:resource", "a again", 0), fence.ErrStale)
	v, err := rdb.Get(ctx, "clock:resource").Result()
	require.NoError(t, err)
	assert.Equal(t, "b", v)
	require.NoError(t, bl.Release(ctx))
}

// A holder that cannot renew is told it lost the lock before anyone else can take it: Done closes
// at Until, which is before the servers let the key go. A holder that is paused past that moment
// cannot look at Done, which is why the resource itself needs protecting (fencing).
func TestCaveatLossIsSignalledBeforeAnotherHolderGetsIn(t *testing.T) {
	nodes := redistest.Start(t, 3)
	aClients := redistest.Clients(nodes)
	qa, err := lease.NewQuorum(context.Background(), aClients, lease.WithTTL(400*time.Millisecond), lease.WithNodeTimeout(20*time.Millisecond))
	require.NoError(t, err)
	defer qa.Close(context.Background())
	a := mutex.New(qa, "paused", mutex.WithErrorHandler(func(error) {}))
	ctx := context.Background()
	l, err := a.Obtain(ctx)
	require.NoError(t, err)

	// a's renewals stop reaching the servers (a is cut off: its connections are closed) while b
	// keeps trying from the other side.
	bq := newQuorum(t, nodes, lease.WithTTL(400*time.Millisecond))
	for _, c := range aClients {
		require.NoError(t, c.Close())
	}
	b := mutex.New(bq, "paused")
	require.NoError(t, b.Lock(ctx))
	bAt := time.Now()
	select {
	case <-l.Done():
	default:
		t.Fatal("b acquired while a's lease was still signalled as valid")
	}
	assert.False(t, l.Until().After(bAt), "a's validity (%v) outlasted b's acquisition", l.Until().Sub(bAt))
	require.NoError(t, b.Unlock(ctx))
}

// With maxmemory-policy volatile-lru (evict among keys with a TTL) the lock keys, which have one,
// are what goes when memory is full: a second holder gets in while the first holds.
func TestCaveatVolatileLRUEvictsLockKeys(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithArgs("--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru"))
	a := mutex.New(newQuorum(t, nodes), "volatile", mutex.WithErrorHandler(func(error) {}))
	ctx := context.Background()
	al, err := a.Obtain(ctx)
	require.NoError(t, err)
	c := nodes[0].Client()
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 400 && c.Exists(ctx, "quorumsync:{volatile}").Val() == 1; i++ {
		// Keys without a TTL, which volatile-lru never evicts; the write that finds memory full
		// evicts a key with a TTL instead, or fails once none is left.
		c.Set(ctx, "filler:"+strconv.Itoa(i), big, 0)
	}
	require.Zero(t, c.Exists(ctx, "quorumsync:{volatile}").Val(), "the lock key survived memory pressure")
	require.True(t, al.Valid(), "a still holds, by its own clock")
	c.FlushDB(ctx) // room for b's key
	b := mutex.New(newQuorum(t, nodes), "volatile")
	require.NoError(t, b.TryLock(ctx), "the evicted lock is free for b while a holds it")
	require.NoError(t, b.Unlock(ctx))
}

// With maxmemory-policy noeviction (the setting to use), a full node evicts nothing: a held lock
// stays held, renewed and released as usual. An acquire's first request (SET NX) is refused with
// an error that says the node is out of memory (lease.ErrUnavailable: it heals once memory is
// freed); a blocking acquire's later rounds run a script, which Redis lets write once it has
// begun with a delete, and may take a free name all the same. Either way nothing is lost, and no
// key is left without a TTL.
func TestNoevictionRefusesAcquiresAndKeepsHeldLocks(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithArgs("--maxmemory-policy", "noeviction"))
	q := newQuorum(t, nodes, lease.WithTTL(600*time.Millisecond))
	ctx := context.Background()
	held, err := mutex.New(q, "kept").Obtain(ctx)
	require.NoError(t, err)
	c := nodes[0].Client()
	// 4MB of data, then a limit below it: the node stays full, since it may evict nothing.
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 64; i++ {
		require.NoError(t, c.Set(ctx, "filler:"+strconv.Itoa(i), big, 0).Err())
	}
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "2mb").Err())
	require.Error(t, c.Set(ctx, "one-more", "x", 0).Err(), "the node takes writes past its maxmemory")

	err = mutex.New(q, "refused").TryLock(ctx)
	require.ErrorIs(t, err, lease.ErrUnavailable)
	assert.Contains(t, err.Error(), "out of memory")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	blocking := mutex.New(q, "blocking")
	if err := blocking.Lock(wctx); err == nil {
		require.NoError(t, blocking.Unlock(ctx))
	} else {
		require.ErrorIs(t, err, lease.ErrUnavailable)
	}
	redistest.RequireTTLs(t, nodes, "quorumsync:*")

	time.Sleep(time.Second) // renewals at TTL/3 go on under memory pressure
	require.NoError(t, held.Err(), "the held lock kept its lease")
	require.Equal(t, int64(1), c.Exists(ctx, "quorumsync:{kept}").Val())
	require.NoError(t, held.Release(ctx))
	require.Zero(t, c.Exists(ctx, "quorumsync:{kept}").Val())
	c.FlushDB(ctx)
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")
}
