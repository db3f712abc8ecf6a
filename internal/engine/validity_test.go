package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// stallingKind is the exclusive kind whose reading of an acquire reply stalls the first `stalls`
// times: the round's votes come in, but late, as when the process stalls (a GC pause, a starved
// scheduler) between sending the requests and tallying the replies.
type stallingKind struct {
	engine.Kind
	stall  time.Duration
	stalls atomic.Int32
}

func (k *stallingKind) Read(op engine.Op, cmd *redis.Cmd, c *engine.Claim) (engine.Reply, error) {
	if op == engine.OpAcquire && k.stalls.Add(-1) >= 0 {
		time.Sleep(k.stall)
	}
	return k.Kind.Read(op, cmd, c)
}

// A round granted by the servers but tallied after most of the TTL is gone is not kept: the caller
// never gets a lease that is about to expire (the watchdog could not renew it in time). A try
// reports it and leaves nothing on the nodes; a blocking acquire tries again and returns a lease
// with its validity ahead of it.
func TestAGrantWithLittleValidityLeftIsNotKept(t *testing.T) {
	nodes := redistest.Start(t, 1)
	const ttl = 400 * time.Millisecond
	q := newQuorum(t, nodes, engine.WithTTL(ttl), engine.WithNodeTimeout(120*time.Millisecond))

	// 320ms of the 400ms gone (plus drift): 74ms would be left, less than TTL/4. The stall
	// happens inside the node's call, so the node also reads as hung, and the undo is owed to it
	// until it answers a ping: the key goes within a second.
	k := &stallingKind{Kind: engine.Exclusive, stall: 320 * time.Millisecond}
	k.stalls.Store(1)
	_, err := q.Claim(context.Background(), &engine.Request{Kind: k, Name: "late votes"})
	require.ErrorIs(t, err, engine.ErrUnavailable)
	assert.Contains(t, err.Error(), "of its validity was left")
	redistest.RequireNoKeysWithin(t, nodes, "*", 2*time.Second)

	k.stalls.Store(1)
	l, err := q.Claim(context.Background(), &engine.Request{Kind: k, Name: "late votes", Wait: true})
	require.NoError(t, err)
	assert.Greater(t, time.Until(l.Until()), ttl/4, "the lease returned has at least TTL/4 ahead of it")
	assert.Less(t, k.stalls.Load(), int32(0), "the stalled round was tallied, then tried again")
	require.NoError(t, l.Release(context.Background()))
	redistest.RequireNoKeys(t, nodes, "*")

	// A stall that leaves more than TTL/4 keeps the grant.
	k.stall = 100 * time.Millisecond
	k.stalls.Store(1)
	l, err = q.Claim(context.Background(), &engine.Request{Kind: k, Name: "late votes"})
	require.NoError(t, err)
	require.NoError(t, l.Release(context.Background()))
}
