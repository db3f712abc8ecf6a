package semaphore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// A release passes its permits to a goroutine of the process that waits for as many (the same
// slots, token and renewal, no request); one that waits for another weight gets its permits from
// the servers.
func TestAReleasePassesPermitsToAGoroutineWaitingForAsMany(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithTTL(2*time.Second), lease.WithHandoff(time.Minute))
	ctx := context.Background()
	s := semaphore.New(q, "pass", 2)

	obtain := func(n int64) <-chan *lease.Lease {
		got := make(chan *lease.Lease, 1)
		go func() {
			l, err := s.Obtain(ctx, n)
			assert.NoError(t, err)
			got <- l
		}()
		time.Sleep(50 * time.Millisecond) // waiting at the local gate
		return got
	}

	first, err := s.Obtain(ctx, 2)
	require.NoError(t, err)
	same := obtain(2)
	require.NoError(t, first.Release(ctx))
	next := <-same
	require.NotNil(t, next)
	assert.Equal(t, first.Holder().Token, next.Holder().Token, "not passed")
	assert.Equal(t, first.Units(), next.Units())
	assert.ErrorIs(t, first.Err(), lease.ErrReleased)
	assert.NoError(t, next.Err())

	other := obtain(1)
	require.NoError(t, next.Release(ctx))
	last := <-other
	require.NotNil(t, last)
	assert.NotEqual(t, next.Holder().Token, last.Holder().Token, "passed to a waiter of another weight")
	assert.Len(t, last.Units(), 1)
	require.NoError(t, last.Release(ctx))
	redistest.RequireNoLockKeysWithin(t, nodes, "*", 2*time.Second)
}
