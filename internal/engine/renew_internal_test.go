package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// A renewal that every node answered but that came back after the validity it would give (here a
// capped renewal whose TTL is no longer than the drift allowance) fails with a message that says
// so: there is no node error to wrap, and the text must not show one that is missing.
func TestLateRenewalSaysWhyWithoutANodeError(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q, err := NewQuorum(context.Background(), redistest.Clients(nodes))
	require.NoError(t, err)
	defer q.Close(context.Background())
	l, err := q.Acquire(context.Background(), "late")
	require.NoError(t, err)
	batch := []watchdog.Renewal{{Entry: l.entry, TTL: 2 * time.Millisecond}}
	q.renewBatch(context.Background(), batch)
	r := batch[0]
	require.False(t, r.OK)
	require.False(t, r.Final)
	require.Error(t, r.Err)
	assert.NotContains(t, r.Err.Error(), "%!", "renewal error %q", r.Err)
	assert.True(t, strings.HasPrefix(r.Err.Error(), "renewed on 1 of 1 nodes, but only after"), "renewal error %q", r.Err)
	// The renewal left the key 2ms to live: by the release it may be gone (ErrNotHeld); either
	// way nothing is left.
	if err := l.Release(context.Background()); err != nil {
		require.ErrorIs(t, err, ErrNotHeld)
	}
	redistest.RequireNoLockKeysWithin(t, nodes, "*", time.Second)
}
