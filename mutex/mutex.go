package mutex

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// Mutex is a mutual exclusion lock on a name, held across processes through a [lease.Quorum].
// Create it with [New]; the zero value is not usable (its methods return [ErrInvalidArgument]).
//
// A Mutex is safe for concurrent use by many goroutines, like [sync.Mutex]: they exclude each
// other first in the process (FIFO, shared by every Mutex of the same Quorum and name), so only one
// of them talks to Redis at a time, and an Unlock may pass the lock straight to the next of them
// (see the package doc). Ownership is not tied to a goroutine: any goroutine may Unlock.
//
// "Held" means held until the lease's validity ends. The quorum's watchdog renews it at TTL/3 while
// the Mutex is locked; if renewal fails for longer than the validity left, the lease is lost and
// [Mutex.Lease]'s Done closes. Use [Mutex.Do] to have the work cancelled then.
//
// A Mutex is small and cheap; make one per name as needed (for example per request). Copying a
// Mutex copies its reference to the held lease; don't.
type Mutex struct {
	q    *lease.Quorum
	name string
	cfg  config
	// The requests of Lock, TryLock and Do, built once: the engine only reads them.
	lockReq, tryReq, doReq lease.Request

	mu   sync.Mutex
	held *lease.Lease
}

// New returns a Mutex for name on q. Any non-empty name works. Bad arguments (nil q, empty name, a
// bad TTL) are reported by the methods as [ErrInvalidArgument], so that New can be used where a
// Mutex is declared.
func New(q *lease.Quorum, name string, opts ...Option) *Mutex {
	m := &Mutex{q: q, name: name}
	for _, o := range opts {
		if o != nil {
			o.apply(&m.cfg)
		}
	}
	base := lease.Request{Kind: lease.Exclusive, Name: name, TTL: m.cfg.ttl, Fencing: m.cfg.fencing, Primitive: "mutex", Errors: errs}
	q.Prepare(&base) // the name's keys, once for every Lock
	m.lockReq, m.tryReq, m.doReq = base, base, base
	m.lockReq.Wait, m.lockReq.Operation, m.lockReq.OnLost = true, "Lock", m.lost
	m.tryReq.Operation, m.tryReq.OnLost = "TryLock", m.lost
	// Do returns a loss to its caller: it is not reported a second time.
	m.doReq.Wait, m.doReq.Operation = true, "Lock"
	return m
}

// Name returns the mutex's name.
func (m *Mutex) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// Lock blocks until m is held, ctx ends, or the quorum closes. When ctx ends first, the error
// matches both [ErrNotAcquired] and ctx's error, names the mutex, carries the node errors of the
// last attempt when nodes failed (an outage does not look like contention), and no key is left on
// any node.
func (m *Mutex) Lock(ctx context.Context) error {
	if m == nil {
		return errNilMutex
	}
	_, err := m.lock(ctx, &m.lockReq)
	return err
}

// TryLock tries once to acquire m and returns at once: nil when held, an error matching
// [ErrNotAcquired] when another holder (in this process or another) has it or too few nodes
// answered.
func (m *Mutex) TryLock(ctx context.Context) error {
	if m == nil {
		return errNilMutex
	}
	_, err := m.lock(ctx, &m.tryReq)
	return err
}

var errNilMutex = errs.Invalid("mutex", "nil")

func (m *Mutex) lock(ctx context.Context, r *lease.Request) (*lease.Lease, error) {
	if m.q == nil {
		return nil, errs.Invalid("mutex", "not made by New, or made with a nil quorum")
	}
	l, err := m.q.Claim(ctx, r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.held = l
	m.mu.Unlock()
	return l, nil
}

func (m *Mutex) lost(err error) { m.report(err) }

// report hands err to the error handler: the mutex's own, else the quorum's (which is nil-safe).
func (m *Mutex) report(err error) {
	var q *lease.Quorum
	if m != nil {
		if m.cfg.onError != nil {
			m.cfg.onError(err)
			return
		}
		q = m.q
	}
	q.Report(err)
}

// Unlock releases m on every node and wakes the waiters. It returns [ErrNotLocked] if m is not
// locked; an error matching [ErrLost] if the lease had been lost while held (the critical section
// was not protected to its end); one matching [ErrNotHeld] if the servers no longer held it; one
// matching [ErrNotReleased] if too few nodes answered (the lock expires by itself within its TTL).
// Whatever it returns, m is unlocked afterwards. Unlock does not honour ctx's cancellation, so a
// cancelled ctx cannot leave the lock behind; a nil ctx is refused ([ErrInvalidArgument]) and
// leaves m locked.
func (m *Mutex) Unlock(ctx context.Context) error {
	if m == nil {
		return errNilMutex
	}
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	m.mu.Lock()
	l := m.held
	m.held = nil
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%w %q", ErrNotLocked, m.name)
	}
	return l.Release(ctx)
}

// Lease returns the lease that holds m, or nil when m is not locked. Its Done channel closes if
// the lease is lost; Err says why; Until says how long it is valid. Its methods are safe on nil:
// m.Lease().Done() of an unlocked m is a closed channel.
func (m *Mutex) Lease() *lease.Lease {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}

// Do locks m, runs fn, and unlocks m. fn gets a ctx derived from ctx that is cancelled if the
// lease is lost while fn runs; context.Cause then matches [ErrLost]. What Do returns tells the
// outcomes apart:
//   - fn never ran: the error of the lock (matching [ErrNotAcquired], ctx's error, [ErrClosed]
//     or [ErrInvalidArgument]);
//   - fn ran and the lock held to its end: fn's own result;
//   - fn ran but the lock was lost on the way (Do's ctx was cancelled, or the unlock found it
//     gone): an error matching [ErrLost] (or [ErrNotHeld]), with fn's error joined when fn failed
//     otherwise;
//   - fn succeeded but the unlock reached too few nodes: an error matching [ErrNotReleased] (the
//     lock expires on the servers by itself).
//
// A loss that Do returns is not also reported to the error handler. Errors read on one line.
func (m *Mutex) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if m == nil {
		return errNilMutex
	}
	if fn == nil {
		return errs.Invalid("fn", "nil")
	}
	l, err := m.lock(ctx, &m.doReq)
	if err != nil {
		return err
	}
	return lease.Run(ctx, l, fn, m.Unlock, nil)
}
