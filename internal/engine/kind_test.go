package engine_test

// A second claim kind on the engine: a tiny shared claim, defined here, outside package lease, as
// packages rwmutex and semaphore define theirs. Its holders share the name; a "block" key that
// the test sets keeps new claims waiting in the engine's queue until it expires. Everything else
// — local admission, fan-out, tally, validity, renewal, release, leaving the queue — is the
// engine's.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// sharedKind: per node, KEYS[4] is a sorted set of holders scored by their expiry (server time),
// KEYS[5] the block key.
type sharedKind struct{}

var (
	sharedAcquire = engine.NewScript(`
local t = now()
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', t)
local left = redis.call('PTTL', KEYS[5])
if left ~= -2 then
  if ARGV[3] == '1' then join(ARGV[4], ttl) end
  if left == -1 then return -1 end -- no TTL: the caller backs off
  return math.max(left, 1) -- PTTL says 0 in the last millisecond: still blocked
end
redis.call('ZADD', KEYS[4], t + ttl, ARGV[1])
if redis.call('PTTL', KEYS[4]) < ttl then redis.call('PEXPIRE', KEYS[4], ttl) end
dequeue(ARGV[1])
return 0`)
	sharedRenew = engine.NewScript(`
local t = now()
local ttl = tonumber(ARGV[2])
local s = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not s or tonumber(s) <= t then return 0 end
redis.call('ZADD', KEYS[4], 'XX', t + ttl, ARGV[1])
if redis.call('PTTL', KEYS[4]) < ttl then redis.call('PEXPIRE', KEYS[4], ttl) end
return 1`)
	sharedRelease = engine.NewScript(`
dequeue(ARGV[1])
local n = redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('ZCARD', KEYS[4]) == 0 then redis.call('DEL', KEYS[4]) end
return n`)
	sharedLeave = engine.NewScript(`return dequeue(ARGV[1])`)
)

func (sharedKind) Family() string              { return ":shared" }
func (sharedKind) Keys() []string              { return []string{":holders", ":block"} }
func (sharedKind) Admission() engine.Admission { return engine.AdmitShared }

func (sharedKind) Acquire(a *engine.Attempt) engine.Call {
	join := "0"
	if a.Queue {
		join = "1"
	}
	return engine.Call{Script: sharedAcquire, Keys: a.Keys, Args: []any{a.TokenArg(), a.TTLArg(), join, a.ArrivalArg}}
}

func (sharedKind) Renew(c *engine.Claim, ttl time.Duration) engine.Call {
	return engine.Call{Script: sharedRenew, Keys: c.Keys, Args: []any{c.TokenArg(), ttl.Milliseconds()}}
}

func (sharedKind) Release(c *engine.Claim) engine.Call {
	return engine.Call{Script: sharedRelease, Keys: c.Keys, Args: []any{c.TokenArg()}}
}

func (sharedKind) Leave(c *engine.Claim) engine.Call {
	return engine.Call{Script: sharedLeave, Keys: c.Keys, Args: []any{c.TokenArg()}}
}

func (sharedKind) Read(op engine.Op, cmd *redis.Cmd, _ *engine.Claim) (engine.Reply, error) {
	n, err := cmd.Int64()
	if err != nil {
		return engine.Reply{}, err
	}
	switch {
	case op != engine.OpAcquire:
		return engine.Yes(n == 1), nil
	case n == 0:
		return engine.Reply{Units: engine.One}, nil
	case n > 0:
		return engine.Reply{Retry: time.Duration(n) * time.Millisecond}, nil
	}
	return engine.Reply{}, nil
}

func TestASecondKindRunsOnTheEngine(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			opts := []engine.Option{engine.WithTTL(300 * time.Millisecond), engine.WithNodeTimeout(30 * time.Millisecond)}
			qs := []*engine.Quorum{newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...)}
			name := "shared name"
			for _, nd := range nodes {
				require.NoError(t, nd.Client().Set(context.Background(), "quorumsync:{shared name}:shared:block", "x", 300*time.Millisecond).Err())
			}
			// While blocked, a try fails and leaves nothing; waiters queue.
			_, err := qs[0].Claim(context.Background(), &engine.Request{Kind: sharedKind{}, Name: name})
			// Busy; or unavailable if, on a loaded machine, nodes ran past the 30ms node timeout.
			require.True(t, errors.Is(err, engine.ErrNotAcquired) || errors.Is(err, engine.ErrUnavailable), "%v", err)

			const holders = 6
			var inside, most atomic.Int32
			var wg sync.WaitGroup
			leases := make([]*engine.Lease, holders)
			for i := range holders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, err := qs[i%2].Claim(context.Background(), &engine.Request{Kind: sharedKind{}, Name: name, Wait: true})
					if !assert.NoError(t, err) {
						return
					}
					leases[i] = l
					now := inside.Add(1)
					for old := most.Load(); now > old && !most.CompareAndSwap(old, now); old = most.Load() {
					}
				}()
			}
			wg.Wait()
			assert.EqualValues(t, holders, most.Load(), "shared holders at once (three per process, admitted together)")
			time.Sleep(time.Second) // three TTLs: the watchdog renews them all
			for _, l := range leases {
				require.NoError(t, l.Err())
			}
			for _, l := range leases {
				on := 0
				for _, nd := range nodes {
					members := nd.Client().ZRange(context.Background(), "quorumsync:{shared name}:shared:holders", 0, -1).Val()
					for _, m := range members {
						if tok, _, _ := engine.ParseHolder(m); tok == l.Token() {
							on++
						}
					}
				}
				assert.GreaterOrEqual(t, on, qs[0].Majority(), "holder %s on %d nodes", l.Token(), on)
			}

			// A waiter that gives up leaves the queue.
			for _, nd := range nodes {
				require.NoError(t, nd.Client().Set(context.Background(), "quorumsync:{shared name}:shared:block", "x", time.Minute).Err())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err = qs[0].Claim(ctx, &engine.Request{Kind: sharedKind{}, Name: name, Wait: true})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			for _, l := range leases {
				require.NoError(t, l.Release(context.Background()))
			}
			for _, nd := range nodes {
				require.NoError(t, nd.Client().Del(context.Background(), "quorumsync:{shared name}:shared:block").Err())
			}
			redistest.RequireNoKeys(t, nodes, "*")
		})
	}
}
