package mutex_test

// Fencing tokens, the restart guard, the precise validity check and the start-up warnings: the
// answers to the two halves of the classic critique of Redlock (a holder paused past its lease can
// still write; a node that restarts empty can grant a held lock twice).

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

type entry struct {
	at    time.Time
	token uint64
}

// Tokens strictly increase in the order of acquisition across thousands of acquisitions from
// several clients, while random minorities of the nodes are paused, or killed and restarted with
// AOF (the counters survive the restart).
func TestFencingTokensIncreaseStrictlyUnderFaults(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n, redistest.WithAppendOnly())
			opts := []lease.Option{lease.WithTTL(time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var chaos sync.WaitGroup
			chaos.Add(1)
			go func() {
				defer chaos.Done()
				rng := rand.New(rand.NewPCG(uint64(n), 7))
				for ctx.Err() == nil {
					// A random minority, paused or killed, for 50-250ms.
					picked := rng.Perm(n)[:1+rng.IntN((n-1)/2)]
					kill := rng.IntN(3) == 0
					for _, i := range picked {
						if kill {
							nodes[i].Kill()
						} else {
							nodes[i].Stop()
						}
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(50+rng.IntN(200)) * time.Millisecond):
					}
					for _, i := range picked {
						if kill {
							nodes[i].Restart()
						} else {
							nodes[i].Continue()
						}
					}
					time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
				}
			}()
			// 2,500 per N: the CI run's time budget (5,000 took over two minutes of the package's
			// five under -race); the chaos suite's fenced scenarios check the same order under more
			// kinds of fault.
			const want = 2500
			var mu sync.Mutex
			var got []entry
			var wg sync.WaitGroup
			for c := range 3 {
				q := newQuorum(t, nodes, opts...)
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m := mutex.New(q, "fenced", mutex.WithFencing(), mutex.WithErrorHandler(func(error) {}))
						for {
							mu.Lock()
							done := len(got) >= want
							mu.Unlock()
							if done {
								return
							}
							lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
							l, err := m.Obtain(lctx)
							cancel()
							if !assert.NoError(t, err, "client %d", c) {
								return
							}
							at := time.Now()
							token, err := l.Fence()
							if !assert.NoError(t, err) {
								return
							}
							mu.Lock()
							got = append(got, entry{at, token})
							mu.Unlock()
							_ = l.Release(context.Background())
						}
					}()
				}
			}
			wg.Wait()
			stop()
			chaos.Wait()
			require.GreaterOrEqual(t, len(got), want)
			slices.SortFunc(got, func(a, b entry) int { return a.at.Compare(b.at) })
			bad := 0
			for i := 1; i < len(got); i++ {
				if got[i].token <= got[i-1].token {
					bad++
					if bad <= 5 {
						t.Errorf("acquisition %d got token %d after %d", i, got[i].token, got[i-1].token)
					}
				}
			}
			assert.Zero(t, bad, "tokens that did not increase, of %d", len(got))
			t.Logf("%d acquisitions, tokens %d..%d", len(got), got[0].token, got[len(got)-1].token)
		})
	}
}

// quorumCounters models fencing counters on n nodes: each acquisition reaches a majority, INCRs
// the counter on each node of it and takes the highest; with raise set, it then raises the
// counters of that majority to the token (the second round).
func quorumCounters(n int, majorities [][]int, raise bool) []int {
	c := make([]int, n)
	var tokens []int
	for _, m := range majorities {
		t := 0
		for _, i := range m {
			c[i]++
			t = max(t, c[i])
		}
		if raise {
			for _, i := range m {
				c[i] = max(c[i], t)
			}
		}
		tokens = append(tokens, t)
	}
	return tokens
}

