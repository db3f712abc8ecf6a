package election_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/election"
	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
)

// newQuorum returns a quorum over fresh clients of nodes, as one more process would have it.
func newQuorum(t *testing.T, nodes []*redistest.Node, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	q, err := lease.NewQuorum(context.Background(), redistest.Clients(nodes), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// waitFor returns what ch delivers within d, failing the test otherwise.
func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
	}
	var zero T
	return zero
}

// One candidate leads; the others wait in line. Leader names it, with its value and term;
// Resign hands over at once (long before the TTL), to a leader with a higher term; the new
// leader's Done stays open and the old one's is closed.
func TestCampaignResignHandsOver(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			ctx := context.Background()
			var cands []*election.Election
			for i := 0; i < 3; i++ {
				cands = append(cands, election.New(newQuorum(t, nodes, lease.WithTTL(10*time.Second)), "scheduler"))
			}
			require.NoError(t, cands[0].Campaign(ctx, "node-0"))
			won := make(chan int, 2)
			for i := 1; i < 3; i++ {
				go func() {
					if err := cands[i].Campaign(ctx, "node-"+strconv.Itoa(i)); err != nil {
						t.Errorf("campaign %d: %v", i, err)
						return
					}
					won <- i
				}()
			}
			ld, err := cands[2].Leader(ctx)
			require.NoError(t, err)
			assert.Equal(t, "node-0", ld.Value)
			assert.Equal(t, cands[0].Term(), ld.Term)
			assert.NotZero(t, ld.Term)
			assert.NotEmpty(t, ld.Holder.Host)
			select {
			case i := <-won:
				t.Fatalf("candidate %d leads while candidate 0 does", i)
			case <-time.After(200 * time.Millisecond):
			}

			terms := []uint64{cands[0].Term()}
			prev := 0
			for k := 0; k < 2; k++ {
				start := time.Now()
				require.NoError(t, cands[prev].Resign(ctx))
				<-cands[prev].Done()
				next := waitFor(t, won, 2*time.Second, "the next leader after Resign (TTL 10s)")
				t.Logf("handover %d -> %d in %v", prev, next, time.Since(start))
				require.NoError(t, cands[next].Err())
				assert.Greater(t, cands[next].Term(), terms[len(terms)-1], "terms increase")
				terms = append(terms, cands[next].Term())
				ld, err := cands[0].Leader(ctx)
				require.NoError(t, err)
				assert.Equal(t, "node-"+strconv.Itoa(next), ld.Value)
				assert.Equal(t, cands[next].Term(), ld.Term)
				prev = next
			}
			require.NoError(t, cands[prev].Resign(ctx))
			_, err = cands[0].Leader(ctx)
			assert.ErrorIs(t, err, election.ErrNoLeader)
			redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", time.Second)
		})
	}
}

// Misuse returns typed errors naming the package, never panics, and leaves nothing behind.
func TestMisuse(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes)
	ctx := context.Background()

	e := election.New(q, "misuse")
	err := e.Resign(ctx)
	assert.ErrorIs(t, err, election.ErrNotLeader)
	assert.ErrorIs(t, e.Err(), election.ErrNotLeader)
	assert.Zero(t, e.Term())
	<-e.Done() // closed when not leading
	assert.Nil(t, e.Lease())
	_, err = e.Leader(ctx)
	assert.ErrorIs(t, err, election.ErrNoLeader)
	assert.Equal(t, `election: no leader "misuse"`, err.Error())

	err = e.Campaign(ctx, strings.Repeat("x", 129))
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
	assert.True(t, strings.HasPrefix(err.Error(), "election: invalid argument"), "%q", err)
	assert.Contains(t, err.Error(), "value")
	//nolint:staticcheck // a nil ctx is the point
	assert.ErrorIs(t, e.Campaign(nil, "v"), lease.ErrInvalidArgument)
	assert.ErrorIs(t, election.New(nil, "x").Campaign(ctx, "v"), lease.ErrInvalidArgument)
	assert.ErrorIs(t, election.New(q, "").Campaign(ctx, "v"), lease.ErrInvalidArgument)
	var none *election.Election
	assert.ErrorIs(t, none.Campaign(ctx, "v"), lease.ErrInvalidArgument)
	_, err = none.Leader(ctx)
	assert.ErrorIs(t, err, lease.ErrInvalidArgument)
	var zero election.Election // as the type's doc says
	assert.ErrorIs(t, zero.Campaign(ctx, "v"), lease.ErrInvalidArgument)
	assert.ErrorIs(t, zero.Resign(ctx), lease.ErrInvalidArgument)
	_, err = zero.Leader(ctx)
	assert.ErrorIs(t, err, lease.ErrInvalidArgument)
	_, open := <-zero.Observe(ctx)
	assert.False(t, open, "a zero Election's Observe gives a closed channel")
	assert.ErrorIs(t, zero.Err(), election.ErrNotLeader)
	//nolint:staticcheck // a nil ctx is the point
	_, open = <-e.Observe(nil)
	assert.False(t, open, "Observe(nil) gives a closed channel")
	redistest.RequireNoKeys(t, nodes, "quorumsync:*")

	require.NoError(t, e.Campaign(ctx, "v"))
	assert.ErrorIs(t, e.Campaign(ctx, "again"), election.ErrCampaigning)
	require.NoError(t, e.Resign(ctx))
	assert.ErrorIs(t, e.Resign(ctx), election.ErrNotLeader)
	require.NoError(t, e.Campaign(ctx, "again"), "a candidate may run again after it resigned")
	require.NoError(t, e.Resign(ctx))
}

