package semaphore

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
	"github.com/quorumsync/quorumsync/internal/semkind"
	"github.com/quorumsync/quorumsync/lease"
)

// Semaphore is a weighted counting semaphore of a fixed capacity on a name, shared across
// processes through a [lease.Quorum], shaped like golang.org/x/sync/semaphore.Weighted. Create it
// with [New]; the zero value is not usable (its methods return lease.ErrInvalidArgument).
//
// A Semaphore is safe for concurrent use by many goroutines. Goroutines of one process are
// admitted locally first, by weight up to the capacity, in arrival order, on a gate shared by
// every Semaphore of the same Quorum and name; across processes, waiters are served in the order
// they queued on the servers. A large request is not overtaken by smaller ones behind it.
//
// Permits taken with [Semaphore.Acquire] are the Semaphore's to give back with
// [Semaphore.Release], in any split. [Semaphore.Obtain] returns the permits of one acquisition as
// a lease of their own instead, for callers that hold several at once and want to know when each
// is lost.
type Semaphore struct {
	s        primitive.Shell
	capacity int64
	// base is the request every acquire copies, setting its weight and operation; acquireOne and
	// tryAcquireOne are Acquire(1)'s and TryAcquire(1)'s, the commonest, built once (the engine
	// only reads a request, and a copy made per call is an allocation).
	base, acquireOne, tryAcquireOne engine.Request

	mu    sync.Mutex
	held  []heldPermits // acquisitions made with Acquire and TryAcquire, oldest first
	total int64         // the permits in held
}

// heldPermits is one acquisition and how many of its permits Release has not given back yet.
type heldPermits struct {
	l *engine.Lease
	n int64
}

// New returns a Semaphore of capacity permits for name on q. Every process that uses the name must
// give the same capacity: while the semaphore is in use, an acquire with another one fails with
// [ErrCapacityMismatch]. Any non-empty name works; the name space is separate from package
// mutex's and rwmutex's. Bad arguments (nil q, empty name, a capacity below 1 or above 2^53, a bad
// TTL) are reported by the methods as lease.ErrInvalidArgument, so that New can be used where a
// Semaphore is declared. (The servers' scripts count in Lua numbers, doubles: above 2^53 two
// capacities could compare equal.)
func New(q *lease.Quorum, name string, capacity int64, opts ...Option) *Semaphore {
	s := &Semaphore{s: primitive.New(q, name, errs, opts), capacity: capacity}
	s.base = s.s.Request(semkind.Slots)
	s.base.Capacity, s.base.Fencing, s.base.OnLost = capacity, s.s.Cfg.Fencing, s.s.Report
	s.acquireOne, s.tryAcquireOne = s.request(1, true, "Acquire", true, nil), s.request(1, false, "TryAcquire", true, nil)
	return s
}

// Name returns the name.
func (s *Semaphore) Name() string {
	if s == nil {
		return ""
	}
	return s.s.Name
}

// Capacity returns the capacity given to New.
func (s *Semaphore) Capacity() int64 {
	if s == nil {
		return 0
	}
	return s.capacity
}

var errNil = errs.Invalid("semaphore", "nil")

// maxCapacity is the largest capacity: every integer up to it is exact in a double, the number of
// the servers' Lua scripts, so that a capacity mismatch is always seen.
const maxCapacity = 1 << 53

// maxWeight is the most permits one acquisition takes. Each permit is a slot that the servers'
// scripts take, renew and free one by one, and a script holds its node for all of them (and cannot
// be stopped once it has written). Measured on one loopback node: 1,000 slots took 9 ms to grant,
// and 10,000 took 0.2 s, most of the default per-node timeout (250ms), with every other client of
// the node held up meanwhile.
const maxWeight = 1000

