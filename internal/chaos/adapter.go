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
)

// Primitives the suite can drive. rwmutex and semaphore are slots: they land later in this
// repository, and NewLocker refuses them until then.
const (
	PrimMutex     = "mutex"
	PrimRWMutex   = "rwmutex"   // slot: readers (Shared) and writers (Exclusive)
	PrimSemaphore = "semaphore" // slot: Weighted claims of Weight permits out of Capacity
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
	// Fence returns the fencing token and true when the primitive hands out fencing tokens
	// (DESIGN §6). Fencing does not exist yet: every adapter returns false. When WithFencing
	// lands, the mutex adapter returns the lease's token here, and the workload switches that
	// client to the fenced resource by itself.
	Fence() (uint64, bool)
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
		return &mutexLocker{q: q}, nil
	// case PrimRWMutex: an adapter over rwmutex.New(q, name): Mode Shared -> RLock/TryRLock,
	// Exclusive -> Lock/TryLock; its Held releases with RUnlock or Unlock.
	// case PrimSemaphore: an adapter over semaphore.New(q, name, c.Capacity): Acquire(ctx,
	// c.Weight)/TryAcquire; its Held releases Release(ctx, c.Weight).
	default:
		_ = q.Close(ctx)
		return nil, fmt.Errorf("chaos: primitive %q is not available yet", primitive)
	}
}

type mutexLocker struct{ q *lease.Quorum }

func (l *mutexLocker) Primitive() string { return PrimMutex }

func (l *mutexLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, (*mutex.Mutex).Lock)
}

func (l *mutexLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	return l.acquire(ctx, c, (*mutex.Mutex).TryLock)
}

func (l *mutexLocker) acquire(ctx context.Context, c Claim, lock func(*mutex.Mutex, context.Context) error) (Held, error) {
	if c.Mode != Exclusive {
		return nil, fmt.Errorf("chaos: a mutex takes only exclusive claims, not %q", c.Mode)
	}
	// Losses are recorded by the workload (Done, Err); the default handler would log each one.
	m := mutex.New(l.q, c.Name, mutex.WithErrorHandler(func(error) {}))
	if err := lock(m, ctx); err != nil {
		return nil, err
	}
	return &mutexHeld{m: m, l: m.Lease()}, nil
}

func (l *mutexLocker) Close(ctx context.Context) error { return l.q.Close(ctx) }

type mutexHeld struct {
	m *mutex.Mutex
	l *lease.Lease
}

func (h *mutexHeld) Until() time.Time                  { return h.l.Until() }
func (h *mutexHeld) Done() <-chan struct{}             { return h.l.Done() }
func (h *mutexHeld) Err() error                        { return h.l.Err() }
func (h *mutexHeld) Fence() (uint64, bool)             { return 0, false }
func (h *mutexHeld) Release(ctx context.Context) error { return h.m.Unlock(ctx) }