// A Campaign cut short by its ctx while it waits in line leaves nothing of itself on the nodes,
// and errors say so with the ctx's error and lease.ErrNotAcquired.
func TestCancelledCampaignLeavesNothing(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	leader := election.New(newQuorum(t, nodes), "cancel")
	require.NoError(t, leader.Campaign(ctx, "leader"))
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := election.New(newQuorum(t, nodes), "cancel").Campaign(wctx, "waiter")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, lease.ErrNotAcquired)
	require.NoError(t, leader.Resign(ctx))
	redistest.RequireNoLockKeysWithin(t, nodes, "quorumsync:*", time.Second)
}

// A leader whose lease is lost learns it: Done closes, Err matches lease.ErrLost, the loss goes
// to the error handler; it may campaign again, and then leads with a higher term.
func TestLostLeadershipIsSignalled(t *testing.T) {
	nodes := redistest.Start(t, 1)
	ctx := context.Background()
	reported := make(chan error, 2)
	e := election.New(newQuorum(t, nodes, lease.WithTTL(600*time.Millisecond)), "lost",
		election.WithErrorHandler(func(err error) { reported <- err }))
	require.NoError(t, e.Campaign(ctx, "me"))
	first := e.Term()
	require.NoError(t, nodes[0].Client().Del(ctx, "quorumsync:{lost}").Err())
	select {
	case <-e.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done still open 2s after the leader's key was deleted (TTL 600ms)")
	}
	require.ErrorIs(t, e.Err(), lease.ErrLost)
	assert.ErrorIs(t, waitFor(t, reported, time.Second, "the loss reported"), lease.ErrLost)
	require.NoError(t, e.Campaign(ctx, "me"))
	assert.Greater(t, e.Term(), first)
	require.NoError(t, e.Resign(ctx))
}

// Observe delivers the leader at the time of the call, then every new leader in term order,
// pushed as they win; a second observer sees the same sequence; both channels close when their
// ctx ends.
func TestObserveSeesEveryLeaderInOrder(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	q := newQuorum(t, nodes)
	first := election.New(q, "observed")
	require.NoError(t, first.Campaign(ctx, "v0"))

	octx, stop := context.WithCancel(ctx)
	obs := []<-chan election.Leadership{election.New(q, "observed").Observe(octx), election.New(newQuorum(t, nodes), "observed").Observe(octx)}
	for i, ch := range obs {
		ld := waitFor(t, ch, 2*time.Second, fmt.Sprintf("observer %d: the current leader", i))
		assert.Equal(t, "v0", ld.Value)
		assert.Equal(t, first.Term(), ld.Term)
	}
	cur := first
	want := []uint64{}
	for k := 1; k <= 5; k++ {
		next := election.New(newQuorum(t, nodes), "observed")
		done := make(chan error, 1)
		go func() { done <- next.Campaign(ctx, "v"+strconv.Itoa(k)) }()
		time.Sleep(20 * time.Millisecond) // in line behind cur
		require.NoError(t, cur.Resign(ctx))
		require.NoError(t, waitFor(t, done, 2*time.Second, "the next campaign"))
		want = append(want, next.Term())
		cur = next
	}
	for i, ch := range obs {
		for k, term := range want {
			ld := waitFor(t, ch, 2*time.Second, fmt.Sprintf("observer %d: leader %d", i, k+1))
			assert.Equal(t, term, ld.Term, "observer %d: leader %d's term", i, k+1)
			assert.Equal(t, "v"+strconv.Itoa(k+1), ld.Value)
		}
	}
	require.NoError(t, cur.Resign(ctx))
	select {
	case ld := <-obs[0]:
		t.Fatalf("observer heard a leader after the last one resigned: %+v", ld)
	case <-time.After(200 * time.Millisecond):
	}
	stop()
	for i, ch := range obs {
		for range ch { //nolint:revive // drain until closed
		}
		t.Logf("observer %d closed", i)
	}
}

