package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// requireNodeTimeout checks that err is a node's timeout as the docs promise: a NodeError that
// matches ErrNodeTimeout, and not context.DeadlineExceeded (the caller's deadline did not pass).
func requireNodeTimeout(t *testing.T, err error, what string) {
	t.Helper()
	var ne *lease.NodeError
	require.True(t, errors.As(err, &ne), "%s: no NodeError in %v", what, err)
	assert.ErrorIs(t, err, lease.ErrNodeTimeout, what)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "%s: a node's timeout reads as the caller's deadline", what)
}

// A hung node's error matches ErrNodeTimeout from every operation that reports node errors, on
// the call that finds it hung and on the next, which skips it.
func TestAHungNodeIsANodeTimeoutForEveryOperation(t *testing.T) {
	nodes := redistest.Start(t, 3)
	ctx := context.Background()
	ops := []struct {
		name string
		op   func(q *lease.Quorum) error
	}{
		{"Inspect", func(q *lease.Quorum) error {
			st, err := q.Inspect(ctx, "x")
			require.NoError(t, err)
			return st.NodeErrs[2]
		}},
		{"Break", func(q *lease.Quorum) error {
			st, err := q.Break(ctx, "x")
			require.NoError(t, err)
			return st.NodeErrs[2]
		}},
		{"Health", func(q *lease.Quorum) error {
			hs, err := q.Health(ctx)
			require.NoError(t, err)
			return hs[2].Err
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			// A second, not 250ms: the two healthy nodes must make the majority on a loaded machine.
			q := newQuorum(t, redistest.Clients(nodes), lease.WithTTL(10*time.Second), lease.WithNodeTimeout(time.Second))
			nodes[2].Stop()
			defer nodes[2].Continue()
			requireNodeTimeout(t, o.op(q), "the call that finds the node hung")
			requireNodeTimeout(t, o.op(q), "the next call")
		})
	}
}

// A node that accepts connections but never finishes the TLS handshake times out inside the dial,
// where the error is the dial's context's; with a node timeout long enough that the probe's
// dial is what times out, it is still the node's timeout, not the caller's deadline.
func TestAHangingTLSHandshakeIsANodeTimeout(t *testing.T) {
	addr, _ := redistest.Silent(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := lease.Dial(ctx, []string{"rediss://" + addr}, quiet,
		lease.WithTTL(10*time.Second), lease.WithNodeTimeout(time.Second))
	require.NoError(t, err)
	defer q.Close(context.Background())
	// Asked again and again for 3s: before the probe has run (the skip reports what the start-up
	// check found) and after its ping and dial (1s each) have timed out (it reports the probe's).
	rounds := 0
	for start := time.Now(); rounds < 3 || time.Since(start) < 3*time.Second; rounds++ {
		_, err = mutex.New(q, "x").TryObtain(ctx)
		require.NoError(t, ctx.Err())
		require.ErrorIs(t, err, lease.ErrUnavailable)
		requireNodeTimeout(t, err, "TryObtain")
		st, err := q.Inspect(ctx, "x")
		require.ErrorIs(t, err, lease.ErrUnavailable)
		requireNodeTimeout(t, st.NodeErrs[0], "Inspect")
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d rounds; the last: %v", rounds, err)
}
