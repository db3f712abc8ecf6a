package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/tracing"
	"github.com/quorumsync/quorumsync/watchdog"
)

// AcquireOption configures one acquire.
type AcquireOption interface{ applyAcquire(*acquireConfig) }

type acquireConfig struct {
	onLost    func(error)
	primitive string
	operation string
}

type acquireOptionFunc func(*acquireConfig)

func (f acquireOptionFunc) applyAcquire(c *acquireConfig) { f(c) }

// OnLost registers f to be called once, from a goroutine of the quorum's, if the lease is lost
// (not when it is released). f gets the same error as [Lease.Err]. It must not block.
func OnLost(f func(error)) AcquireOption {
	return acquireOptionFunc(func(c *acquireConfig) { c.onLost = f })
}

// Traced names the acquire in traces and metrics: the span is "<primitive>.<operation>" (for
// example "mutex.Lock"). Packages built on lease set it; the default is "lease.Acquire" or
// "lease.TryAcquire".
func Traced(primitive, operation string) AcquireOption {
	return acquireOptionFunc(func(c *acquireConfig) { c.primitive, c.operation = primitive, operation })
}

// Acquire blocks until it holds name on a majority of the nodes, ctx ends, or the quorum closes.
//
// Waiting costs little: goroutines of this process that want the same name queue FIFO and only
// the first talks to Redis; it joins the name's queue of waiters on the servers, which serves
// processes in the order they arrived, and sleeps until the release that makes it first in line
// publishes its token, or at the latest until the holder's remaining TTL (capped at TTL/2) has
// passed, so an expired holder, which publishes nothing, is noticed within its TTL.
//
// When ctx ends first, the error matches both [ErrNotAcquired] and ctx's error, and nothing is
// left on any node (neither key nor place in the queue). Other errors: [ErrClosed],
// [ErrInvalidArgument].
func (q *Quorum) Acquire(ctx context.Context, name string, opts ...AcquireOption) (*Lease, error) {
	return q.acquire(ctx, name, true, opts)
}

// TryAcquire tries once to acquire name — one SET NX PX per node — and returns at once. When the
// name is held (here or elsewhere), reserved for a waiter, or too few nodes answered, the error
// matches [ErrNotAcquired]; node failures are joined to it as [NodeError]s. Nothing is left on any
// node when it fails.
func (q *Quorum) TryAcquire(ctx context.Context, name string, opts ...AcquireOption) (*Lease, error) {
	return q.acquire(ctx, name, false, opts)
}

func (q *Quorum) acquire(ctx context.Context, name string, wait bool, opts []AcquireOption) (*Lease, error) {
	if q == nil || q.wd == nil {
		return nil, invalid("quorum", "nil")
	}
	if ctx == nil {
		return nil, invalid("ctx", "nil")
	}
	if name == "" {
		return nil, invalid("name", "empty")
	}
	ac := acquireConfig{primitive: "lease", operation: "TryAcquire"}
	if wait {
		ac.operation = "Acquire"
	}
	for _, o := range opts {
		if o == nil {
			return nil, invalid("option", "nil")
		}
		o.applyAcquire(&ac)
	}
	ctx, tr := q.inst.StartAcquire(ctx, tracing.AcquireInfo{
		Primitive: ac.primitive, Operation: ac.operation, Name: name, Nodes: len(q.nodes), Quorum: q.quorum,
	})
	l, err := q.acquireLocal(ctx, name, wait, &ac, tr)
	if err != nil {
		outcome, traced := outcomeOf(ctx, err), err
		if outcome == tracing.OutcomeError {
			// In the trace, name the failure after the node errors, when there are any, rather
			// than after the not-acquired sentinel that wraps them. The caller gets err as is.
			var ne *NodeError
			if errors.As(err, &ne) {
				traced = &typedError{err, ne.ErrorType()}
			}
		}
		tr.End(outcome, 0, traced)
		return nil, err
	}
	l.held.Store(tr.End(tracing.OutcomeAcquired, time.Until(l.Until()), nil))
	return l, nil
}

// outcomeOf classifies a failed acquire for tracing: contention and cancellation are outcomes,
// not errors; node failures, a closed quorum and bad input are.
func outcomeOf(ctx context.Context, err error) tracing.Outcome {
	var ne *NodeError
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return tracing.OutcomeCancelled
	case errors.As(err, &ne):
		return tracing.OutcomeError
	case errors.Is(err, ErrNotAcquired):
		return tracing.OutcomeNotAcquired
	default:
		return tracing.OutcomeError
	}
}