// claim acquires n permits, after the checks every method shares. onLost false leaves a loss to
// the caller (Do returns it); onRetry, if not nil, hears of the failed rounds (the Locker).
func (s *Semaphore) claim(ctx context.Context, n int64, wait bool, op string, onLost bool, onRetry func(error)) (*engine.Lease, error) {
	switch {
	case s == nil:
		return nil, errNil
	case s.capacity < 1:
		return nil, errs.InvalidFor(s.s.Name, "capacity", "%d is less than 1", s.capacity)
	case s.capacity > maxCapacity:
		return nil, errs.InvalidFor(s.s.Name, "capacity", "%d is more than 2^53", s.capacity)
	case n < 1:
		return nil, errs.InvalidFor(s.s.Name, "n", "%d permits: want at least 1", n)
	case n > s.capacity:
		// It could never be granted: an error at once, not a hang.
		return nil, errs.InvalidFor(s.s.Name, "n", "%d permits is more than the capacity %d", n, s.capacity)
	case n > maxWeight:
		return nil, errs.InvalidFor(s.s.Name, "n", "%d permits is more than %d, the most one acquisition takes", n, maxWeight)
	}
	if n == 1 && onLost && onRetry == nil {
		one := &s.tryAcquireOne
		if wait {
			one = &s.acquireOne
		}
		if one.Operation == op {
			return s.s.Claim(ctx, errs, one)
		}
	}
	r := s.request(n, wait, op, onLost, onRetry)
	return s.s.Claim(ctx, errs, &r)
}

// request returns base set for one acquire: n permits, waiting or not, named op in telemetry,
// reporting a loss to the error handler or not, and telling onRetry (if not nil) of failed rounds.
func (s *Semaphore) request(n int64, wait bool, op string, onLost bool, onRetry func(error)) engine.Request {
	r := s.base
	r.Weight, r.Wait, r.Operation, r.OnRetry = n, wait, op, onRetry
	if !onLost {
		r.OnLost = nil
	}
	return r
}

// Acquire blocks until it holds n permits, ctx ends, or the quorum closes. It takes all n at once
// or none; waiters are served in arrival order, so a large request is not starved by smaller ones
// (and holds up those that come after it). A weight below 1, above the capacity or above 1000 is
// an lease.ErrInvalidArgument at once. Its other errors are the acquire outcomes of package lease
// (see lease.ErrNotAcquired): when ctx ends first — even if permits are free — the error matches
// ctx's error and the last round's outcome, and no slot is left held on any node.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	l, err := s.claim(ctx, n, true, "Acquire", true, nil)
	if err != nil {
		return err
	}
	s.add(l)
	return nil
}

// TryAcquire tries once to take n permits and returns at once: nil when held, an error matching
// lease.ErrNotAcquired when fewer than n are free or others queued first, lease.ErrUnavailable
// when too few nodes answered, lease.ErrMisconfigured for a refusal no retry heals. With
// more than one node it can also fail while n permits are free, when the nodes that answered hold
// different slots free (after a node restarted, or while another holder's release reaches only
// some of them) and granted different ones: [Semaphore.Acquire] converges on the same slots in a
// further round.
func (s *Semaphore) TryAcquire(ctx context.Context, n int64) error {
	l, err := s.claim(ctx, n, false, "TryAcquire", true, nil)
	if err != nil {
		return err
	}
	s.add(l)
	return nil
}

func (s *Semaphore) add(l *engine.Lease) {
	n := int64(len(l.Units()))
	s.mu.Lock()
	s.held = append(s.held, heldPermits{l, n})
	s.total += n
	s.mu.Unlock()
}

// Obtain blocks like [Semaphore.Acquire], and returns the n permits as a lease of their own:
// its Done, Err and Until say when they are lost, Units which slots they are (Fences their fencing
// tokens, with [WithFencing]), and its Release gives them all back. [Semaphore.Release] does not
// count them.
func (s *Semaphore) Obtain(ctx context.Context, n int64) (*lease.Lease, error) {
	l, err := s.claim(ctx, n, true, "Acquire", true, nil)
	return (*lease.Lease)(l), err
}

