package mutex

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
	"github.com/quorumsync/quorumsync/lease"
)

// Mutex is a mutual exclusion lock on a name, held across processes through a [lease.Quorum].
// Create it with [New]; the zero value is not usable (its methods return an error matching
// lease.ErrInvalidArgument).
//
// A Mutex is safe for concurrent use by many goroutines, like [sync.Mutex]. Ownership is not tied
// to a goroutine: any goroutine may Unlock. "Held" means held until the lease's validity ends; the
// quorum's watchdog renews it at TTL/3 while the Mutex is locked (see the package doc for what
// happens when it cannot).
//
// A Mutex is small and cheap; make one per name as needed (for example per request). Copying a
// Mutex copies its reference to the held lease; don't.
type Mutex struct {
	s primitive.Shell
	// The requests of Lock and TryLock, built once: the engine only reads them. Do's and TryDo's
	// are built on their first use (most Mutexes never run one), so that a Mutex made for one
	// Lock costs less.
	lockReq, tryReq engine.Request
	doReqs          atomic.Pointer[doRequests]

	mu   sync.Mutex
	held *engine.Lease // taken by Lock or TryLock, for Unlock
}

// New returns a Mutex for name on q. Any non-empty name works. Bad arguments (nil q, empty name, a
// bad TTL) are reported by the methods as lease.ErrInvalidArgument, so that New can be used where a
// Mutex is declared.
func New(q *lease.Quorum, name string, opts ...Option) *Mutex {
	m := &Mutex{s: primitive.New(q, name, errs, opts)}
	base := m.s.Request(engine.Exclusive)
	base.Fencing = m.s.Cfg.Fencing
	base.OnLost = m.s.Report // one method value for both: each evaluation of m.s.Report allocates
	m.lockReq, m.tryReq = base, base
	m.lockReq.Wait, m.lockReq.Operation = true, "Lock"
	m.tryReq.Operation = "TryLock"
	return m
}

// doRequests are the requests of Do and TryDo.
type doRequests struct{ do, tryDo engine.Request }

// doRequests returns m's requests of Do and TryDo, built on first use from Lock's and TryLock's:
// Do returns a loss to its caller, so they report none to the error handler.
func (m *Mutex) doRequests() *doRequests {
	if d := m.doReqs.Load(); d != nil {
		return d
	}
	d := &doRequests{do: m.lockReq, tryDo: m.tryReq}
	d.do.OnLost, d.tryDo.OnLost = nil, nil
	if m.doReqs.CompareAndSwap(nil, d) {
		return d
	}
	return m.doReqs.Load()
}

// Name returns the mutex's name.
func (m *Mutex) Name() string {
	if m == nil {
		return ""
	}
	return m.s.Name
}

var errNil = errs.Invalid("mutex", "nil")

// Lock blocks until m is held, ctx ends, or the quorum closes. Its errors are the acquire
// outcomes of package lease (busy, unavailable, misconfigured, ctx: see lease.ErrNotAcquired):
// a misconfigured node fails it at once, and nothing a failed Lock wrote is left on any node.
func (m *Mutex) Lock(ctx context.Context) error {
	if m == nil {
		return errNil
	}
	_, err := m.take(ctx, &m.lockReq)
	return err
}

// TryLock tries once to acquire m and returns at once: nil when held, else an error matching
// lease.ErrNotAcquired (held elsewhere), lease.ErrUnavailable or lease.ErrMisconfigured.
func (m *Mutex) TryLock(ctx context.Context) error {
	if m == nil {
		return errNil
	}
	_, err := m.take(ctx, &m.tryReq)
	return err
}

// take acquires with r, one of m's requests, and keeps the lease for Unlock; m is not nil.
func (m *Mutex) take(ctx context.Context, r *engine.Request) (*engine.Lease, error) {
	l, err := m.s.Claim(ctx, errs, r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.held = l
	m.mu.Unlock()
	return l, nil
}

// Unlock releases the lock taken by Lock or TryLock and wakes the waiters. It returns
// [ErrNotLocked] if m is not locked, and otherwise what [lease.Lease.Release] returns: m is
// unlocked whatever it returns, and a cancelled ctx cannot leave the lock behind. A nil ctx is
// refused and leaves m locked.
func (m *Mutex) Unlock(ctx context.Context) error {
	if m == nil {
		return errNil
	}
	if err := m.s.Check(errs); err != nil {
		return err
	}
	if ctx == nil {
		return errs.InvalidFor(m.s.Name, "ctx", "nil")
	}
	m.mu.Lock()
	l := m.held
	m.held = nil
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%w %q", ErrNotLocked, m.s.Name)
	}
	return l.Release(ctx)
}

// Obtain blocks like [Mutex.Lock] and returns the lease that holds m: its Done closes if the lock
// is lost, Err says why, Fence gives the fencing token ([WithFencing]), and its Release unlocks.
// The lease is the caller's: [Mutex.Unlock] does not release it. A loss goes to the error handler
// as for Lock.
func (m *Mutex) Obtain(ctx context.Context) (*lease.Lease, error) {
	if m == nil {
		return nil, errNil
	}
	return m.obtain(ctx, &m.lockReq)
}

// TryObtain tries once, like [Mutex.TryLock], and returns the lease like [Mutex.Obtain].
func (m *Mutex) TryObtain(ctx context.Context) (*lease.Lease, error) {
	if m == nil {
		return nil, errNil
	}
	return m.obtain(ctx, &m.tryReq)
}

// obtain acquires with r, one of m's requests; m is not nil.
func (m *Mutex) obtain(ctx context.Context, r *engine.Request) (*lease.Lease, error) {
	l, err := m.s.Claim(ctx, errs, r)
	return (*lease.Lease)(l), err
}

// Do locks m, runs fn, and unlocks m. fn's ctx derives from ctx and is cancelled if the lock is
// lost while fn runs; context.Cause then matches lease.ErrLost. What Do returns tells the
// outcomes apart:
//   - fn never ran: the lock's error;
//   - fn ran and the lock held to its end: fn's own result;
//   - the lock was lost on the way: an error matching lease.ErrLost (or lease.ErrNotHeld), joined
//     with fn's error when fn failed otherwise;
//   - fn succeeded but the unlock reached too few nodes: an error matching lease.ErrNotReleased.
//
// A loss that Do returns is not also reported to the error handler. The lock is Do's own: Unlock
// does not release it.
func (m *Mutex) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if m == nil {
		return errNil
	}
	return m.do(ctx, &m.doRequests().do, fn)
}

// TryDo is [Mutex.Do] with [Mutex.TryLock]: it runs fn only if m could be had at once, and
// otherwise returns the try's error (busy, unavailable or misconfigured) without running fn. It
// is the "run at most one at a time, skip when another runs" guard of a job on several replicas.
// With more than one node, replicas that try at the same instant can split the nodes' votes so
// that none gets a majority: then all of them skip, this time (a try never waits to break the
// tie).
func (m *Mutex) TryDo(ctx context.Context, fn func(ctx context.Context) error) error {
	if m == nil {
		return errNil
	}
	return m.do(ctx, &m.doRequests().tryDo, fn)
}

// do acquires with r, one of m's requests, and runs fn under the lease; m is not nil.
func (m *Mutex) do(ctx context.Context, r *engine.Request, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errs.InvalidFor(m.s.Name, "fn", "nil")
	}
	l, err := m.s.Claim(ctx, errs, r)
	if err != nil {
		return err
	}
	return primitive.Do(ctx, l, fn, nil)
}
