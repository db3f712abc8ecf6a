package chaos

// The suite's only contact with the library: everything else drives a [Locker]. When the
// engine's API changes, or a primitive lands, this is the file to update.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// Primitives the suite drives.
const (
	PrimMutex     = "mutex"
	PrimRWMutex   = "rwmutex"   // readers (Shared) and writers (Exclusive)
	PrimSemaphore = "semaphore" // Weighted claims of Weight permits out of Capacity
)

// Claim is what a critical section asks for: a name, and how it shares it (see [Mode]). Weight
// and Capacity matter for Weighted claims only.
type Claim struct {
	Name     string
	Mode     Mode
	Weight   int
	Capacity int
}

// Held is a claim while it is held: the lease's validity and loss signal, the fencing token when
// the primitive hands one out, and the release.
type Held interface {
	// Until is the end of the lease's validity, as last renewed.
	Until() time.Time
	// Done is closed when the lease ends (lost or released).
	Done() <-chan struct{}
	// Err is nil while held, non-nil once the lease was lost or released.
	Err() error
	// Fence returns the fencing token and true when the claim has one (DESIGN §6): with
	// LeaseConfig.Fencing, a mutex's and an rwmutex writer's; the workload then uses the fenced
	// resource. Readers and semaphore permits have none here (a semaphore's are per slot).
	Fence() (uint64, bool)
	// Slots returns a semaphore permit's slots and, when it has them, each slot's fencing token
	// (nil for other claims).
	Slots() ([]int64, []uint64)
	// Release gives the claim up.
	Release(ctx context.Context) error
}

// Locker is one client's handle on one primitive: it owns the client's quorum.
type Locker interface {
	// Primitive names the primitive ("mutex", ...).
	Primitive() string
	// Acquire blocks until the claim is held or ctx ends.
	Acquire(ctx context.Context, c Claim) (Held, error)
	// TryAcquire tries once.
	TryAcquire(ctx context.Context, c Claim) (Held, error)
	// Close releases what is still held and stops the quorum's goroutines. It does not close
	// the node clients.
	Close(ctx context.Context) error
}

// LeaseConfig is the quorum configuration every client of a scenario shares.
type LeaseConfig struct {
	TTL         time.Duration `json:"ttl"`
	NodeTimeout time.Duration `json:"nodeTimeout"`
	// Fencing takes exclusive claims WithFencing.
	Fencing bool `json:"fencing,omitempty"`
	// ClockRate runs the nodes' wall clocks that much faster than real time (1.009: 0.9% fast),
	// within the drift the validity rule allows for (1% + 2ms); 0 runs them at real time.
	ClockRate float64 `json:"clockRate,omitempty"`
}

// NewLocker builds a Locker for primitive over the given node clients.
func NewLocker(ctx context.Context, primitive string, nodes []redis.UniversalClient, cfg LeaseConfig) (Locker, error) {
	q, err := lease.NewQuorum(ctx, nodes,
		lease.WithTTL(cfg.TTL),
		lease.WithNodeTimeout(cfg.NodeTimeout),
		// Nodes that are down when a client (re)starts are part of the test, not news.
		lease.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return nil, err
	}
	switch primitive {
	case PrimMutex:
		return &mutexLocker{q: q, fencing: cfg.Fencing}, nil
	case PrimRWMutex:
		return &rwLocker{q: q, fencing: cfg.Fencing}, nil
	case PrimSemaphore:
		return &semLocker{q: q, fencing: cfg.Fencing}, nil
	default:
		_ = q.Close(ctx)
		return nil, fmt.Errorf("chaos: no primitive %q", primitive)
	}
}

// quiet drops the errors the primitives would report: losses are recorded by the workload (Done,
// Err), and the default handler would log each one.
func quiet(error) {}

type mutexLocker struct {
	q       *lease.Quorum
	fencing bool
}

func (l *mutexLocker) Primitive() string { return PrimMutex }

func (l *mutexLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, (*mutex.Mutex).Obtain)
}

func (l *mutexLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, (*mutex.Mutex).TryObtain)
}

