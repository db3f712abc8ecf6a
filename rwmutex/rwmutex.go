package rwmutex

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumsync/quorumsync/lease"
)

// RWMutex is a reader-writer lock on a name, held across processes through a [lease.Quorum]:
// any number of readers, or one writer. Create it with [New]; the zero value is not usable (its
// methods return [ErrInvalidArgument]).
//
// An RWMutex is safe for concurrent use by many goroutines, like [sync.RWMutex]. Goroutines of one
// process are admitted locally first, on a gate shared by every RWMutex of the same Quorum and
// name: readers together, a writer alone, in arrival order — a waiting writer holds up the readers
// that come after it. Ownership is not tied to a goroutine: any goroutine may RUnlock or Unlock.
//
// Each read lock is a lease of its own on the servers (RUnlock releases the one taken last), and
// so is the write lock; the quorum's watchdog renews them at TTL/3 while they are held. If renewal
// fails for longer than the validity left, the lease is lost and its Done closes; use
// [RWMutex.RDo] and [RWMutex.Do] to have the work cancelled then.
//
// An RWMutex is small and cheap; make one per name as needed. Copying an RWMutex copies its
// references to the leases it holds; don't.
type RWMutex struct {
	q    *lease.Quorum
	name string
	cfg  config
	// upgrade is the key under which RDo's ctx carries its read lock (an upgradeKey), boxed once.
	upgrade any
	// The requests of each operation, built once: the engine only reads them.
	rlockReq, tryRLockReq, rdoReq, lockReq, tryLockReq, doReq lease.Request

	mu      sync.Mutex
	readers []*lease.Lease // read locks taken with RLock and TryRLock, oldest first
	writer  *lease.Lease
}

// New returns an RWMutex for name on q. Any non-empty name works; the name space is separate from
// package mutex's (a Mutex and an RWMutex of the same name do not exclude each other). Bad
// arguments (nil q, empty name, a bad TTL) are reported by the methods as [ErrInvalidArgument], so
// that New can be used where an RWMutex is declared.
func New(q *lease.Quorum, name string, opts ...Option) *RWMutex {
	rw := &RWMutex{q: q, name: name, upgrade: upgradeKey{q, name}}
	for _, o := range opts {
		if o != nil {
			o.apply(&rw.cfg)
		}
	}
	base := lease.Request{Kind: readers, Name: name, TTL: rw.cfg.ttl, Primitive: "rwmutex", Errors: errs}
	q.Prepare(&base) // readers and writers share the keys
	req := func(k lease.Kind, wait bool, op string, onLost func(error)) lease.Request {
		r := base
		r.Kind, r.Wait, r.Operation, r.OnLost = k, wait, op, onLost
		return r
	}
	rw.rlockReq = req(readers, true, "RLock", rw.report)
	rw.tryRLockReq = req(readers, false, "TryRLock", rw.report)
	rw.lockReq = req(writers, true, "Lock", rw.report)
	rw.tryLockReq = req(writers, false, "TryLock", rw.report)
	rw.lockReq.Fencing, rw.tryLockReq.Fencing = rw.cfg.fencing, rw.cfg.fencing
	// RDo and Do return a loss to their caller: it is not reported a second time.
	rw.rdoReq = req(readers, true, "RLock", nil)
	rw.doReq = req(writers, true, "Lock", nil)
	rw.doReq.Fencing = rw.cfg.fencing
	return rw
}

// Name returns the name.
func (rw *RWMutex) Name() string {
	if rw == nil {
		return ""
	}
	return rw.name
}

var errNil = errs.Invalid("rwmutex", "nil")

// claim acquires with r, after the checks every method shares.
func (rw *RWMutex) claim(ctx context.Context, r *lease.Request) (*lease.Lease, error) {
	if rw.q == nil {
		return nil, errs.Invalid("rwmutex", "not made by New, or made with a nil quorum")
	}
	return rw.q.Claim(ctx, r)
}

// RLock blocks until rw is held for reading, ctx ends, or the quorum closes. It waits while a
// writer holds rw, or waits for it (a writer that queued before it, here or in another process):
// writers are not starved by a stream of readers. When ctx ends first, the error matches both
// [ErrNotAcquired] and ctx's error, and nothing is left on any node.
//
// A goroutine that holds a read lock must not RLock again while a writer may be waiting: the
// writer waits for the first read lock, and the second waits for the writer.
func (rw *RWMutex) RLock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.rlock(ctx, &rw.rlockReq)
}

// TryRLock tries once to take a read lock and returns at once: nil when held, an error matching
// [ErrNotAcquired] when a writer holds rw, is reserved it, or waits for it, or too few nodes
// answered.
func (rw *RWMutex) TryRLock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.rlock(ctx, &rw.tryRLockReq)
}

func (rw *RWMutex) rlock(ctx context.Context, r *lease.Request) error {
	l, err := rw.claim(ctx, r)
	if err != nil {
		return err
	}
	rw.mu.Lock()
	rw.readers = append(rw.readers, l)
	rw.mu.Unlock()
	return nil
}

// RUnlock releases the read lock rw took last. It returns [ErrNotRLocked] if rw holds no read
// lock (the error says so when rw is write-locked instead), an error matching [ErrLost] if that
// lease had been lost, one matching [ErrNotHeld] if the servers no longer held it, one matching
// [ErrNotReleased] if too few nodes answered. The read lock is released whatever it returns. A nil
// ctx is refused ([ErrInvalidArgument]) and changes nothing.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	rw.mu.Lock()
	n := len(rw.readers)
	if n == 0 {
		writeLocked := rw.writer != nil
		rw.mu.Unlock()
		if writeLocked {
			return fmt.Errorf("%w %q: it is write-locked; use Unlock", ErrNotRLocked, rw.name)
		}
		return fmt.Errorf("%w %q", ErrNotRLocked, rw.name)
	}
	l := rw.readers[n-1]
	rw.readers[n-1] = nil
	rw.readers = rw.readers[:n-1]
	rw.mu.Unlock()
	return l.Release(ctx)
}

