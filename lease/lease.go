package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/tracing"
	"github.com/quorumsync/quorumsync/watchdog"
)

// Lease is a name held on a majority of a [Quorum]'s nodes. It is valid until [Lease.Until], which
// the quorum's watchdog keeps moving forward by renewing the lease at TTL/3. If renewal fails for
// long enough, the lease is lost: [Lease.Done] closes no later than the last Until, and
// [Lease.Err] says why. A lost lease is never revived.
//
// A Lease is safe for concurrent use. Ownership is not tied to a goroutine: any goroutine may
// release it.
type Lease struct {
	q     *Quorum
	name  string
	keys  []string // see keysFor
	token string
	// tokenArg is token boxed once for the script calls, which take ...any.
	tokenArg any
	gate     *gate
	entry    *watchdog.Entry
	onLost   func(error)
	held     atomic.Pointer[tracing.Held] // set once the acquire span ends; nil without a recording provider

	released atomic.Bool
}

// Observe records what happens to the lease while fn-like work runs under ctx: renewal failures
// and the loss become events on ctx's span, besides their own spans linked to the acquire span.
// Call the returned function when the work ends. mutex.Do does this for its function.
func (l *Lease) Observe(ctx context.Context) (stop func()) {
	return l.held.Load().Attach(ctx)
}

// Name returns the name the lease holds.
func (l *Lease) Name() string { return l.name }

// Token returns the lease's random token: 128 bits from crypto/rand, hex-encoded, unique to this
// acquisition. It is not ordered; it identifies the holder on the servers.
func (l *Lease) Token() string { return l.token }

// Until returns the end of the lease's validity as last renewed, on the local monotonic clock.
// Past it, nothing guarantees exclusion.
func (l *Lease) Until() time.Time { return l.entry.Until() }

// Done returns a channel that is closed when the lease ends: lost, released, or its quorum closed.
func (l *Lease) Done() <-chan struct{} { return l.entry.Done() }

// Err returns nil while the lease is held. After [Lease.Release] it returns [ErrReleased]. After a
// loss it returns an error matching [ErrLost] whose cause says why: the lease expired before it
// could be renewed (watchdog.ErrExpired), was found gone on the servers ([ErrNotHeld]), reached its
// max hold time (watchdog.ErrMaxHold), or its quorum was closed ([ErrClosed]).
func (l *Lease) Err() error { return leaseErr(l.entry.Err()) }

func leaseErr(cause error) error {
	switch {
	case cause == nil:
		return nil
	case cause == ErrReleased:
		return ErrReleased
	default:
		return fmt.Errorf("%w: %w", ErrLost, cause)
	}
}

// Release stops renewing the lease, then deletes it on every node where it still holds the
// lease's token, and wakes the waiters for the name. It returns nil when the lease was held and is
// now released. Releasing is idempotent on the servers; the error says what happened:
//   - [ErrReleased]: Release was called before (or [ErrClosed]: the quorum was closed, which released it);
//   - an error matching [ErrLost]: the lease had been lost before Release (the keys left are deleted all the same);
//   - an error matching [ErrNotHeld]: a majority no longer held the token, so the lease had expired;
//   - node errors (see [NodeError]): too few nodes answered; the keys left expire within the TTL.
//
// Release does not honour ctx's cancellation, so that a cancelled ctx cannot leave a key behind;
// each node is still bounded by the per-node timeout.
func (l *Lease) Release(ctx context.Context) error {
	if l == nil || l.q == nil {
		return invalid("lease", "nil")
	}
	if ctx == nil {
		return invalid("ctx", "nil")
	}
	return l.release(ctx, ErrReleased)
}

