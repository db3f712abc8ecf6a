package rwmutex

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
	"github.com/quorumsync/quorumsync/internal/rwkind"
	"github.com/quorumsync/quorumsync/lease"
)

// RWMutex is a reader-writer lock on a name, held across processes through a [lease.Quorum]:
// any number of readers, or one writer. Create it with [New]; the zero value is not usable (its
// methods return lease.ErrInvalidArgument).
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
	s primitive.Shell
	// upgrade is the key under which RDo's ctx carries its read lock (an upgradeKey), boxed once.
	upgrade any
	// The requests of each operation, built once: the engine only reads them.
	rlockReq, tryRLockReq, rdoReq, tryRDoReq, lockReq, tryLockReq, doReq, tryDoReq engine.Request

	mu      sync.Mutex
	readers []*engine.Lease // read locks taken with RLock and TryRLock, oldest first
	writer  *engine.Lease
}

// New returns an RWMutex for name on q. Any non-empty name works; the name space is separate from
// package mutex's (a Mutex and an RWMutex of the same name do not exclude each other). Bad
// arguments (nil q, empty name, a bad TTL) are reported by the methods as lease.ErrInvalidArgument, so
// that New can be used where an RWMutex is declared.
func New(q *lease.Quorum, name string, opts ...Option) *RWMutex {
	rw := &RWMutex{s: primitive.New(q, name, errs, opts), upgrade: upgradeKey{q, name}}
	base := rw.s.Request(rwkind.Readers) // readers and writers share the keys
	req := func(k engine.Kind, wait bool, op string, onLost func(error)) engine.Request {
		r := base
		r.Kind, r.Wait, r.Operation, r.OnLost = k, wait, op, onLost
		r.Fencing = k == rwkind.Writers && rw.s.Cfg.Fencing
		return r
	}
	report := rw.s.Report // one method value for all four: each evaluation of rw.s.Report allocates
	rw.rlockReq = req(rwkind.Readers, true, "RLock", report)
	rw.tryRLockReq = req(rwkind.Readers, false, "TryRLock", report)
	rw.lockReq = req(rwkind.Writers, true, "Lock", report)
	rw.tryLockReq = req(rwkind.Writers, false, "TryLock", report)
	// The Do family returns a loss to its caller: it is not reported a second time.
	rw.rdoReq = req(rwkind.Readers, true, "RLock", nil)
	rw.tryRDoReq = req(rwkind.Readers, false, "TryRLock", nil)
	rw.doReq = req(rwkind.Writers, true, "Lock", nil)
	rw.tryDoReq = req(rwkind.Writers, false, "TryLock", nil)
	return rw
}

// Name returns the name.
func (rw *RWMutex) Name() string {
	if rw == nil {
		return ""
	}
	return rw.s.Name
}

var errNil = errs.Invalid("rwmutex", "nil")

// claim acquires with r, after the checks every method shares.
func (rw *RWMutex) claim(ctx context.Context, r *engine.Request) (*engine.Lease, error) {
	return rw.s.Claim(ctx, errs, r)
}

// RLock blocks until rw is held for reading, ctx ends, or the quorum closes. It waits while a
// writer holds rw, or waits for it (a writer that queued before it, here or in another process):
// writers are not starved by a stream of readers. Its errors are the acquire outcomes of package
// lease (see lease.ErrNotAcquired), and a failed RLock leaves nothing on any node.
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
// lease.ErrNotAcquired when a writer holds rw, is reserved it, or waits for it, and otherwise the
// outcomes of package lease (unavailable, misconfigured).
func (rw *RWMutex) TryRLock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.rlock(ctx, &rw.tryRLockReq)
}

func (rw *RWMutex) rlock(ctx context.Context, r *engine.Request) error {
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
// lock (the error says so when rw is write-locked instead), and otherwise what
// [lease.Lease.Release] returns. The read lock is released whatever it returns. A nil ctx is
// refused (lease.ErrInvalidArgument) and changes nothing.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	if err := rw.s.Check(errs); err != nil {
		return err
	}
	if ctx == nil {
		return errs.InvalidFor(rw.s.Name, "ctx", "nil")
	}
	rw.mu.Lock()
	n := len(rw.readers)
	if n == 0 {
		writeLocked := rw.writer != nil
		rw.mu.Unlock()
		if writeLocked {
			return fmt.Errorf("%w %q: it is write-locked; use Unlock", ErrNotRLocked, rw.s.Name)
		}
		return fmt.Errorf("%w %q", ErrNotRLocked, rw.s.Name)
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
	l, _ := ctx.Value(rw.upgrade).(*engine.Lease)
	return l != nil && l.Err() == nil
}

func (rw *RWMutex) errUpgrade() error { return fmt.Errorf("%w %q", ErrUpgrade, rw.s.Name) }

// Lock blocks until rw is held for writing — no reader and no other writer, in this process or
// another — ctx ends, or the quorum closes. Once it waits, readers that come after it wait for it.
// Its errors are the acquire outcomes of package lease (see lease.ErrNotAcquired), and a failed
// Lock leaves nothing on any node. Called with the ctx of an [RWMutex.RDo] of the same name (a read lock held),
// it returns [ErrUpgrade] at once instead of waiting for itself.
func (rw *RWMutex) Lock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.lock(ctx, &rw.lockReq)
}