// The maximum of one round's counters, over changing majorities, does not increase; the second
// round makes it increase. The schedule is then run for real: each client reaches only its
// majority (the third node hangs for it), and the library's tokens increase.
func TestOneRoundMaximumGoesBackwardsTwoRoundsDoNot(t *testing.T) {
	majorities := [][]int{{0, 1}, {1, 2}, {0, 2}, {0, 1}, {1, 2}, {0, 2}}
	one := quorumCounters(3, majorities, false)
	increasing := func(ts []int) bool {
		for i := 1; i < len(ts); i++ {
			if ts[i] <= ts[i-1] {
				return false
			}
		}
		return true
	}
	require.False(t, increasing(one), "the model of one round must fail, or this test proves nothing: %v", one)
	require.True(t, increasing(quorumCounters(3, majorities, true)))

	nodes := redistest.Start(t, 3)
	opts := []lease.Option{lease.WithTTL(2 * time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}
	var tokens []uint64
	for i, m := range majorities {
		out := 3 - m[0] - m[1]
		q := newQuorum(t, nodes, opts...)
		nodes[out].Stop()
		// Marks the hung node suspect for this client, so the lock goes to the majority only.
		_ = mutex.New(q, fmt.Sprintf("warm%d", i)).TryLock(context.Background())
		mu := mutex.New(q, "schedule", mutex.WithFencing())
		l, err := mu.Obtain(context.Background())
		require.NoError(t, err, "acquisition %d on %v", i, m)
		token, err := l.Fence()
		require.NoError(t, err)
		tokens = append(tokens, token)
		require.NoError(t, l.Release(context.Background()))
		nodes[out].Continue()
		require.NoError(t, q.Close(context.Background()))
	}
	for i := 1; i < len(tokens); i++ {
		assert.Greater(t, tokens[i], tokens[i-1], "tokens %v over majorities %v", tokens, majorities)
	}
}

// The restart scenario, deterministic: A holds on nodes {0, 1}; node 1 is killed and restarted
// empty; B tries {1, 2}. Without the restart guard B gets the lock A still holds (the caveat,
// shown); with it, node 1's vote is ignored and B is refused.
func TestRestartGuardRefusesTheVoteOfAnEmptyRestartedNode(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		t.Run(fmt.Sprintf("guard=%v", guarded), func(t *testing.T) {
			nodes := redistest.Start(t, 3)
			opts := []lease.Option{lease.WithTTL(2 * time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}
			if guarded {
				opts = append(opts, lease.WithRestartGuard(2*time.Second))
			}
			onMajority := func(name string, out int) (*lease.Lease, error) {
				q := newQuorum(t, nodes, opts...)
				nodes[out].Stop()
				_ = mutex.New(q, "warm-"+name).TryLock(context.Background())
				m := mutex.New(q, "restart", mutex.WithErrorHandler(func(error) {}))
				l, err := m.TryObtain(context.Background())
				nodes[out].Continue()
				return l, err
			}
			if guarded {
				time.Sleep(4 * time.Second) // the fresh nodes surely older than the guard (2s + drift), reporting 4s
			}
			a, err := onMajority("a", 2)
			require.NoError(t, err, "A on {0, 1}")
			nodes[1].Restart() // comes back empty: it forgot A's key
			b, err := onMajority("b", 0)
			if !guarded {
				require.NoError(t, err, "without the guard B gets the lock on {1, 2}")
				assert.NoError(t, a.Err(), "A has not noticed: two holders at once")
				assert.True(t, a.Valid() && b.Valid(), "both leases valid at once")
				return
			}
			// Refused for want of nodes (node 0 hung, node 1's vote ignored), not busy: node 2 granted.
			require.ErrorIs(t, err, lease.ErrUnavailable, "the guard must refuse node 1's vote")
			assert.Contains(t, err.Error(), "restart guard")
			// A is left on one node of three (node 1 forgot it): not a majority any more, so its
			// next renewal would lose it. The guard kept B out meanwhile.
			require.ErrorIs(t, a.Release(context.Background()), lease.ErrNotHeld)
		})
	}
}

func init() {
	childproc.Register("fenced-holder", fencedHolder)
}

// fencedHolder takes a fenced lock and sleeps a little, during which the test pauses the process
// past its lease; on waking it reports what its lease says and tries a fenced write. args: the
// TTL, the fenced store's address, the node addresses.
func fencedHolder(args []string) error {
	ttl, err := time.ParseDuration(args[0])
	if err != nil {
		return err
	}
	store := redis.NewClient(&redis.Options{Addr: args[1]})
	var clients []redis.UniversalClient
	for _, a := range args[2:] {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
	}
	q, err := lease.NewQuorum(context.Background(), clients, lease.WithTTL(ttl), lease.WithNodeTimeout(ttl/10),
		lease.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	m := mutex.New(q, "paused", mutex.WithFencing(), mutex.WithErrorHandler(func(error) {}))
	l, err := m.Obtain(context.Background())
	if err != nil {
		return err
	}
	token, _ := l.Fence()
	fmt.Println("held", token)
	time.Sleep(300 * time.Millisecond) // paused in here
	// The first thing on waking.
	valid := l.Valid()
	doneOpen := true
	select {
	case <-l.Done():
		doneOpen = false
	default:
	}
	err = fence.Set(context.Background(), store, "{resource}:fence", token, "{resource}:value", "late write", 0)
	fmt.Printf("woke valid=%v done_open=%v stale=%v\n", valid, doneOpen, err != nil && strings.Contains(err.Error(), "stale"))
	select {}
}

// A holder paused past its lease: the precise validity check says invalid the moment it wakes,
// and the fenced resource refuses its late write, which a later holder's token has fenced off.
func TestPausedHolderIsInvalidOnWakingAndFencedOff(t *testing.T) {
	nodes := redistest.Start(t, 3)
	store := redistest.Start(t, 1)[0]
	const ttl = 500 * time.Millisecond
	doneOpen := 0
	for round := range 3 {
		args := []string{ttl.String(), store.Addr()}
		for _, n := range nodes {
			args = append(args, n.Addr())
		}
		p := childproc.Start(t, "fenced-holder", args...)
		line := p.WaitFor("held ", 10*time.Second)
		p.Stop() // a stopped VM, a long GC pause: the watchdog stops too
		paused, _ := strconv.ParseUint(strings.TrimPrefix(line, "held "), 10, 64)
		later := mutex.New(newQuorum(t, nodes, lease.WithTTL(ttl)), "paused", mutex.WithFencing())
		ll, err := later.Obtain(context.Background())
		require.NoError(t, err)
		token, err := ll.Fence()
		require.NoError(t, err)
		require.Greater(t, token, paused)
		require.NoError(t, fence.Set(context.Background(), store.Client(), "{resource}:fence", token, "{resource}:value", fmt.Sprint("round ", round), 0))
		p.Continue()
		woke := p.WaitFor("woke ", 10*time.Second)
		assert.Contains(t, woke, "valid=false", "round %d: the paused holder's lease read as valid on waking", round)
		assert.Contains(t, woke, "stale=true", "round %d: the paused holder's late write was not fenced off", round)
		if strings.Contains(woke, "done_open=true") {
			doneOpen++
		}
		assert.Equal(t, fmt.Sprint("round ", round), store.Client().Get(context.Background(), "{resource}:value").Val())
		require.NoError(t, ll.Release(context.Background()))
		p.Kill()
	}
	t.Logf("Done was still open at the first check after waking in %d of 3 pauses; Valid was false in all", doneOpen)
}

// Asking for a fencing token when fencing is off is a typed error.
func TestFenceWithoutFencingIsATypedError(t *testing.T) {
	nodes := redistest.Start(t, 1)
	m := mutex.New(newQuorum(t, nodes), "plain")
	l, err := m.Obtain(context.Background())
	require.NoError(t, err)
	_, err = l.Fence()
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "fencing", "the error says what was wrong")
	require.NoError(t, l.Release(context.Background()))
	_, err = l.Fence() // released: still acquired without fencing
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	_, err = (*lease.Lease)(nil).Fence() // not held: a nil lease
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
}

// With N = 1, fencing costs no extra round trip: the lock is one script.
func TestFencingAtNEqualsOneIsOneRoundTrip(t *testing.T) {
	nodes := redistest.Start(t, 1)
	m := mutex.New(newQuorum(t, nodes), "one", mutex.WithFencing())
	c := nodes[0].Client()
	require.NoError(t, c.ConfigResetStat(context.Background()).Err())
	l, err := m.Obtain(context.Background())
	require.NoError(t, err)
	stats := c.Info(context.Background(), "commandstats").Val()
	assert.Equal(t, 1, callsOf(stats, "evalsha")+callsOf(stats, "eval"), "%s", stats)
	token, err := l.Fence()
	require.NoError(t, err)
	assert.EqualValues(t, 1, token)
	require.NoError(t, l.Release(context.Background()))
	l, err = m.Obtain(context.Background())
	require.NoError(t, err)
	token, _ = l.Fence()
	assert.EqualValues(t, 2, token)
	require.NoError(t, l.Release(context.Background()))
}

// callsOf reads a command's call count from INFO commandstats.
func callsOf(stats, cmd string) int {
	for _, line := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// The start-up checks warn about what can break exclusion: no persistence without the restart
// guard, and replicas a failover could promote.
func TestStartUpWarnsAboutPersistenceAndReplicas(t *testing.T) {
	warnings := func(nodes []*redistest.Node, opts ...lease.Option) string {
		var logs syncBuffer
		newQuorum(t, nodes, append(opts, lease.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))...)
		return logs.String()
	}
	// (Each warning is given once per server in a process, by address and run_id: every case has
	// fresh nodes, which may reuse an earlier node's port.)
	assert.Contains(t, warnings(redistest.Start(t, 1)), "no AOF persistence")
	assert.NotContains(t, warnings(redistest.Start(t, 1), lease.WithRestartGuard(10*time.Second)), "no AOF persistence", "the restart guard covers it")
	aof := redistest.Start(t, 1, redistest.WithAppendOnly())
	assert.Empty(t, warnings(aof))
	// A master with a replica.
	replica := redistest.Start(t, 1, redistest.WithAppendOnly())
	require.NoError(t, replica[0].Client().SlaveOf(context.Background(), "127.0.0.1", strconv.Itoa(aof[0].Port())).Err())
	require.Eventually(t, func() bool {
		info := aof[0].Client().Info(context.Background(), "replication").Val()
		return strings.Contains(info, "connected_slaves:1")
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, warnings(aof), "replicas that a failover")
	// Once per server: the same node heard again gives no warning; restarted, it is another
	// server at the same address (a new run_id), which may have lost its locks: warned again.
	plain := redistest.Start(t, 1)
	assert.Contains(t, warnings(plain), "no AOF persistence")
	assert.NotContains(t, warnings(plain), "no AOF persistence", "the same server, warned twice")
	plain[0].Restart()
	assert.Contains(t, warnings(plain), "no AOF persistence", "a restarted server at the same address")
}
