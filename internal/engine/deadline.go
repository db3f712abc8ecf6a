package engine

import (
	"context"
	"sync"
	"time"
)

// The context of one node call. The per-node timeout must reach the call's socket: go-redis takes
// its socket deadlines from the ctx's Deadline (ContextTimeoutEnabled), and only deadlines cut a
// blocked read. context.WithTimeout would give that at the price of a context, a timer and a
// channel on every call of every node — most of an uncontended Lock's allocations. nodeCtx gives
// the deadline with one small allocation: its Done channel is shared by every call whose deadline
// falls in the same few milliseconds, and closed a little after them (no later than
// deadlineResolution past the deadline), which is all go-redis waits on it for (a pool wait, a
// dial's back-off). It keeps the caller's values and its Err; the caller's cancellation is seen
// between calls, which the deadline bounds — a cancelled ctx does not cut a blocked socket read in
// any case.

// deadlineResolution is how much later than its deadline a node call's Done may close.
const deadlineResolution = 5 * time.Millisecond

type nodeCtx struct {
	context.Context
	deadline time.Time
	done     <-chan struct{}
}

func (c *nodeCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *nodeCtx) Done() <-chan struct{} { return c.done }

func (c *nodeCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// deadlines hands out the shared Done channels, one per deadlineResolution slice of time, each
// closed by a timer at the end of its slice.
type deadlines struct {
	mu    sync.Mutex
	slots map[int64]chan struct{}
}

// context returns the context of a node call under ctx that ends at deadline.
func (d *deadlines) context(ctx context.Context, deadline time.Time) context.Context {
	c := new(nodeCtx)
	d.fill(c, ctx, deadline)
	return c
}

// fill makes c the context of a node call under ctx that ends at deadline, as context does.
func (d *deadlines) fill(c *nodeCtx, ctx context.Context, deadline time.Time) {
	if p, ok := ctx.Deadline(); ok && p.Before(deadline) {
		deadline = p
	}
	*c = nodeCtx{Context: ctx, deadline: deadline, done: d.channel(deadline)}
}

func (d *deadlines) channel(deadline time.Time) <-chan struct{} {
	slot := deadline.UnixNano()/int64(deadlineResolution) + 1 // the slice's end is at or after the deadline
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch := d.slots[slot]; ch != nil {
		return ch
	}
	if d.slots == nil {
		d.slots = make(map[int64]chan struct{})
	}
	ch := make(chan struct{})
	d.slots[slot] = ch
	end := time.Unix(0, slot*int64(deadlineResolution))
	time.AfterFunc(time.Until(end), func() {
		d.mu.Lock()
		delete(d.slots, slot)
		d.mu.Unlock()
		close(ch)
	})
	return ch
}
