package engine

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The announcements a primitive makes beside its claims (an election's new leaders), carried by
// the quorum's pub/sub connections like the wake-ups.

// maxHeard is how many messages a listener keeps between two looks; past it, it drops them and
// asks its owner to read the servers instead.
const maxHeard = 256

// Channel returns the pub/sub channel suffix names for name: inside the key prefix and the
// name's hash tag, like the name's keys, so that an ACL that allows the prefix allows it.
func (q *Quorum) Channel(name, suffix string) string {
	return q.cfg.prefix + "{" + escapeName(name) + "}" + suffix
}

// Publish sends msg on channel to every node and returns nil when at least one node took it; else
// the node errors, joined.
func (q *Quorum) Publish(ctx context.Context, channel, msg string) error {
	errs := make([]error, len(q.nodes))
	// A node's timeout is typed against the caller's deadline, not the node call's own.
	caller := ctx
	q.fanout(ctx, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		if c == nil {
			errs[n.index] = q.nodeError(ctx, n, n.skipped())
			return
		}
		if err := c.Publish(ctx, channel, msg).Err(); err != nil {
			errs[n.index] = q.nodeError(caller, n, err)
		}
	}))
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed < len(q.nodes) {
		return nil
	}
	return fmt.Errorf("publish on %q: %w", channel, Join(errs...))
}

// Listener hears every message published on one channel, on every node, over the quorum's
// pub/sub connections. Messages come at most once per node and can be missed (a reconnect, a
// node down): Take says when one may have been, and the owner then reads the servers.
type Listener struct {
	q *Quorum
	w *waiter
}

// Listen starts hearing channel on every node. It reports false once the quorum is closed. The
// caller must Close the listener; [Quorum.Close] waits for that (or its ctx), and closes
// [Listener.Stopped] first.
func (q *Quorum) Listen(channel string) (*Listener, bool) {
	if !q.enter() {
		return nil, false
	}
	w := &waiter{channel: channel, wake: make(chan struct{}, 1), listen: true, resync: true}
	for _, s := range q.subs {
		s.add(w)
	}
	q.subscribe(w)
	return &Listener{q: q, w: w}, true
}

// C returns a channel that receives a signal when messages arrived, or one may have been missed,
// since the last Take.
func (l *Listener) C() <-chan struct{} { return l.w.wake }

// Stopped returns a channel that is closed when the quorum is closing: the listener must be closed
// then.
func (l *Listener) Stopped() <-chan struct{} { return l.q.stop }

// Take returns the messages heard since the last Take, in the order they arrived (from the nodes
// in turn: the same message once per node), and whether one may have been missed since then: a
// subscription (re)confirmed, a connection failed, or too many messages to keep.
func (l *Listener) Take() (msgs []string, missed bool) {
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs, missed = w.heardMsgs, w.resync
	w.heardMsgs, w.resync = nil, false
	return msgs, missed
}

// Close stops hearing the channel.
func (l *Listener) Close() {
	l.q.unwatch(l.w)
	l.q.leave()
}