// TryLock tries once to take the write lock and returns at once: nil when held, an error matching
// lease.ErrNotAcquired when readers or a writer hold rw, or others queued first, and otherwise the
// outcomes of package lease (unavailable, misconfigured); [ErrUpgrade] as for Lock.
func (rw *RWMutex) TryLock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	return rw.lock(ctx, &rw.tryLockReq)
}

func (rw *RWMutex) lock(ctx context.Context, r *engine.Request) error {
	_, err := rw.wlock(ctx, r)
	return err
}

func (rw *RWMutex) wlock(ctx context.Context, r *engine.Request) (*engine.Lease, error) {
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
// nil ctx is refused (lease.ErrInvalidArgument) and changes nothing.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	if rw == nil {
		return errNil
	}
	if err := rw.s.Check(errs); err != nil {
		return err
	}
	if ctx == nil {
		return errs.InvalidFor(rw.s.Name, "ctx", "nil")
	}
	rw.mu.Lock()
	l := rw.writer
	rw.writer = nil
	readLocked := len(rw.readers) > 0
	rw.mu.Unlock()
	if l == nil {
		if readLocked {
			return fmt.Errorf("%w %q: it is read-locked; use RUnlock", ErrNotLocked, rw.s.Name)
		}
		return fmt.Errorf("%w %q", ErrNotLocked, rw.s.Name)
	}
	return l.Release(ctx)
}

// RDo takes a read lock, runs fn, and releases that read lock (RDo's read lock is its own:
// RUnlock does not release it). fn's ctx is cancelled if the lease is lost while fn runs;
// context.Cause then matches lease.ErrLost. The outcomes read as for [RWMutex.Do]. A write lock
// asked for with fn's ctx returns [ErrUpgrade].
func (rw *RWMutex) RDo(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	return rw.do(ctx, &rw.rdoReq, fn)
}

// TryRDo is [RWMutex.RDo] with [RWMutex.TryRLock]: it runs fn only if a read lock could be had
// at once, and otherwise returns the try's error without running fn.
func (rw *RWMutex) TryRDo(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	return rw.do(ctx, &rw.tryRDoReq, fn)
}

// Do takes the write lock, runs fn, and releases it (Do's lock is its own: Unlock does not
// release it). fn's ctx is cancelled if the lease is lost while fn runs; context.Cause then
// matches lease.ErrLost. What Do returns tells the outcomes apart: the lock's error if fn never
// ran; fn's own result if the lock held to its end; an error matching lease.ErrLost (or
// lease.ErrNotHeld) if the lock was lost on the way, with fn's error joined when fn failed
// otherwise; an error matching lease.ErrNotReleased if fn succeeded but the release reached too
// few nodes. A loss that Do returns is not also reported to the error handler.
func (rw *RWMutex) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	return rw.do(ctx, &rw.doReq, fn)
}

// TryDo is [RWMutex.Do] with [RWMutex.TryLock]: it runs fn only if the write lock could be had at
// once, and otherwise returns the try's error without running fn.
func (rw *RWMutex) TryDo(ctx context.Context, fn func(ctx context.Context) error) error {
	if rw == nil {
		return errNil
	}
	return rw.do(ctx, &rw.tryDoReq, fn)
}

func (rw *RWMutex) do(ctx context.Context, r *engine.Request, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errs.InvalidFor(rw.s.Name, "fn", "nil")
	}
	if r.Kind == rwkind.Writers && rw.upgrading(ctx) {
		return rw.errUpgrade()
	}
	l, err := rw.claim(ctx, r)
	if err != nil {
		return err
	}
	var mark func(context.Context) context.Context
	if r.Kind == rwkind.Readers {
		mark = func(ctx context.Context) context.Context { return context.WithValue(ctx, rw.upgrade, l) }
	}
	return primitive.Do(ctx, l, fn, mark)
}

// Obtain blocks like [RWMutex.Lock] and returns the lease of the write lock: its Done closes if
// the lock is lost, Err says why, Fence gives the fencing token ([WithFencing]), and its Release
// unlocks. The lease is the caller's: [RWMutex.Unlock] does not release it.
func (rw *RWMutex) Obtain(ctx context.Context) (*lease.Lease, error) {
	if rw == nil {
		return nil, errNil
	}
	return rw.obtain(ctx, &rw.lockReq)
}

// TryObtain tries once, like [RWMutex.TryLock], and returns the lease like [RWMutex.Obtain].
func (rw *RWMutex) TryObtain(ctx context.Context) (*lease.Lease, error) {
	if rw == nil {
		return nil, errNil
	}
	return rw.obtain(ctx, &rw.tryLockReq)
}

// ObtainRead blocks like [RWMutex.RLock] and returns the lease of that read lock, the caller's to
// release: [RWMutex.RUnlock] does not release it.
func (rw *RWMutex) ObtainRead(ctx context.Context) (*lease.Lease, error) {
	if rw == nil {
		return nil, errNil
	}
	return rw.obtain(ctx, &rw.rlockReq)
}

// TryObtainRead tries once, like [RWMutex.TryRLock], and returns the lease like
// [RWMutex.ObtainRead].
func (rw *RWMutex) TryObtainRead(ctx context.Context) (*lease.Lease, error) {
	if rw == nil {
		return nil, errNil
	}
	return rw.obtain(ctx, &rw.tryRLockReq)
}

func (rw *RWMutex) obtain(ctx context.Context, r *engine.Request) (*lease.Lease, error) {
	if r.Kind == rwkind.Writers && rw.upgrading(ctx) {
		return nil, rw.errUpgrade()
	}
	l, err := rw.claim(ctx, r)
	return (*lease.Lease)(l), err
}
