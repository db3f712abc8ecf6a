package semaphore

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// Semaphore is a weighted counting semaphore of a fixed capacity on a name, shared across
// processes through a [lease.Quorum], shaped like golang.org/x/sync/semaphore.Weighted. Create it
// with [New]; the zero value is not usable (its methods return [ErrInvalidArgument]).
//
// A Semaphore is safe for concurrent use by many goroutines. Goroutines of one process are
// admitted locally first, by weight up to the capacity, in arrival order, on a gate shared by
// every Semaphore of the same Quorum and name; across processes, waiters are served in the order
// they queued on the servers. A large request is not overtaken by smaller ones behind it.
//
// Permits taken with [Semaphore.Acquire] are the Semaphore's to give back with
// [Semaphore.Release], in any split. [Semaphore.AcquirePermits] returns the permits of one
// acquisition as a lease of their own instead, for callers that hold several at once and want to
// know when each is lost.
type Semaphore struct {
	q        *lease.Quorum
	name     string
	capacity int64
	cfg      config
	// base is the request every acquire copies, setting its weight and operation.
	base lease.Request

	mu    sync.Mutex
	held  []heldPermits // acquisitions made with Acquire and TryAcquire, oldest first
	total int64         // the permits in held
}

// heldPermits is one acquisition and how many of its permits Release has not given back yet.
type heldPermits struct {
	l *lease.Lease
	n int64
}

// New returns a Semaphore of capacity permits for name on q. Every process that uses the name must
// give the same capacity: while the semaphore is in use, an acquire with another one fails with
// [ErrCapacityMismatch]. Any non-empty name works; the name space is separate from package
// mutex's and rwmutex's. Bad arguments (nil q, empty name, capacity < 1, a bad TTL) are reported
// by the methods as [ErrInvalidArgument], so that New can be used where a Semaphore is declared.
func New(q *lease.Quorum, name string, capacity int64, opts ...Option) *Semaphore {
	s := &Semaphore{q: q, name: name, capacity: capacity}
	for _, o := range opts {
		if o != nil {
			o.apply(&s.cfg)
		}
	}
	s.base = lease.Request{Kind: slots, Name: name, Capacity: capacity, TTL: s.cfg.ttl, Fencing: s.cfg.fencing,
		Primitive: "semaphore", Errors: errs, OnLost: s.report}
	q.Prepare(&s.base)
	return s
}

// Name returns the name.
func (s *Semaphore) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// Capacity returns the capacity given to New.
func (s *Semaphore) Capacity() int64 {
	if s == nil {
		return 0
	}
	return s.capacity
}

var errNil = errs.Invalid("semaphore", "nil")

// claim acquires n permits, after the checks every method shares. onLost false leaves a loss to
// the caller (Do returns it).
func (s *Semaphore) claim(ctx context.Context, n int64, wait bool, op string, onLost bool) (*lease.Lease, error) {
	switch {
	case s == nil:
		return nil, errNil
	case s.q == nil:
		return nil, errs.Invalid("semaphore", "not made by New, or made with a nil quorum")
	case s.capacity < 1:
		return nil, errs.Invalid("capacity", "%d is less than 1", s.capacity)
	case n < 1:
		return nil, errs.Invalid("n", "%d permits: want at least 1", n)
	case n > s.capacity:
		// It could never be granted: an error at once, not a hang.
		return nil, errs.Invalid("n", "%d permits is more than the capacity %d", n, s.capacity)
	}
	r := s.base
	r.Weight, r.Wait, r.Operation = n, wait, op
	if !onLost {
		r.OnLost = nil
	}
	return s.q.Claim(ctx, &r)
}

// Acquire blocks until it holds n permits, ctx ends, or the quorum closes. It takes all n at once
// or none; waiters are served in arrival order, so a large request is not starved by smaller ones
// (and holds up those that come after it). A weight below 1 or above the capacity is an
// [ErrInvalidArgument] at once. When ctx ends first — even if permits are free — the error matches
// both [ErrNotAcquired] and ctx's error, and no slot is left held on any node.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	l, err := s.claim(ctx, n, true, "Acquire", true)
	if err != nil {
		return err
	}
	s.add(l)
	return nil
}