// release ends the lease with why (ErrReleased or ErrClosed) and deletes its keys.
func (l *Lease) release(ctx context.Context, why error) error {
	if !l.released.CompareAndSwap(false, true) {
		if errors.Is(l.entry.Err(), ErrClosed) {
			return ErrClosed
		}
		return ErrReleased
	}
	// Renewal stops before the release goes out, so no renewal is scheduled after it.
	lostBefore := l.entry.Stop(why)
	if lostBefore == nil {
		l.held.Load().Released()
	}
	q := l.q
	defer func() {
		q.untrack(l)
		q.leaveGate(l.keys[keyLock], l.gate)
	}()

	res := make([]int8, len(q.nodes))
	errs := make([]error, len(q.nodes))
	q.fanout(context.WithoutCancel(ctx), func(ctx context.Context, i int, c redis.UniversalClient) {
		if c == nil {
			errs[i] = q.nodeError(i, errSuspect)
			return
		}
		n, err := releaseScript.Run(ctx, c, l.keys, l.tokenArg).Int64()
		if err != nil {
			errs[i] = q.nodeError(i, err)
			return
		}
		res[i] = int8(n)
	})
	if lostBefore != nil {
		// Lost first: that is the news. Node errors, if any, say why the keys left could not
		// be deleted now; they expire within the TTL.
		return fmt.Errorf("release %q: %w", l.name, errors.Join(leaseErr(lostBefore), errors.Join(errs...)))
	}
	var released, gone int
	for i, r := range res {
		switch {
		case errs[i] != nil:
		case r == 1:
			released++
		default:
			gone++
		}
	}
	switch {
	case released >= q.quorum:
		return nil
	case gone > len(q.nodes)-q.quorum:
		return fmt.Errorf("release %q: %w (held on %d of %d nodes)", l.name, ErrNotHeld, released, len(q.nodes))
	default:
		return fmt.Errorf("release %q: released on %d of %d nodes: %w", l.name, released, len(q.nodes), errors.Join(errs...))
	}
}

// lost is the watchdog's onLost callback.
func (l *Lease) lost(cause error) {
	err := leaseErr(cause)
	l.held.Load().Lost(err)
	if l.onLost != nil {
		l.onLost(err)
	}
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// renewBatch is the watchdog's RenewFunc: one pipeline per node renews every lease in the batch.
// A lease counts as renewed only if a majority renewed it and the new validity, measured from
// before the first request, is still ahead.
func (q *Quorum) renewBatch(ctx context.Context, batch []watchdog.Renewal) {
	start := time.Now()
	ok := make([][]bool, len(q.nodes))
	gone := make([][]bool, len(q.nodes))
	errs := make([]error, len(q.nodes))
	q.fanout(ctx, func(ctx context.Context, i int, c redis.UniversalClient) {
		ok[i] = make([]bool, len(batch))
		gone[i] = make([]bool, len(batch))
		if c == nil {
			errs[i] = q.nodeError(i, errSuspect)
			return
		}
		cmds, err := pipelineScript(ctx, c, renewScript, len(batch), func(j int) ([]string, []any) {
			l := batch[j].Entry.Owner().(*Lease)
			return l.keys[:keyLock+1], []any{l.tokenArg, batch[j].TTL.Milliseconds()}
		})
		if err != nil {
			errs[i] = q.nodeError(i, err)
			return
		}
		for j, cmd := range cmds {
			n, err := cmd.Int64()
			switch {
			case err != nil:
			case n == 1:
				ok[i][j] = true
			default:
				gone[i][j] = true
			}
		}
	})
	now := time.Now()
	drift := q.cfg.drift()
	for j := range batch {
		r := &batch[j]
		var yes, no int
		for i := range q.nodes {
			if ok[i][j] {
				yes++
			} else if gone[i][j] {
				no++
			}
		}
		until := start.Add(r.TTL - drift)
		switch {
		case yes >= q.quorum && now.Before(until):
			r.OK, r.Until = true, until
		case no > len(q.nodes)-q.quorum:
			r.Final, r.Err = true, ErrNotHeld
		default:
			r.Err = fmt.Errorf("renewed on %d of %d nodes: %w", yes, len(q.nodes), errors.Join(errs...))
		}
		r.Entry.Owner().(*Lease).held.Load().Renewed(r.Err)
	}
}

// pipelineScript runs n calls of script in one pipeline on c, with EVALSHA, and returns their
// commands. If the node lost its script cache (a restart), it loads the script and sends the
// pipeline once more.
func pipelineScript(ctx context.Context, c redis.UniversalClient, s *redis.Script, n int, call func(j int) ([]string, []any)) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, n)
	for attempt := 0; ; attempt++ {
		pipe := c.Pipeline()
		for j := range n {
			keys, args := call(j)
			cmds[j] = s.EvalSha(ctx, pipe, keys, args...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := s.Load(ctx, c).Err(); err != nil {
				return nil, err
			}
			continue
		}
		// A script error on one command (not a transport error) leaves the others valid.
		if ctx.Err() != nil || !isReplyError(cmds) {
			return nil, err
		}
		return cmds, nil
	}
}

// isReplyError reports whether every failed command got an error reply from the server, rather
// than no reply at all.
func isReplyError(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		var re redis.Error
		if err := c.Err(); err != nil && !errors.As(err, &re) {
			return false
		}
	}
	return true
}
