package mutex_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// A Done channel taken before a release closes with it, also when the release passes the lease to
// the next goroutine of the process; the next holder's Done is its own, and open.
func TestDoneTakenBeforeAPassClosesWithTheRelease(t *testing.T) {
	nodes := redistest.Start(t, 1)
	q := newQuorum(t, nodes, lease.WithHandoff(time.Minute))
	ctx := context.Background()
	m := mutex.New(q, "pass-done")
	first, err := m.Obtain(ctx)
	require.NoError(t, err)
	done := first.Done()
	got := make(chan *lease.Lease, 1)
	go func() {
		l, err := m.Obtain(ctx)
		assert.NoError(t, err)
		got <- l
	}()
	time.Sleep(50 * time.Millisecond) // waiting at the local gate
	require.NoError(t, first.Release(ctx))
	next := <-got
	require.Equal(t, first.Holder().Token, next.Holder().Token, "not passed")
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("the Done taken before the release did not close when the lease was passed on")
	}
	assert.ErrorIs(t, first.Err(), lease.ErrReleased)
	select {
	case <-next.Done():
		t.Fatal("the next holder's Done is closed")
	default:
	}
	require.NoError(t, next.Release(ctx))
	<-next.Done()
}