// An observer that loses its connection (the node restarted) reads the servers once it is back,
// and reports the leader that won meanwhile. (The node persists: restarted empty, it would start
// the terms over, and the observer reports only terms above the last.)
func TestObserveCatchesUpAfterReconnect(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithAppendOnly())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := election.New(newQuorum(t, nodes), "reconnect").Observe(ctx)
	e := election.New(newQuorum(t, nodes), "reconnect")
	require.NoError(t, e.Campaign(ctx, "before"))
	ld := waitFor(t, obs, 2*time.Second, "the first leader")
	assert.Equal(t, "before", ld.Value)
	require.NoError(t, e.Resign(ctx))

	// The observer's connection dies with the node; a new leader wins on the fresh node before it
	// reconnects (the announcement goes nowhere it listens).
	nodes[0].Restart()
	e2 := election.New(newQuorum(t, nodes), "reconnect")
	require.Eventually(t, func() bool { return e2.Campaign(ctx, "after") == nil }, 10*time.Second, 50*time.Millisecond)
	ld = waitFor(t, obs, 10*time.Second, "the leader after the reconnect")
	assert.Equal(t, "after", ld.Value)
	require.NoError(t, e2.Resign(ctx))
}

// On Redis Cluster, campaigning, Leader and Observe work (announcements cross the cluster bus).
func TestElectionOnCluster(t *testing.T) {
	cluster := redis.NewClusterClient(redistest.ClusterOptions(redistest.StartCluster(t, 3)))
	t.Cleanup(func() { _ = cluster.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cluster})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	obs := election.New(q, "cluster-election").Observe(ctx)
	a, b := election.New(q, "cluster-election"), election.New(q, "cluster-election")
	require.NoError(t, a.Campaign(ctx, "a"))
	aTerm := a.Term()
	assert.Equal(t, "a", waitFor(t, obs, 5*time.Second, "leader a").Value)
	done := make(chan error, 1)
	go func() { done <- b.Campaign(ctx, "b") }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, a.Resign(ctx))
	require.NoError(t, waitFor(t, done, 5*time.Second, "b's campaign"))
	ld := waitFor(t, obs, 5*time.Second, "leader b")
	assert.Equal(t, "b", ld.Value)
	assert.Greater(t, ld.Term, aTerm, "b's term follows a's")
	got, err := a.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, b.Term(), got.Term)
	require.NoError(t, b.Resign(ctx))
}

func init() {
	// A candidate process: it campaigns for ever, leads for a random while, resigns, and prints
	// each leadership as "led <term> <from> <to>", on the machine's monotonic clock (childproc.Mono):
	// from once Campaign returned, to before Resign (or the lease's Until, if earlier). Args: its
	// value, the TTL, the node addresses. With value "hold" it leads once and holds until killed,
	// printing "leading <term>", and "lost: <why>" if its leadership ends.
	childproc.Register("candidate", func(args []string) error {
		value := args[0]
		ttl, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		var clients []redis.UniversalClient
		for _, a := range args[2:] {
			clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
		}
		ctx := context.Background()
		q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(ttl), lease.WithNodeTimeout(ttl/10))
		if err != nil {
			return err
		}
		e := election.New(q, "leader", election.WithErrorHandler(func(error) {}))
		for {
			if err := e.Campaign(ctx, value); err != nil {
				fmt.Println("campaign:", err)
				continue
			}
			from := childproc.Mono()
			fmt.Printf("leading %d\n", e.Term())
			if value == "hold" {
				<-e.Done()
				fmt.Println("lost:", e.Err())
				select {}
			}
			time.Sleep(rand.N(ttl / 10))
			to := min(childproc.Mono(), childproc.MonoOf(e.Lease().Until()))
			if e.Lease().Valid() {
				fmt.Printf("led %d %d %d\n", e.Term(), from, to)
			}
			_ = e.Resign(ctx)
		}
	})
}

// leadership is one "led" line of a candidate process.
type leadership struct {
	term     uint64
	from, to int64
}