// acquireLocal passes the process-local FIFO gate of the name, then acquires on the servers.
func (q *Quorum) acquireLocal(ctx context.Context, name string, wait bool, ac *acquireConfig, tr *tracing.Acquire) (*Lease, error) {
	keys := keysFor(q.cfg.prefix, name)
	g := q.gateFor(keys[keyLock])
	contended := false
	if wait {
		if !g.tryLock() {
			contended = true
			tr.Waiting()
			if err := g.lock(ctx); err != nil {
				q.dropGate(keys[keyLock], g)
				return nil, notAcquired(ctx)
			}
		}
	} else if !g.tryLock() {
		q.dropGate(keys[keyLock], g)
		return nil, fmt.Errorf("%w: %q is held by this process", ErrNotAcquired, name)
	}
	if q.isClosed() { // before, or while we queued at the gate
		q.leaveGate(keys[keyLock], g)
		return nil, ErrClosed
	}
	token := newToken()
	l := &Lease{q: q, name: name, keys: keys, token: token, tokenArg: token, gate: g, onLost: ac.onLost}
	if err := q.acquireRemote(ctx, l, wait, contended, tr); err != nil {
		q.leaveGate(keys[keyLock], g)
		return nil, err
	}
	return l, nil
}

// typedError gives an error a name for tracing (see sentinel.ErrorType) without changing what it
// matches.
type typedError struct {
	error
	typ string
}

func (e *typedError) ErrorType() string { return e.typ }
func (e *typedError) Unwrap() error     { return e.error }

// notAcquired is the error of an acquire whose ctx ended.
func notAcquired(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w (%w)", ErrNotAcquired, err, cause)
	}
	return fmt.Errorf("%w: %w", ErrNotAcquired, err)
}

// vote is one node's answer to an acquire round.
type vote struct {
	wait int64 // 0: granted; > 0: not granted, try again within this many ms
	err  error
}

// acquireRemote runs acquire rounds until one reaches a quorum (or, with wait false, once).
// contended says the caller had to wait for the name at the local gate: it then skips the plain
// SET NX, which would most likely fail, and joins the servers' queue at once.
func (q *Quorum) acquireRemote(ctx context.Context, l *Lease, wait, contended bool, tr *tracing.Acquire) (err error) {
	votes := make([]vote, len(q.nodes))
	// The arrival score orders this waiter in the servers' queues; it is the same on every node
	// so that every node puts the waiters in the same order. (Boxed once, not per round.)
	var arrival any = time.Now().UnixMilli()
	var (
		w          *waiter
		subscribed bool
		bo         backoff.BackOff
		timer      *time.Timer
	)
	// listen registers us for wake-ups before the first attempt that may queue us (the plain
	// SET NX never does): the release that makes us first in line may come at once, and its
	// message must find us listening. An uncontended acquire never gets here.
	listen := func() {
		w = q.watch(l.keys[keyChannel], l.token)
		subscribed = q.subscribe(w)
		tr.Waiting()
	}
	if wait && contended {
		listen()
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if w != nil {
			q.unwatch(w)
			if err != nil {
				q.leaveQueue(ctx, l)
			}
		}
	}()
	for attempt := 1; ; attempt++ {
		tr.Attempt()
		// The first attempt is a plain SET NX PX: without contention that is all it takes, and
		// with waiters queued it fails (the key is held, or reserved for the first of them).
		fast := attempt == 1 && !contended
		retryIn, nodeErrs, err := q.round(ctx, l, votes, fast, wait, arrival, tr)
		if err == nil {
			return nil
		}
		if !wait || ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		if fast {
			listen()
			if !nodeErrs {
				continue // straight on to the queue
			}
		}
		var d time.Duration
		reason := "held"
		if subscribed && !nodeErrs {
			// The release that makes us first in line will say so; the timer only bounds a
			// missed message or an expiry, which publishes nothing. Jitter spreads waiters
			// that would otherwise all retry when one key expires.
			d = min(retryIn, q.cfg.ttl/2)
			d -= rand.N(d/10 + 1)
		} else {
			if bo == nil {
				bo = q.cfg.newBackOff()
			}
			reason = "node errors or no subscription"
			if d = bo.NextBackOff(); d == backoff.Stop {
				return err
			}
			if retryIn > 0 && d > retryIn {
				d = retryIn
			}
		}
		d = max(d, time.Millisecond)
		tr.Retry(d, reason)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return notAcquired(ctx)
		case <-q.stop:
			return ErrClosed
		case <-w.wake:
			tr.WakeUp("pubsub")
		case <-timer.C:
			tr.WakeUp("timer")
		}
	}
}