// TryObtain tries once, like [Semaphore.TryAcquire], and returns the n permits as a lease of
// their own, like [Semaphore.Obtain].
func (s *Semaphore) TryObtain(ctx context.Context, n int64) (*lease.Lease, error) {
	l, err := s.claim(ctx, n, false, "TryAcquire", true, nil)
	return (*lease.Lease)(l), err
}

// Release gives back n of the permits taken with Acquire and TryAcquire — the latest acquisitions
// first, splitting one when n ends inside it — and wakes as many waiters as the permits freed
// serve, in order. It returns [ErrReleaseTooMany] (releasing nothing) when n is more than held,
// and otherwise what the releases of the leases returned: an error matching lease.ErrLost for
// permits lost while held, lease.ErrNotHeld for permits that had expired, lease.ErrNotReleased
// when too few nodes
// answered. The permits count as released whatever it returns. A nil ctx is refused
// (lease.ErrInvalidArgument) and changes nothing.
func (s *Semaphore) Release(ctx context.Context, n int64) error {
	if s == nil {
		return errNil
	}
	if err := s.s.Check(errs); err != nil {
		return err
	}
	if ctx == nil {
		return errs.InvalidFor(s.s.Name, "ctx", "nil")
	}
	if n < 1 {
		return errs.InvalidFor(s.s.Name, "n", "%d permits: want at least 1", n)
	}
	// Decide what goes back and count it as gone under the lock. Whole acquisitions are released
	// after it, so that a slow node holds up neither the acquires nor the other releases; a
	// partial release runs under it, so that no other Release takes that acquisition whole while
	// its units are being given up.
	s.mu.Lock()
	if n > s.total {
		total := s.total
		s.mu.Unlock()
		return fmt.Errorf("%w: %d of %q, %d held", ErrReleaseTooMany, n, s.s.Name, total)
	}
	s.total -= n
	var whole []*engine.Lease
	var part *engine.Lease
	var partN int64
	for left := n; left > 0; {
		last := &s.held[len(s.held)-1]
		if left < last.n {
			part, partN = last.l, left
			last.n -= left
			break
		}
		whole = append(whole, last.l)
		left -= last.n
		*last = heldPermits{}
		s.held = s.held[:len(s.held)-1]
	}
	var errBuf [2]error // room for the commonest cases, one or two acquisitions
	errs := errBuf[:0]
	if part != nil {
		errs = append(errs, part.ReleaseUnits(ctx, partN))
	}
	s.mu.Unlock()
	for _, l := range whole {
		errs = append(errs, l.Release(ctx))
	}
	return engine.Join(errs...)
}

// Do takes n permits, runs fn, and gives them back. fn's ctx is cancelled if their lease is lost
// while fn runs; context.Cause then matches lease.ErrLost. What Do returns tells the outcomes
// apart: the acquire's error if fn never ran; fn's own result if the permits held to its end; an
// error matching lease.ErrLost (or lease.ErrNotHeld) if they were lost on the way, with fn's
// error joined when fn failed otherwise; an error matching lease.ErrNotReleased if fn succeeded
// but the release reached too few nodes. A loss that Do returns is not also reported to the error
// handler. Do's permits are its own: Release does not count them.
func (s *Semaphore) Do(ctx context.Context, n int64, fn func(ctx context.Context) error) error {
	return s.do(ctx, n, true, fn)
}

// TryDo is [Semaphore.Do] with [Semaphore.TryAcquire]: it runs fn only if n permits could be had
// at once, and otherwise returns the try's error without running fn.
func (s *Semaphore) TryDo(ctx context.Context, n int64, fn func(ctx context.Context) error) error {
	return s.do(ctx, n, false, fn)
}

func (s *Semaphore) do(ctx context.Context, n int64, wait bool, fn func(ctx context.Context) error) error {
	if s != nil && fn == nil {
		return errs.InvalidFor(s.s.Name, "fn", "nil")
	}
	op := "TryAcquire"
	if wait {
		op = "Acquire"
	}
	l, err := s.claim(ctx, n, wait, op, false, nil)
	if err != nil {
		return err
	}
	return primitive.Do(ctx, l, fn, nil)
}
