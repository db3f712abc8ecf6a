package mutex

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quorumsync/quorumsync/lease"
)

// Mutex is a mutual exclusion lock on a name, held across processes through a [lease.Quorum].
// Create it with [New]; the zero value is not usable (its methods return [ErrInvalidArgument]).
//
// A Mutex is safe for concurrent use by many goroutines, like [sync.Mutex]: they exclude each
// other first in the process (FIFO, shared by every Mutex of the same Quorum and name), so only one
// of them talks to Redis at a time. Ownership is not tied to a goroutine: any goroutine may Unlock.
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
	// The acquire options of Lock and TryLock, built once rather than per call.
	lockOpts, tryOpts []lease.AcquireOption

	mu   sync.Mutex
	held *lease.Lease
}

// New returns a Mutex for name on q. Bad arguments (nil q, empty name) are reported by the
// methods as [ErrInvalidArgument], so that New can be used where a Mutex is declared.
func New(q *lease.Quorum, name string, opts ...Option) *Mutex {
	m := &Mutex{q: q, name: name}
	for _, o := range opts {
		if o != nil {
			o.apply(&m.cfg)
		}
	}
	if m.cfg.onError == nil {
		m.cfg.onError = logError
	}
	onLost := lease.OnLost(m.lost)
	m.lockOpts = []lease.AcquireOption{onLost, lease.Traced("mutex", "Lock")}
	m.tryOpts = []lease.AcquireOption{onLost, lease.Traced("mutex", "TryLock")}
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
// matches both [ErrNotAcquired] and ctx's error, and no key is left on any node.
func (m *Mutex) Lock(ctx context.Context) error {
	_, err := m.lock(ctx, true)
	return err
}

// TryLock tries once to acquire m and returns at once: nil when held, an error matching
// [ErrNotAcquired] when another holder (in this process or another) has it or too few nodes
// answered.
func (m *Mutex) TryLock(ctx context.Context) error {
	_, err := m.lock(ctx, false)
	return err
}

func (m *Mutex) lock(ctx context.Context, wait bool) (*lease.Lease, error) {
	if m == nil || m.q == nil {
		return nil, fmt.Errorf("mutex: %w: nil mutex or quorum", ErrInvalidArgument)
	}
	acquire, opts := m.q.TryAcquire, m.tryOpts
	if wait {
		acquire, opts = m.q.Acquire, m.lockOpts
	}
	l, err := acquire(ctx, m.name, opts...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.held = l
	m.mu.Unlock()
	return l, nil
}

func (m *Mutex) lost(err error) {
	m.report(fmt.Errorf("mutex %q: %w", m.name, err))
}

// report hands err to the error handler; it works on a nil or zero Mutex too.
func (m *Mutex) report(err error) {
	if m == nil || m.cfg.onError == nil {
		logError(err)
		return
	}
	m.cfg.onError(err)
}

// Unlock releases m on every node and wakes the waiters. It returns [ErrNotLocked] if m is not
// locked; an error matching [ErrLost] if the lease had been lost while held (the critical section
// was not protected to its end); an error matching [ErrNotHeld] if the servers no longer held it.
// Whatever it returns, m is unlocked afterwards. Unlock does not honour ctx's cancellation, so a
// cancelled ctx cannot leave the lock behind.
func (m *Mutex) Unlock(ctx context.Context) error {
	if m == nil {
		return fmt.Errorf("mutex: %w: nil mutex", ErrInvalidArgument)
	}
	m.mu.Lock()
	l := m.held
	m.held = nil
	m.mu.Unlock()
	if l == nil {
		return ErrNotLocked
	}
	return l.Release(ctx)
}

// Lease returns the lease that holds m, or nil when m is not locked. Its Done channel closes if
// the lease is lost; Err says why; Until says how long it is valid.
func (m *Mutex) Lease() *lease.Lease {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}

// Do locks m, runs fn, and unlocks m. fn gets a ctx derived from ctx that is cancelled if the
// lease is lost while fn runs; context.Cause then matches [ErrLost]. Do returns fn's error joined
// with Unlock's, so a lease lost during fn shows in the result even when fn ignored its ctx.
func (m *Mutex) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if fn == nil {
		return fmt.Errorf("mutex: %w: nil function", ErrInvalidArgument)
	}
	l, err := m.lock(ctx, true)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer l.Observe(ctx)()
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-l.Done():
			cancel(l.Err())
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-watched
		cancel(nil)
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer ucancel()
		err = errors.Join(err, m.Unlock(uctx))
	}()
	return fn(fctx)
}

// unlockTimeout bounds an unlock that runs on a detached ctx (per-node timeouts bound it more
// tightly; this is a backstop).
const unlockTimeout = 10 * time.Second