// round is one Redlock attempt: the acquire script on every node in parallel, then the validity
// check. On success the lease is registered with the watchdog. On failure it undoes what it may
// have set and returns how long to wait at most before the next attempt (the shortest wait any
// node asked for, 0 if none), and whether any node failed.
func (q *Quorum) round(ctx context.Context, l *Lease, votes []vote, fast, queue bool, arrival any, tr *tracing.Acquire) (time.Duration, bool, error) {
	// Validity is measured from before the first request: whatever time the requests take is
	// time the key has already been ticking on the servers.
	start := time.Now()
	var join any = "0"
	if queue {
		join = "1"
	}
	q.fanout(ctx, func(ctx context.Context, i int, c redis.UniversalClient) {
		switch {
		case c == nil:
			votes[i] = vote{err: errSuspect}
		case fast:
			// Not granted: wait 1ms at most, a placeholder; the blocking path retries through
			// the script at once, which says how long.
			ok, err := c.SetNX(ctx, l.keys[keyLock], l.tokenArg, q.cfg.ttl).Result()
			votes[i] = vote{err: err}
			if err == nil && !ok {
				votes[i].wait = 1
			}
		default:
			n, err := acquireScript.Run(ctx, c, l.keys[:keyChannel], l.tokenArg, q.ttlArg, join, arrival, q.livenessArg).Int64()
			votes[i] = vote{wait: n, err: err}
		}
	})
	until := start.Add(q.cfg.ttl - q.cfg.drift())
	granted := 0
	var retryMs int64
	var errs []error
	for i, v := range votes {
		switch {
		case v.err != nil:
			errs = append(errs, q.nodeError(i, v.err))
			if ctx.Err() == nil { // the caller's own deadline is not the node's failure
				tr.NodeFailed(i, q.nodes[i].addr, v.err)
			}
		case v.wait == 0:
			granted++
		case retryMs == 0 || v.wait < retryMs:
			retryMs = v.wait
		}
	}
	retryIn := time.Duration(retryMs) * time.Millisecond
	if granted >= q.quorum && time.Now().Before(until) {
		err := q.grant(l, start, until)
		if err == nil {
			return 0, false, nil
		}
		q.undo(ctx, l, votes)
		return 0, false, err
	}
	q.undo(ctx, l, votes)
	if ctx.Err() != nil {
		return 0, false, notAcquired(ctx)
	}
	if len(errs) > 0 {
		held := ""
		if retryMs > 0 {
			held = fmt.Sprintf(" (held or queued for on %d)", len(q.nodes)-granted-len(errs))
		}
		return retryIn, true, fmt.Errorf("%w: %q granted by %d of %d nodes%s, %d needed: %w",
			ErrNotAcquired, l.name, granted, len(q.nodes), held, q.quorum, errors.Join(errs...))
	}
	if fast {
		return retryIn, false, fmt.Errorf("%w: %q is held, or reserved for a waiter", ErrNotAcquired, l.name)
	}
	return retryIn, false, fmt.Errorf("%w: %q is held, or others queued first; try again within %dms", ErrNotAcquired, l.name, retryMs)
}

// grant hands a lease that reached its quorum to the watchdog and to the quorum's set of held
// leases.
func (q *Quorum) grant(l *Lease, start, until time.Time) error {
	var holdUntil time.Time
	if q.cfg.maxHold > 0 {
		holdUntil = start.Add(q.cfg.maxHold)
	}
	e, err := q.wd.Add(watchdog.Spec{Owner: l, TTL: q.cfg.ttl, Start: start, Until: until, HoldUntil: holdUntil, OnLost: l.lost})
	if err != nil {
		return ErrClosed
	}
	l.entry = e
	if !q.track(l) {
		e.Stop(ErrClosed)
		return ErrClosed
	}
	return nil
}

// undo releases a failed attempt on every node that granted it or did not answer (a node that
// timed out may have set the key). Nodes that answered "not granted" set nothing and are skipped.
// It ignores ctx's cancellation: the point is to leave nothing behind.
func (q *Quorum) undo(ctx context.Context, l *Lease, votes []vote) {
	need := false
	for _, v := range votes {
		if v.err != nil || v.wait == 0 {
			need = true
			break
		}
	}
	if !need {
		return
	}
	q.fanout(context.WithoutCancel(ctx), func(ctx context.Context, i int, c redis.UniversalClient) {
		if v := votes[i]; c != nil && (v.err != nil || v.wait == 0) {
			_ = releaseScript.Run(ctx, c, l.keys, l.tokenArg).Err()
		}
	})
}

// leaveQueue takes a waiter that gives up out of every node's queue (and wakes the next waiter
// where it was first in line).
func (q *Quorum) leaveQueue(ctx context.Context, l *Lease) {
	q.fanout(context.WithoutCancel(ctx), func(ctx context.Context, i int, c redis.UniversalClient) {
		if c != nil {
			_ = leaveScript.Run(ctx, c, l.keys, l.tokenArg).Err()
		}
	})
}