// TryAcquire tries once to take n permits and returns at once: nil when held, an error matching
// [ErrNotAcquired] when fewer than n are free, others queued first, or too few nodes answered. With
// more than one node it can also fail while n permits are free, when the nodes that answered hold
// different slots free (after a node restarted, or while another holder's release reaches only
// some of them) and granted different ones: [Semaphore.Acquire] converges on the same slots in a
// further round.
func (s *Semaphore) TryAcquire(ctx context.Context, n int64) error {
	l, err := s.claim(ctx, n, false, "TryAcquire", true)
	if err != nil {
		return err
	}
	s.add(l)
	return nil
}

func (s *Semaphore) add(l *lease.Lease) {
	n := int64(len(l.Units()))
	s.mu.Lock()
	s.held = append(s.held, heldPermits{l, n})
	s.total += n
	s.mu.Unlock()
}

// AcquirePermits blocks like [Semaphore.Acquire], and returns the n permits as a lease of their
// own: its Done, Err and Until say when they are lost, Units which slots they are, and its Release
// (or ReleaseUnits, for part of them) gives them back. [Semaphore.Release] does not count them.
func (s *Semaphore) AcquirePermits(ctx context.Context, n int64) (*lease.Lease, error) {
	return s.claim(ctx, n, true, "Acquire", true)
}

// TryAcquirePermits tries once, like [Semaphore.TryAcquire], and returns the n permits as a lease
// of their own, like [Semaphore.AcquirePermits].
func (s *Semaphore) TryAcquirePermits(ctx context.Context, n int64) (*lease.Lease, error) {
	return s.claim(ctx, n, false, "TryAcquire", true)
}

// Release gives back n of the permits taken with Acquire and TryAcquire — the latest acquisitions
// first, splitting one when n ends inside it — and wakes as many waiters as the permits freed
// serve, in order. It returns [ErrReleaseTooMany] (releasing nothing) when n is more than held,
// and otherwise what the releases of the leases returned: an error matching [ErrLost] for permits
// lost while held, [ErrNotHeld] for permits that had expired, [ErrNotReleased] when too few nodes
// answered. The permits count as released whatever it returns. A nil ctx is refused
// ([ErrInvalidArgument]) and changes nothing.
func (s *Semaphore) Release(ctx context.Context, n int64) error {
	if s == nil {
		return errNil
	}
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	if n < 1 {
		return errs.Invalid("n", "%d permits: want at least 1", n)
	}
	// Decide what goes back and count it as gone under the lock. Whole acquisitions are released
	// after it, so that a slow node holds up neither the acquires nor the other releases; a
	// partial release runs under it, so that no other Release takes that acquisition whole while
	// its units are being given up.
	s.mu.Lock()
	if n > s.total {
		total := s.total
		s.mu.Unlock()
		return fmt.Errorf("%w: %d of %q, %d held", ErrReleaseTooMany, n, s.name, total)
	}
	s.total -= n
	var whole []*lease.Lease
	var part *lease.Lease
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
	var errs []error
	if part != nil {
		errs = append(errs, part.ReleaseUnits(ctx, partN))
	}
	s.mu.Unlock()
	for _, l := range whole {
		errs = append(errs, l.Release(ctx))
	}
	return lease.Join(errs...)
}

// Do takes n permits, runs fn, and gives them back. fn's ctx is cancelled if their lease is lost
// while fn runs; context.Cause then matches [ErrLost]. What Do returns tells the outcomes apart:
// the acquire's error if fn never ran; fn's own result if the permits held to its end; an error
// matching [ErrLost] (or [ErrNotHeld]) if they were lost on the way, with fn's error joined when
// fn failed otherwise; an error matching [ErrNotReleased] if fn succeeded but the release reached
// too few nodes. A loss that Do returns is not also reported to the error handler. Do's permits are
// its own: Release does not count them.
func (s *Semaphore) Do(ctx context.Context, n int64, fn func(ctx context.Context) error) error {
	if s != nil && fn == nil {
		return errs.Invalid("fn", "nil")
	}
	l, err := s.claim(ctx, n, true, "Acquire", false)
	if err != nil {
		return err
	}
	return lease.Run(ctx, l, fn, l.Release, nil)
}

// report hands err to the error handler: the Semaphore's own, else the quorum's (nil-safe).
func (s *Semaphore) report(err error) {
	var q *lease.Quorum
	if s != nil {
		if s.cfg.onError != nil {
			s.cfg.onError(err)
			return
		}
		q = s.q
	}
	q.Report(err)
}
