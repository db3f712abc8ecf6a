package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// newQuorum returns a quorum over fresh clients of nodes (as a separate process would have), closed
// when the test ends.
func newQuorum(t *testing.T, nodes []*redistest.Node, opts ...engine.Option) *engine.Quorum {
	t.Helper()
	q, err := engine.NewQuorum(context.Background(), redistest.Clients(nodes), opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// holders returns, for each node, the random token of the holder record stored at key ("" when
// absent; the raw value when it is not a record).
func holders(t *testing.T, nodes []*redistest.Node, key string) []string {
	t.Helper()
	out := make([]string, len(nodes))
	for i, n := range nodes {
		c := n.Client()
		v, err := c.Get(context.Background(), key).Result()
		if err == nil {
			out[i] = v
			if token, _, ok := engine.ParseHolder(v); ok {
				out[i] = token
			}
		}
		_ = c.Close()
	}
	return out
}

func count(xs []string, want string) int {
	n := 0
	for _, x := range xs {
		if x == want {
			n++
		}
	}
	return n
}
