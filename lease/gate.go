package lease

import (
	"context"
	"sync"
)

// gate is the local FIFO lock of one name in one Quorum: goroutines of this process that want the
// name queue on it, and only its holder talks to Redis for the name. It is a channel holding one
// token; Go hands a channel's value to the receivers in the order they started waiting, so the
// queue is FIFO, and a waiter whose ctx ends simply leaves it.
type gate struct {
	ch   chan struct{}
	refs int // guarded by Quorum.gmu
}

func (g *gate) lock(ctx context.Context) error {
	select {
	case <-g.ch:
		return nil
	default:
	}
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) tryLock() bool {
	select {
	case <-g.ch:
		return true
	default:
		return false
	}
}

func (g *gate) unlock() { g.ch <- struct{}{} }

// gateFor returns the gate for key, creating it if needed, and counts a reference to it. Gates
// are dropped when their last user leaves, so a process that locks many distinct names does not
// keep a gate for each.
func (q *Quorum) gateFor(key string) *gate {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	g := q.gates[key]
	if g == nil {
		g = gatePool.Get().(*gate)
		q.gates[key] = g
	}
	g.refs++
	return g
}

func (q *Quorum) dropGate(key string, g *gate) {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if g.refs--; g.refs == 0 {
		delete(q.gates, key)
		// Nobody holds or waits on it (refs counts both), and its token is back in the channel.
		gatePool.Put(g)
	}
}

// leaveGate unlocks a gate its caller holds and drops the caller's reference to it.
func (q *Quorum) leaveGate(key string, g *gate) {
	g.unlock()
	q.dropGate(key, g)
}

// gatePool recycles gates: a name locked without contention gets a new gate each time.
var gatePool = sync.Pool{New: func() any {
	g := &gate{ch: make(chan struct{}, 1)}
	g.ch <- struct{}{}
	return g
}}
