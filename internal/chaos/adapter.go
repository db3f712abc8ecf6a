package chaos

// The suite's only contact with the library: everything else drives a [Locker]. When the
// engine's API changes, or a primitive lands, this is the file to update.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/election"
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
	// PrimMulti locks Claim.Names with a mutex.Multi, all or nothing, and a claim without Names
	// with a mutex.Mutex of Claim.Name: both lock each name the same way, so they exclude each
	// other.
	PrimMulti = "multi"
	// PrimElection campaigns in the election of Claim.Name (package election): a claim held is a
	// leadership, its fencing token the term, its release a Resign.
	PrimElection = "election"
)

// Claim is what a critical section asks for: a name, and how it shares it (see [Mode]). Weight
// and Capacity matter for Weighted claims only.
type Claim struct {
	Name     string
	Mode     Mode
	Weight   int
	Capacity int
	// Names, for a multi claim, are the names a mutex.Multi locks together, in the order the
	// client listed them (the Multi sorts them); Name is then only a label.
	Names []string
	// Owner is the client goroutine that takes the claim, and Value what it campaigns with (an
	// election: one candidate per owner and name, campaigning again after each Resign).
	Owner, Value string
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
	// Names returns a multi claim's names, in the order of its leases (sorted), and, fenced, each
	// name's token (nil for other claims).
	Names() ([]string, []uint64)
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
	case PrimMulti:
		return &multiLocker{mutexLocker{q: q, fencing: cfg.Fencing}}, nil
	case PrimElection:
		return &electionLocker{q: q, cands: map[[2]string]*election.Election{}}, nil
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
func (h *leaseHeld) Names() ([]string, []uint64)       { return nil, nil }
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

// multiLocker takes a claim with Names as a mutex.Multi of them (a MultiLease), and one without as
// the mutexLocker does.
type multiLocker struct{ mutexLocker }

func (l *multiLocker) Primitive() string { return PrimMulti }

func (l *multiLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	if len(c.Names) == 0 {
		return l.mutexLocker.Acquire(ctx, c)
	}
	return l.acquireMulti(ctx, c, (*mutex.Multi).Obtain)
}

func (l *multiLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	if len(c.Names) == 0 {
		return l.mutexLocker.TryAcquire(ctx, c)
	}
	return l.acquireMulti(ctx, c, (*mutex.Multi).TryObtain)
}

func (l *multiLocker) acquireMulti(ctx context.Context, c Claim, obtain func(*mutex.Multi, context.Context) (*mutex.MultiLease, error)) (Held, error) {
	if c.Mode != Exclusive {
		return nil, fmt.Errorf("chaos: a multi takes only exclusive claims, not %q", c.Mode)
	}
	opts := []mutex.Option{mutex.WithErrorHandler(quiet)}
	if l.fencing {
		opts = append(opts, mutex.WithFencing())
	}
	m := mutex.NewMulti(l.q, c.Names, opts...)
	ml, err := obtain(m, ctx)
	if err != nil {
		return nil, err
	}
	h := &multiHeld{ml: ml, names: m.Names()}
	// The leases come in the order of Names, each of its name: the fences are read per name on
	// that promise, so a lease of another name would show as a fencing violation, and is
	// refused here first.
	for i, ls := range ml.Leases() {
		if i >= len(h.names) || ls.Name() != h.names[i] {
			_ = ml.Release(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("chaos: multi %v: lease %d is of %q", h.names, i, ls.Name())
		}
	}
	if l.fencing {
		if h.fences, err = ml.Fences(); err != nil {
			_ = ml.Release(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("chaos: multi %v: fences: %w", h.names, err)
		}
	}
	return h, nil
}

// multiHeld is a held mutex.Multi: one validity (the earliest Until), one Done (any name's lease
// ending), a token per name.
type multiHeld struct {
	ml     *mutex.MultiLease
	names  []string
	fences []uint64
}

func (h *multiHeld) Until() time.Time                  { return h.ml.Until() }
func (h *multiHeld) Done() <-chan struct{}             { return h.ml.Done() }
func (h *multiHeld) Err() error                        { return h.ml.Err() }
func (h *multiHeld) Fence() (uint64, bool)             { return 0, false }
func (h *multiHeld) Slots() ([]int64, []uint64)        { return nil, nil }
func (h *multiHeld) Names() ([]string, []uint64)       { return h.names, h.fences }
func (h *multiHeld) Release(ctx context.Context) error { return h.ml.Release(ctx) }

// electionLocker campaigns: each (owner, name) is one candidate, an election.Election kept
// across its campaigns (campaign, lead, resign, campaign again).
type electionLocker struct {
	q *lease.Quorum

	mu    sync.Mutex
	cands map[[2]string]*election.Election
}

func (l *electionLocker) Primitive() string { return PrimElection }

func (l *electionLocker) candidate(c Claim) *election.Election {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{c.Owner, c.Name}
	e := l.cands[k]
	if e == nil {
		e = election.New(l.q, c.Name, election.WithErrorHandler(quiet))
		l.cands[k] = e
	}
	return e
}

// Acquire campaigns until this candidate leads.
func (l *electionLocker) Acquire(ctx context.Context, c Claim) (Held, error) {
	if c.Mode != Exclusive {
		return nil, fmt.Errorf("chaos: an election takes only exclusive claims, not %q", c.Mode)
	}
	e := l.candidate(c)
	if err := e.Campaign(ctx, c.Value); err != nil {
		return nil, err
	}
	ls := e.Lease()
	if ls == nil { // cannot happen: Campaign returned nil, and only Resign or Campaign clear it
		return nil, fmt.Errorf("chaos: election %q: a leader with no lease", c.Name)
	}
	return &leaderHeld{e: e, l: ls, term: e.Term()}, nil
}

// TryAcquire is not offered: a campaign waits its turn (an election has no pollers).
func (l *electionLocker) TryAcquire(ctx context.Context, c Claim) (Held, error) {
	return nil, fmt.Errorf("chaos: an election has no try")
}

// Observe follows the leaders of name (election.Observe) until ctx ends, and closes the channel.
func (l *electionLocker) Observe(ctx context.Context, name string) <-chan Leader {
	in := election.New(l.q, name, election.WithErrorHandler(quiet)).Observe(ctx)
	out := make(chan Leader)
	go func() {
		defer close(out)
		for ld := range in {
			// Read on arrival: the time orders what an observer heard against the history.
			select {
			case out <- Leader{Term: ld.Term, Value: ld.Value, At: Mono()}:
			case <-ctx.Done():
				return // in closes too: its sender gives up on ctx
			}
		}
	}()
	return out
}

func (l *electionLocker) Close(ctx context.Context) error { return l.q.Close(ctx) }

// Leader is what an observer heard: a new leader's term and value, and when (Mono).
type Leader struct {
	Term  uint64
	Value string
	At    int64
}

// Observer is a Locker that can follow an election's leaders (PrimElection).
type Observer interface {
	Observe(ctx context.Context, name string) <-chan Leader
}

// leaderHeld is a leadership: its validity is its lease's, its token the term.
type leaderHeld struct {
	e    *election.Election
	l    *lease.Lease
	term uint64
}

func (h *leaderHeld) Until() time.Time      { return h.l.Until() }
func (h *leaderHeld) Done() <-chan struct{} { return h.e.Done() }
func (h *leaderHeld) Err() error            { return h.e.Err() }

// Fence returns the term, as Term read when the campaign returned; 0 (a leader without a term)
// is recorded as such, for the checks to flag.
func (h *leaderHeld) Fence() (uint64, bool)             { return h.term, true }
func (h *leaderHeld) Slots() ([]int64, []uint64)        { return nil, nil }
func (h *leaderHeld) Names() ([]string, []uint64)       { return nil, nil }
func (h *leaderHeld) Release(ctx context.Context) error { return h.e.Resign(ctx) }

// LeaderValue is what client campaigns with for its section seq, at its attempt-th acquire: unique
// per campaign, so that what an observer hears names one campaign (a campaign that failed, whose
// grant an observer may have glimpsed, has a value no section has).
func LeaderValue(client string, seq, attempt int) string {
	return client + "#" + strconv.Itoa(seq) + "/" + strconv.Itoa(attempt)
}