func (l *mutexLocker) acquire(ctx context.Context, c Claim, obtain func(*mutex.Mutex, context.Context) (*lease.Lease, error)) (Held, error) {
	if c.Mode != Exclusive {
		return nil, fmt.Errorf("chaos: a mutex takes only exclusive claims, not %q", c.Mode)
	}
	opts := []mutex.Option{mutex.WithErrorHandler(quiet)}
	if l.fencing {
		opts = append(opts, mutex.WithFencing())
	}
	held, err := obtain(mutex.New(l.q, c.Name, opts...), ctx)
	if err != nil {
		return nil, err
	}
	return &leaseHeld{l: held, release: held.Release}, nil
}

func (l *mutexLocker) Close(ctx context.Context) error { return l.q.Close(ctx) }

// leaseHeld is a held claim of any primitive: its lease, and how to give it back.
type leaseHeld struct {
	l       *lease.Lease
	release func(context.Context) error
}

func (h *leaseHeld) Until() time.Time      { return h.l.Until() }
func (h *leaseHeld) Done() <-chan struct{} { return h.l.Done() }
func (h *leaseHeld) Err() error            { return h.l.Err() }
func (h *leaseHeld) Fence() (uint64, bool) {
	t, err := h.l.Fence()
	return t, err == nil
}
func (h *leaseHeld) Slots() ([]int64, []uint64) {
	units := h.l.Units()
	if len(units) == 0 {
		return nil, nil
	}
	fences, err := h.l.Fences()
	if err != nil {
		fences = nil
	}
	return units, fences
}
func (h *leaseHeld) Release(ctx context.Context) error { return h.release(ctx) }

// rwLocker takes Shared claims as read locks and Exclusive ones as write locks, each on an RWMutex
// value of its own, so that the release gives back exactly that lock.
type rwLocker struct {
	q       *lease.Quorum
	fencing bool
}

func (l *rwLocker) Primitive() string { return PrimRWMutex }

func (l *rwLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, true)
}

func (l *rwLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, false)
}

func (l *rwLocker) acquire(ctx context.Context, c Claim, wait bool) (Held, error) {
	opts := []rwmutex.Option{rwmutex.WithErrorHandler(quiet)}
	if l.fencing {
		opts = append(opts, rwmutex.WithFencing())
	}
	rw := rwmutex.New(l.q, c.Name, opts...)
	var obtain func(context.Context) (*lease.Lease, error)
	switch {
	case c.Mode == Shared && wait:
		obtain = rw.ObtainRead
	case c.Mode == Shared:
		obtain = rw.TryObtainRead
	case c.Mode == Exclusive && wait:
		obtain = rw.Obtain
	case c.Mode == Exclusive:
		obtain = rw.TryObtain
	default:
		return nil, fmt.Errorf("chaos: an rwmutex takes shared or exclusive claims, not %q", c.Mode)
	}
	held, err := obtain(ctx)
	if err != nil {
		return nil, err
	}
	return &leaseHeld{l: held, release: held.Release}, nil
}

func (l *rwLocker) Close(ctx context.Context) error { return l.q.Close(ctx) }

// semLocker takes Weighted claims as one acquisition's permits (a handle of their own), with a
// fencing token per slot when fencing is on.
type semLocker struct {
	q       *lease.Quorum
	fencing bool
}

func (l *semLocker) Primitive() string { return PrimSemaphore }

func (l *semLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, true)
}

func (l *semLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, false)
}

func (l *semLocker) acquire(ctx context.Context, c Claim, wait bool) (Held, error) {
	if c.Mode != Weighted {
		return nil, fmt.Errorf("chaos: a semaphore takes only weighted claims, not %q", c.Mode)
	}
	opts := []semaphore.Option{semaphore.WithErrorHandler(quiet)}
	if l.fencing {
		opts = append(opts, semaphore.WithFencing())
	}
	s := semaphore.New(l.q, c.Name, int64(c.Capacity), opts...)
	take := s.TryObtain
	if wait {
		take = s.Obtain
	}
	p, err := take(ctx, int64(c.Weight))
	if err != nil {
		return nil, err
	}
	return &leaseHeld{l: p, release: p.Release}, nil
}

func (l *semLocker) Close(ctx context.Context) error { return l.q.Close(ctx) }