// upgradeKey is the key under which the ctx an RDo gives its function carries the read lock it
// holds: a write lock asked for with that ctx while the read lock is held would wait for it.
type upgradeKey struct {
	q    *lease.Quorum
	name string
}

// upgrading reports whether ctx is (or derives from) the ctx of an RDo of rw's name whose read
// lock is still held: a ctx kept, or detached, after RDo returned asks for a write lock freely.
func (rw *RWMutex) upgrading(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	l, _ := ctx.Value(rw.upgrade).(*lease.Lease)
	return l != nil && l.Err() == nil
}

func (rw *RWMutex) errUpgrade() error { return fmt.Errorf("%w %q", ErrUpgrade, rw.name) }

// Lock blocks until rw is held for writing — no reader and no other writer, in this process or
// another — ctx ends, or the quorum closes. Once it waits, readers that come after it wait for it.
// When ctx ends first, the error matches both [ErrNotAcquired] and ctx's error, and nothing is
// left on any node. Called with the ctx of an [RWMutex.RDo] of the same name (a read lock held),
// it returns [ErrUpgrade] at once instead of waiting for itself.
func (rw *RWMutex) Lock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.lock(ctx, &rw.lockReq)
}

// TryLock tries once to take the write lock and returns at once: nil when held, an error matching
// [ErrNotAcquired] when readers or a writer hold rw, or others queued first, or too few nodes
// answered; [ErrUpgrade] as for Lock.
func (rw *RWMutex) TryLock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.lock(ctx, &rw.tryLockReq)
}

func (rw *RWMutex) lock(ctx context.Context, r *lease.Request) error {
	_, err := rw.wlock(ctx, r)
	return err
}

func (rw *RWMutex) wlock(ctx context.Context, r *lease.Request) (*lease.Lease, error) {
	if rw.upgrading(ctx) {
		return nil, rw.errUpgrade()
	}
	l, err := rw.claim(ctx, r)
	if err != nil {
		return nil, err
	}
	rw.mu.Lock()
	rw.writer = l
	rw.mu.Unlock()
	return l, nil
}

// Unlock releases the write lock. It returns [ErrNotLocked] if rw holds none (the error says so
// when rw is read-locked instead), and otherwise what [RWMutex.RUnlock] would for its lease. A
// nil ctx is refused ([ErrInvalidArgument]) and changes nothing.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	rw.mu.Lock()
	l := rw.writer
	rw.writer = nil
	readLocked := len(rw.readers) > 0
	rw.mu.Unlock()
	if l == nil {
		if readLocked {
			return fmt.Errorf("%w %q: it is read-locked; use RUnlock", ErrNotLocked, rw.name)
		}
		return fmt.Errorf("%w %q", ErrNotLocked, rw.name)
	}
	return l.Release(ctx)
}

// Lease returns the lease of the write lock, or nil when rw is not write-locked. Its methods are
// safe on nil.
func (rw *RWMutex) Lease() *lease.Lease {
	if rw == nil {
		return nil
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.writer
}

// RLease returns the lease of the read lock rw took last (the one RUnlock would release), or nil
// when rw holds no read lock. Its methods are safe on nil.
func (rw *RWMutex) RLease() *lease.Lease {
	if rw == nil {
		return nil
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.readers) == 0 {
		return nil
	}
	return rw.readers[len(rw.readers)-1]
}

// RDo takes a read lock, runs fn, and releases that read lock (RDo's read lock is its own: RUnlock
// does not release it). fn's ctx is cancelled if the lease is lost while fn runs; context.Cause
// then matches [ErrLost]. The outcomes read as for [RWMutex.Do]. A write lock asked for with fn's
// ctx returns [ErrUpgrade].
func (rw *RWMutex) RDo(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	if fn == nil {
		return errs.Invalid("fn", "nil")
	}
	l, err := rw.claim(ctx, &rw.rdoReq)
	if err != nil {
		return err
	}
	return lease.Run(ctx, l, fn, l.Release, func(ctx context.Context) context.Context {
		return context.WithValue(ctx, rw.upgrade, l)
	})
}

// Do takes the write lock, runs fn, and unlocks. fn's ctx is cancelled if the lease is lost while
// fn runs; context.Cause then matches [ErrLost]. What Do returns tells the outcomes apart: the
// lock's error if fn never ran; fn's own result if the lock held to its end; an error matching
// [ErrLost] (or [ErrNotHeld]) if the lock was lost on the way, with fn's error joined when fn
// failed otherwise; an error matching [ErrNotReleased] if fn succeeded but the unlock reached too
// few nodes. A loss that Do returns is not also reported to the error handler.
func (rw *RWMutex) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	if fn == nil {
		return errs.Invalid("fn", "nil")
	}
	l, err := rw.wlock(ctx, &rw.doReq)
	if err != nil {
		return err
	}
	return lease.Run(ctx, l, fn, rw.Unlock, nil)
}

// report hands err to the error handler: the RWMutex's own, else the quorum's (nil-safe).
func (rw *RWMutex) report(err error) {
	var q *lease.Quorum
	if rw != nil {
		if rw.cfg.onError != nil {
			rw.cfg.onError(err)
			return
		}
		q = rw.q
	}
	q.Report(err)
}
