package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/election"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// campaignWhileHung campaigns with e while node n hangs for longer than the per-node timeout: the
// request that went to n times out, the other two nodes grant, and n runs the request once it
// wakes (a GC pause, a slow fsync).
func campaignWhileHung(t *testing.T, e *election.Election, n *redistest.Node, value string) {
	t.Helper()
	_, _ = e.Leader(context.Background()) // a warm connection to every node, as a busy process has
	n.Stop()
	done := make(chan error, 1)
	go func() { done <- e.Campaign(context.Background(), value) }()
	err := waitFor(t, done, 5*time.Second, "campaign "+value)
	time.Sleep(300 * time.Millisecond) // the node hangs on a little past the campaign
	n.Continue()
	require.NoError(t, err)
}

// Leader's Term is the leader's term (its lease's fencing token, what Campaign made Term and
// announced), and Observe reports every new leader while connected to every node, even when the
// nodes' fencing counters differ (DESIGN §6: failed minority grants advance one node's counter and
// not the others'): a leader whose request to the node with the higher counter timed out, but ran
// when the node woke, holds the name there too, and that node's counter is past its term. The
// term is the counter the majority agrees on, not the highest.
func TestLeaderTermIsTheLeasesTerm(t *testing.T) {
	nodes := redistest.Start(t, 3, redistest.WithAppendOnly())
	ctx := context.Background()
	const name = "odd-counters"
	opts := []lease.Option{lease.WithTTL(3 * time.Second), lease.WithNodeTimeout(100 * time.Millisecond)}

	// Node 2's counter gets ahead of the others': a holder takes the name while node 2 is down
	// (killed and restarted with its AOF, before it held anything), and while that holder has
	// nodes 0 and 1, five fenced tries get node 2 alone; each increments node 2's counter and is
	// undone for want of a quorum. Counters [1 1 5].
	nodes[2].Kill()
	first, err := mutex.New(newQuorum(t, nodes, opts...), name, mutex.WithFencing()).Obtain(ctx)
	require.NoError(t, err)
	nodes[2].Restart()
	tries := newQuorum(t, nodes, opts...)
	for i := 0; i < 5; i++ {
		_, err := mutex.New(tries, name, mutex.WithFencing()).TryObtain(ctx)
		require.ErrorIs(t, err, lease.ErrNotAcquired)
	}
	require.NoError(t, first.Release(ctx))
	counters := make([]string, 3)
	for i, n := range nodes {
		counters[i], _ = n.Client().Get(ctx, "quorumsync:{"+name+"}:fence").Result()
	}
	t.Logf("fencing counters after the tries: %v", counters)

	// A leader is elected while node 2 hangs; node 2 runs its request when it wakes.
	a := election.New(newQuorum(t, nodes, opts...), name)
	campaignWhileHung(t, a, nodes[2], "a")
	looker := election.New(newQuorum(t, nodes, opts...), name)
	require.Eventually(t, func() bool {
		st, err := tries.Inspect(ctx, name)
		if err != nil || len(st.Holders) != 1 {
			return false
		}
		for _, ttl := range st.Holders[0].TTL {
			if ttl == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "the leader holds on all three nodes once node 2 ran its request")
	ld, err := looker.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", ld.Value)
	assert.Equal(t, a.Term(), ld.Term, "Leader's term is the leader's own (Campaign's, announced)")

	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs := looker.Observe(octx)
	got := waitFor(t, obs, 2*time.Second, "the current leader")
	assert.Equal(t, a.Term(), got.Term, "Observe's first leader has the leader's term")

	// The next leader is elected the same way.
	aTerm := a.Term()
	require.NoError(t, a.Resign(ctx))
	b := election.New(newQuorum(t, nodes, opts...), name)
	campaignWhileHung(t, b, nodes[2], "b")
	t.Logf("terms: a %d (Leader said %d), b %d", aTerm, ld.Term, b.Term())
	select {
	case got := <-obs:
		assert.Equal(t, "b", got.Value)
		assert.Equal(t, b.Term(), got.Term)
	case <-time.After(2 * time.Second):
		t.Errorf("the observer, connected to every node all along, never reported leader b (term %d)", b.Term())
	}
	require.NoError(t, b.Resign(ctx))
}

// Observe's channel closes when the quorum closes (its doc), and Close waits neither for
// the observer's reader nor for its ctx; a Campaign waiting in line returns, matching
// lease.ErrClosed. (No existing test closes a quorum under an observer or a waiting candidate.)
func TestCloseEndsObserveAndCampaign(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	leader := election.New(newQuorum(t, nodes), "close-observe")
	require.NoError(t, leader.Campaign(ctx, "leader"))

	q, err := lease.NewQuorum(ctx, redistest.Clients(nodes))
	require.NoError(t, err)
	obs := election.New(q, "close-observe").Observe(ctx) // a ctx that never ends, and nobody reads
	campaign := make(chan error, 1)
	go func() { campaign <- election.New(q, "close-observe").Campaign(ctx, "waiter") }()
	require.Eventually(t, func() bool {
		st, err := q.Inspect(ctx, "close-observe")
		return err == nil && len(st.Waiters) == 1
	}, 5*time.Second, 10*time.Millisecond, "the second candidate queues")

	start := time.Now()
	require.NoError(t, q.Close(ctx))
	assert.Less(t, time.Since(start), time.Second, "Close took long")
	require.ErrorIs(t, waitFor(t, campaign, time.Second, "the waiting campaign"), lease.ErrClosed)
	select {
	case _, open := <-obs:
		for open {
			_, open = <-obs
		}
	case <-time.After(time.Second):
		t.Fatal("Observe's channel still open a second after its quorum closed")
	}
	require.NoError(t, leader.Resign(ctx))
}

// Close "waits until they have left the servers' queues" (lease.Quorum.Close). When Close
// makes a waiting Campaign leave while a node is suspect (a call ran out of its timeout there;
// seen under load with no hang at all), the leave is owed to the node, and Close stops the probe
// that would have paid it: Close pays it itself, one last try, so a node that answers by then
// has the closed candidate out of its queue.
func TestCloseWithASuspectNodeLeavesTheQueue(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	leader := election.New(newQuorum(t, nodes), "close-suspect")
	require.NoError(t, leader.Campaign(ctx, "leader"))
	q, err := lease.NewQuorum(ctx, redistest.Clients(nodes), lease.WithTTL(10*time.Second), lease.WithNodeTimeout(100*time.Millisecond))
	require.NoError(t, err)
	campaign := make(chan error, 1)
	go func() { campaign <- election.New(q, "close-suspect").Campaign(ctx, "waiter") }()
	looker := newQuorum(t, nodes)
	require.Eventually(t, func() bool {
		st, err := looker.Inspect(ctx, "close-suspect")
		return err == nil && len(st.Waiters) == 1 && st.Waiters[0].TTL[0] > 0
	}, 5*time.Second, 10*time.Millisecond, "the second candidate queues on every node")

	nodes[0].Stop()
	_, _ = q.Inspect(ctx, "close-suspect") // runs out of time on node 0: the quorum skips it now
	nodes[0].Continue()
	require.NoError(t, q.Close(ctx))
	require.ErrorIs(t, waitFor(t, campaign, time.Second, "the waiting campaign"), lease.ErrClosed)
	st, err := looker.Inspect(ctx, "close-suspect")
	require.NoError(t, err)
	assert.Empty(t, st.Waiters, "the closed candidate is still queued (TTL left per node)")
	require.NoError(t, leader.Resign(ctx))
}

// a reader slower than the leaders: Observe "keeps what it hears meanwhile, up to a limit
// past which it reads the servers instead". After 100 leaders (300 messages over three nodes)
// unread, the observer still delivers in increasing term order and ends on the current leader.
func TestSlowObserverCatchesUp(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newQuorum(t, nodes)
	obs := election.New(q, "slow-observer").Observe(ctx)
	time.Sleep(100 * time.Millisecond) // subscribed
	e := election.New(q, "slow-observer")
	var last uint64
	for i := 0; i < 100; i++ {
		require.NoError(t, e.Campaign(ctx, "v"))
		last = e.Term()
		require.NoError(t, e.Resign(ctx))
	}
	require.NoError(t, e.Campaign(ctx, "final"))
	last = e.Term()
	var prev uint64
	n := 0
	for {
		ld := waitFor(t, obs, 2*time.Second, "the next leader")
		n++
		require.Greater(t, ld.Term, prev, "terms increase")
		prev = ld.Term
		if ld.Term == last {
			assert.Equal(t, "final", ld.Value)
			break
		}
	}
	t.Logf("delivered %d of 101 leaders", n)
	require.NoError(t, e.Resign(ctx))
}

// An election whose name and value have odd characters (braces, spaces, ':', unicode) shows them
// back unchanged through Leader and Observe.
func TestOddNameAndValueRoundTrip(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const name, value = "}odd {name}: ü", "host: 10.0.0.7 {a} ü%"
	obs := election.New(newQuorum(t, nodes), name).Observe(ctx)
	e := election.New(newQuorum(t, nodes), name)
	require.NoError(t, e.Campaign(ctx, value))
	ld, err := e.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, value, ld.Value)
	assert.Equal(t, e.Term(), ld.Term)
	got := waitFor(t, obs, 2*time.Second, "the observed leader")
	assert.Equal(t, value, got.Value)
	require.NoError(t, e.Resign(ctx))
}