// Three candidate processes campaign and resign in turn, and one that leads is killed: the
// leaderships they report never overlap in time (at most one leader inside its validity), terms
// strictly increase with time, an observer in this process sees every term in order, and the
// killed leader is replaced within its TTL and a second.
func TestElectionAcrossProcesses(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n)
			const ttl = time.Second
			args := []string{"", ttl.String()}
			for _, nd := range nodes {
				args = append(args, nd.Addr())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			obs := election.New(newQuorum(t, nodes), "leader").Observe(ctx)
			var seen []uint64
			collect := func(d time.Duration) {
				for end := time.After(d); ; {
					select {
					case ld := <-obs:
						seen = append(seen, ld.Term)
					case <-end:
						return
					}
				}
			}

			var procs []*childproc.Proc
			for i := 0; i < 3; i++ {
				args[0] = "c" + strconv.Itoa(i)
				procs = append(procs, childproc.Start(t, "candidate", args...))
			}
			collect(3 * time.Second)

			// A candidate that leads once and holds: killed while it leads, it is replaced once its
			// lease runs out.
			args[0] = "hold"
			holder := childproc.Start(t, "candidate", args...)
			line := holder.WaitFor("leading ", 30*time.Second)
			heldTerm, _ := strconv.ParseUint(strings.TrimPrefix(line, "leading "), 10, 64)
			holder.Kill()
			killed := time.Now()
			var replacedAfter time.Duration
			deadline := time.After(ttl + time.Second)
			for replacedAfter == 0 {
				select {
				case ld := <-obs:
					seen = append(seen, ld.Term)
					if ld.Term > heldTerm {
						replacedAfter = time.Since(killed)
					}
				case <-deadline:
					t.Fatalf("no new leader within %v of the leader's kill", ttl+time.Second)
				}
			}
			t.Logf("killed leader (term %d) replaced after %v (TTL %v)", heldTerm, replacedAfter, ttl)
			collect(2 * time.Second)
			for _, p := range procs {
				p.Kill()
			}
			collect(200 * time.Millisecond)

			var led []leadership
			printedTerms := map[uint64]bool{heldTerm: true}
			for _, p := range procs {
				for _, l := range p.Printed() {
					if f := strings.Fields(l); len(f) == 4 && f[0] == "led" {
						term, _ := strconv.ParseUint(f[1], 10, 64)
						from, _ := strconv.ParseInt(f[2], 10, 64)
						to, _ := strconv.ParseInt(f[3], 10, 64)
						led = append(led, leadership{term, from, to})
					}
					if f := strings.Fields(l); len(f) == 2 && f[0] == "leading" {
						term, _ := strconv.ParseUint(f[1], 10, 64)
						printedTerms[term] = true
					}
				}
			}
			require.Greater(t, len(led), 10, "leaderships reported")
			require.Greater(t, len(seen), 10, "leaders observed")
			slices.SortFunc(led, func(a, b leadership) int { return int(a.from - b.from) })
			for i := 1; i < len(led); i++ {
				assert.Greater(t, led[i].term, led[i-1].term, "terms increase with time")
				assert.Greater(t, led[i].from, led[i-1].to, "leaderships of terms %d and %d overlap", led[i-1].term, led[i].term)
			}
			// The observer saw every term a candidate led with, in order (the kills aside: a
			// leader killed before it announced never led for anyone).
			assert.True(t, slices.IsSorted(seen) && len(slices.Compact(slices.Clone(seen))) == len(seen), "observed terms strictly increase: %v", seen)
			for term := range printedTerms {
				if term > seen[len(seen)-1] {
					continue // won after the observer's last look
				}
				assert.Contains(t, seen, term, "the observer missed term %d", term)
			}
		})
	}
}

// A leader paused (SIGSTOP) past its lease is replaced by one with a higher term, and when it
// wakes, it finds its leadership gone (Done closes, Err matches lease.ErrLost), and a resource
// fenced with the terms refuses its write.
func TestPausedLeaderIsFencedOff(t *testing.T) {
	nodes := redistest.Start(t, 1)
	const ttl = time.Second
	args := []string{"hold", ttl.String(), nodes[0].Addr()}
	old := childproc.Start(t, "candidate", args...)
	line := old.WaitFor("leading ", 10*time.Second)
	oldTerm, _ := strconv.ParseUint(strings.TrimPrefix(line, "leading "), 10, 64)
	ctx := context.Background()
	rdb := nodes[0].Client()
	require.NoError(t, fence.Set(ctx, rdb, "job:fence", oldTerm, "job:owner", "old", 0))

	old.Stop()
	e := election.New(newQuorum(t, nodes), "leader")
	require.NoError(t, e.Campaign(ctx, "new"))
	require.Greater(t, e.Term(), oldTerm)
	require.NoError(t, fence.Set(ctx, rdb, "job:fence", e.Term(), "job:owner", "new", 0))
	old.Continue()
	// The old leader's write, with its old term, is refused.
	err := fence.Set(ctx, rdb, "job:fence", oldTerm, "job:owner", "old", 0)
	require.ErrorIs(t, err, fence.ErrStale)
	v, err := rdb.Get(ctx, "job:owner").Result()
	require.NoError(t, err)
	assert.Equal(t, "new", v)
	old.WaitFor("lost: election: lost", 5*time.Second)
	require.NoError(t, e.Resign(ctx))
}
