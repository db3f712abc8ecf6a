package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/watchdog"
)

// AcquireOption configures one acquire.
type AcquireOption interface{ applyAcquire(*acquireConfig) }

type acquireConfig struct {
	onLost func(error)
}

type acquireOptionFunc func(*acquireConfig)

func (f acquireOptionFunc) applyAcquire(c *acquireConfig) { f(c) }

// OnLost registers f to be called once, from a goroutine of the quorum's, if the lease is lost
// (not when it is released). f gets the same error as [Lease.Err]. It must not block.
func OnLost(f func(error)) AcquireOption {
	return acquireOptionFunc(func(c *acquireConfig) { c.onLost = f })
}

// Acquire blocks until it holds name on a majority of the nodes, ctx ends, or the quorum closes.
//
// Goroutines of this process that acquire the same name queue FIFO, and only the first talks to
// Redis. Between attempts it waits with backoff (see [WithBackOff]), never longer than the
// holder's remaining TTL as reported by the servers, so a holder that died is noticed within its
// TTL.
//
// When ctx ends first, the error matches both [ErrNotAcquired] and ctx's error, and nothing is
// left on any node. Other errors: [ErrClosed], [ErrInvalidArgument].
func (q *Quorum) Acquire(ctx context.Context, name string, opts ...AcquireOption) (*Lease, error) {
	return q.acquire(ctx, name, true, opts)
}

// TryAcquire tries once to acquire name and returns at once. When the name is held (here or
// elsewhere) or too few nodes answered, the error matches [ErrNotAcquired]; node failures are
// joined to it as [NodeError]s. Nothing is left on any node when it fails.
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
	var ac acquireConfig
	for _, o := range opts {
		if o == nil {
			return nil, invalid("option", "nil")
		}
		o.applyAcquire(&ac)
	}
	if q.isClosed() {
		return nil, ErrClosed
	}
	key := q.cfg.prefix + "{" + name + "}"
	g := q.gateFor(key)
	if wait {
		if err := g.lock(ctx); err != nil {
			q.dropGate(key, g)
			return nil, notAcquired(ctx)
		}
	} else if !g.tryLock() {
		q.dropGate(key, g)
		return nil, fmt.Errorf("%w: %q is held by this process", ErrNotAcquired, name)
	}
	l := &Lease{
		q:      q,
		name:   name,
		keys:   []string{key, key + ":wake"},
		token:  newToken(),
		gate:   g,
		onLost: ac.onLost,
	}
	if err := q.acquireRemote(ctx, l, wait); err != nil {
		g.unlock()
		q.dropGate(key, g)
		return nil, err
	}
	return l, nil
}

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
	holderTTL int64 // 0: granted; > 0: held by another for this many ms
	err       error
}

// acquireRemote runs acquire rounds until one reaches a quorum (or, with wait false, once).
func (q *Quorum) acquireRemote(ctx context.Context, l *Lease, wait bool) error {
	votes := make([]vote, len(q.nodes))
	var (
		bo    backoff.BackOff
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		holderTTL, err := q.round(ctx, l, votes)
		if err == nil {
			return nil
		}
		if !wait || ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		if bo == nil {
			bo = q.cfg.newBackOff()
		}
		d := bo.NextBackOff()
		if d == backoff.Stop {
			return err
		}
		// Never sleep past the moment the holder's key expires: an expired holder publishes
		// nothing, and this bound is what notices it.
		if holderTTL > 0 && d > holderTTL {
			d = holderTTL
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return notAcquired(ctx)
		case <-timer.C:
		}
	}
}

// round is one Redlock attempt: the acquire script on every node in parallel, then the validity
// check. On success the lease is registered with the watchdog. On failure it undoes what it may
// have set and returns the shortest remaining TTL any holder reported (0 if none).
func (q *Quorum) round(ctx context.Context, l *Lease, votes []vote) (time.Duration, error) {
	// Validity is measured from before the first request: whatever time the requests take is
	// time the key has already been ticking on the servers.
	start := time.Now()
	ttlMs := q.cfg.ttl.Milliseconds()
	q.fanout(ctx, func(ctx context.Context, i int, c redis.UniversalClient) {
		n, err := acquireScript.Run(ctx, c, l.keys[:1], l.token, ttlMs).Int64()
		votes[i] = vote{holderTTL: n, err: err}
	})
	until := start.Add(q.cfg.ttl - q.cfg.drift())
	granted := 0
	var holderTTL int64
	for _, v := range votes {
		switch {
		case v.err != nil:
		case v.holderTTL == 0:
			granted++
		case holderTTL == 0 || v.holderTTL < holderTTL:
			holderTTL = v.holderTTL
		}
	}
	if granted >= q.quorum && time.Now().Before(until) {
		err := q.grant(l, start, until)
		if err == nil {
			return 0, nil
		}
		q.undo(ctx, l, votes)
		return 0, err
	}
	q.undo(ctx, l, votes)
	if ctx.Err() != nil {
		return 0, notAcquired(ctx)
	}
	var errs []error
	for i, v := range votes {
		if v.err != nil {
			errs = append(errs, q.nodeError(i, v.err))
		}
	}
	if len(errs) > 0 {
		held := ""
		if holderTTL > 0 {
			held = fmt.Sprintf(" (held by another on %d)", len(q.nodes)-granted-len(errs))
		}
		return time.Duration(holderTTL) * time.Millisecond, fmt.Errorf("%w: %q granted by %d of %d nodes%s, %d needed: %w",
			ErrNotAcquired, l.name, granted, len(q.nodes), held, q.quorum, errors.Join(errs...))
	}
	return time.Duration(holderTTL) * time.Millisecond, fmt.Errorf("%w: %q is held by another holder for %dms more", ErrNotAcquired, l.name, holderTTL)
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
// timed out may have set the key). Nodes that answered with another holder's TTL set nothing and
// are skipped. It ignores ctx's cancellation: the point is to leave nothing behind.
func (q *Quorum) undo(ctx context.Context, l *Lease, votes []vote) {
	need := false
	for _, v := range votes {
		if v.err != nil || v.holderTTL == 0 {
			need = true
			break
		}
	}
	if !need {
		return
	}
	q.fanout(context.WithoutCancel(ctx), func(ctx context.Context, i int, c redis.UniversalClient) {
		if v := votes[i]; v.err != nil || v.holderTTL == 0 {
			_ = releaseScript.Run(ctx, c, l.keys, l.token).Err()
		}
	})
}
