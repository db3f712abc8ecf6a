package mutex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
	"github.com/quorumsync/quorumsync/lease"
)

// MaxNames is the most names a [Multi] may lock together.
const MaxNames = 64

// Multi locks several names together, all or nothing: a caller holds every one of them or none.
// Create it with [NewMulti]; the zero value is not usable.
//
// Each name is locked as a [Mutex] of the same name and options would lock it, so a Multi and the
// Mutexes of its names exclude each other, and another Multi whose names overlap its own. Locking
// never deadlocks against any mix of Mutexes and Multis (see the package doc, Several names at
// once), as long as no caller waits for a lock while it holds another: take every name a piece of
// work needs in one Multi.
//
// A Multi is safe for concurrent use by many goroutines; ownership is not tied to a goroutine.
// Copying a Multi copies its reference to the held locks; don't.
type Multi struct {
	names []string // in the order they are taken: sorted
	locks []*Mutex // one per name, in that order
	err   error    // what is wrong with NewMulti's arguments, returned by every method

	mu   sync.Mutex
	held *engine.Group // taken by Lock or TryLock, for Unlock
}

// NewMulti returns a Multi for names on q, with opts applied to every name ([WithTTL],
// [WithFencing], [WithLabel], [WithErrorHandler]). The order of names does not matter: they are
// always taken in one canonical order (sorted). Bad arguments — no name, an empty or duplicate
// name, more than [MaxNames] names, a nil q — are reported by the methods as an error matching
// lease.ErrInvalidArgument.
func NewMulti(q *lease.Quorum, names []string, opts ...Option) *Multi {
	m := &Multi{names: slices.Clone(names)}
	slices.Sort(m.names)
	switch {
	case len(m.names) == 0:
		m.err = errs.Invalid("names", "none given")
	case len(m.names) > MaxNames:
		m.err = errs.Invalid("names", "%d given, more than %d", len(m.names), MaxNames)
	case m.names[0] == "":
		m.err = errs.Invalid("names", "an empty name")
	}
	for i := 1; i < len(m.names) && m.err == nil; i++ {
		if m.names[i] == m.names[i-1] {
			m.err = errs.Invalid("names", "%q given twice", m.names[i])
		}
	}
	if m.err != nil {
		return m
	}
	m.locks = make([]*Mutex, len(m.names))
	for i, name := range m.names {
		m.locks[i] = New(q, name, opts...)
	}
	return m
}

// Names returns the names m locks, in the order it takes them (sorted).
func (m *Multi) Names() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.names)
}

var errNilMulti = errs.Invalid("multi", "nil, or not made by NewMulti")

// check returns what makes m unusable, if anything.
func (m *Multi) check() error {
	switch {
	case m == nil || (m.err == nil && len(m.locks) == 0):
		return errNilMulti
	default:
		return m.err
	}
}

// Lock blocks until m holds every name, ctx ends, or the quorum closes. It first asks for every
// name at once (one round trip when none is taken, two with fencing over several nodes); if some
// are taken, it keeps the ones before the first taken name in the canonical order, gives back the
// others, and waits for the rest one by one in that order. A name lost meanwhile (its lease lost
// while a later name was waited for) makes it give every name back and start over: it returns
// only with every lease held and at least a quarter of its TTL of validity left, as a fresh grant
// must have. Its errors are a [Mutex.Lock]'s, for
// the name that failed (a name refused for good, misconfigured, fails it at once, whichever it
// is); then nothing it took is kept, on any node.
func (m *Multi) Lock(ctx context.Context) error {
	return m.take(ctx, true, modeLock, nil)
}

// TryLock tries once to acquire every name of m, all at once, and returns at once: nil when it
// holds them all, else the error of the first name (in the canonical order) it could not have, and
// it gives back the others.
func (m *Multi) TryLock(ctx context.Context) error {
	return m.take(ctx, false, modeLock, nil)
}

// Unlock releases every name taken by Lock or TryLock, in parallel, and wakes their waiters. It
// returns [ErrNotLocked] if m is not locked, and otherwise the errors of the names' releases,
// joined (see [Mutex.Unlock]): m is unlocked whatever it returns.
func (m *Multi) Unlock(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	m.mu.Lock()
	g := m.held
	m.held = nil
	m.mu.Unlock()
	if g == nil {
		return fmt.Errorf("%w %q", ErrNotLocked, m.names)
	}
	return g.Release(ctx)
}

// Obtain blocks like [Multi.Lock] and returns the leases that hold m's names, as one
// [MultiLease]. It is the caller's: [Multi.Unlock] does not release it.
func (m *Multi) Obtain(ctx context.Context) (*MultiLease, error) {
	g, err := m.obtain(ctx, true, modeLock)
	return (*MultiLease)(g), err
}

// TryObtain tries once, like [Multi.TryLock], and returns the leases like [Multi.Obtain].
func (m *Multi) TryObtain(ctx context.Context) (*MultiLease, error) {
	g, err := m.obtain(ctx, false, modeLock)
	return (*MultiLease)(g), err
}

// Do locks every name of m, runs fn, and unlocks them. fn's ctx is cancelled if any of the
// names is lost while fn runs, with a cause matching lease.ErrLost. What Do returns tells the
// outcomes apart as [Mutex.Do]'s does.
func (m *Multi) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return m.do(ctx, true, fn)
}

// TryDo is [Multi.Do] with [Multi.TryLock]: it runs fn only if every name could be had at once.
func (m *Multi) TryDo(ctx context.Context, fn func(ctx context.Context) error) error {
	return m.do(ctx, false, fn)
}

func (m *Multi) do(ctx context.Context, wait bool, fn func(ctx context.Context) error) error {
	if err := m.check(); err != nil {
		return err
	}
	if fn == nil {
		return errs.Invalid("fn", "nil")
	}
	g, err := m.obtain(ctx, wait, modeDo)
	if err != nil {
		return err
	}
	return engine.Run(ctx, g, fn, g.Release, nil)
}

// Locker returns a [sync.Locker] that locks and unlocks m, like [Mutex.Locker] does a Mutex: its
// Lock retries until it holds every name, reporting failed attempts to the error handler at most
// once a second, and panics on an error no retry can heal.
func (m *Multi) Locker() sync.Locker {
	report := func(err error) { (&primitive.Shell{}).Report(err) }
	if m.check() == nil {
		report = m.locks[0].report
	}
	var k *primitive.Locker
	k = primitive.NewLocker(func(ctx context.Context) error {
		return m.take(ctx, true, modeLock, func(err error) { k.Failed(err) })
	}, m.Unlock, report)
	return k
}

// mode says which of each Mutex's requests a Multi's acquire uses: Lock's report a loss to the
// error handler, Do's return it.
type mode bool

const (
	modeLock mode = false
	modeDo   mode = true
)

// take acquires every name and keeps the leases for Unlock; onRetry as for obtainReporting.
func (m *Multi) take(ctx context.Context, wait bool, md mode, onRetry func(error)) error {
	g, err := m.obtainReporting(ctx, wait, md, onRetry)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.held = g
	m.mu.Unlock()
	return nil
}

// obtain acquires every name of m, all or nothing.
//
// Why it cannot deadlock: it waits for a name only while it holds names that come before it in
// the canonical order (the first round waits for nothing), and so does every other Multi, while a
// Mutex holds one name and waits while it holds none. An edge "holds a, waits for b" of the
// wait-for graph, across processes and within one (the local queues are waits too), thus always
// goes from a name to a later one, and no cycle can form.
func (m *Multi) obtain(ctx context.Context, wait bool, md mode) (*engine.Group, error) {
	return m.obtainReporting(ctx, wait, md, nil)
}

// obtainReporting is obtain, with onRetry, if not nil, told of each failed attempt of a blocking
// acquire that it retries (the Locker's reports).
//
// A name taken early can be lost while a later one is waited for (its holder cut off from the
// nodes, an administrator's Break): every lease must still be sound once the last name is had —
// held, with at least TTL/4 of validity left, as a fresh grant must be — or the whole is given back
// and, for a blocking acquire, taken again from the start.
func (m *Multi) obtainReporting(ctx context.Context, wait bool, md mode, onRetry func(error)) (*engine.Group, error) {
	for {
		g, err := m.obtainOnce(ctx, wait, md, onRetry)
		if err != nil {
			return nil, err
		}
		ls := g.Leases()
		i := slices.IndexFunc(ls, func(l *engine.Lease) bool { return !engine.Sound(l) })
		if i < 0 {
			return g, nil
		}
		why := ls[i].Err()
		if why == nil {
			why = errors.New("less than a quarter of its TTL of validity left (renewals failing)")
		}
		lost := fmt.Errorf("%w %q: held, then lost before every name was had: %w", errs.NotAcquired, m.names[i], why)
		// The lost lease's release says it was lost, which is known; what the others' releases
		// could not reach expires within the TTL, and nodes that come back get it then.
		_ = g.Release(ctx)
		if !wait {
			return nil, lost
		}
		if onRetry != nil {
			onRetry(lost)
		}
	}
}

// obtainOnce takes every name, all or nothing: obtainReporting's one pass.
func (m *Multi) obtainOnce(ctx context.Context, wait bool, md mode, onRetry func(error)) (*engine.Group, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, errs.Invalid("ctx", "nil")
	}
	ls := make([]*engine.Lease, len(m.locks))
	failed := make([]error, len(m.locks))
	// Every name at once, without waiting.
	var wg sync.WaitGroup
	for i, mu := range m.locks {
		r := &mu.tryReq
		if md == modeDo {
			r = &mu.doRequests().tryDo
		}
		if i == len(m.locks)-1 {
			ls[i], failed[i] = mu.s.Claim(ctx, mu.s.Errs, r)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls[i], failed[i] = mu.s.Claim(ctx, mu.s.Errs, r)
		}()
	}
	wg.Wait()
	first := slices.IndexFunc(ls, func(l *engine.Lease) bool { return l == nil })
	if first < 0 {
		return engine.NewGroup(ls), nil
	}
	// A name refused for good (misconfigured, closed) fails the whole at once, wherever it is in
	// the order: waiting for an earlier name first would only delay the error.
	if i := slices.IndexFunc(failed, engine.IsPermanent); i >= 0 {
		return nil, m.giveUp(ctx, failed[i], ls)
	}
	if !wait {
		return nil, m.giveUp(ctx, failed[first], ls)
	}
	// Keep the names before the first one missing; the later ones are taken again, in order,
	// after it, so that this call never waits for a name while it holds a later one.
	if err := engine.ReleaseAll(ctx, ls[first+1:]); err != nil {
		m.locks[0].report(err)
	}
	clear(ls[first+1:])
	for i := first; i < len(m.locks); i++ {
		mu := m.locks[i]
		r := &mu.lockReq
		if md == modeDo {
			r = &mu.doRequests().do
		}
		if onRetry != nil {
			withReport := *r
			withReport.OnRetry = onRetry
			r = &withReport
		}
		l, err := mu.s.Claim(ctx, mu.s.Errs, r)
		if err != nil {
			return nil, m.giveUp(ctx, err, ls)
		}
		ls[i] = l
	}
	return engine.NewGroup(ls), nil
}

// giveUp releases what a failed acquire took and returns its error, with the release's if that
// failed too (what was not released expires within the TTL; a node that comes back gets the
// release then).
func (m *Multi) giveUp(ctx context.Context, err error, taken []*engine.Lease) error {
	return engine.Join(err, engine.ReleaseAll(ctx, taken))
}

// MultiLease is the set of leases that hold a [Multi]'s names, one per name, held as one: it is
// valid while every one of them is, and its Done closes when the first of them ends. Each is
// renewed by the quorum's watchdog on its own. Its methods are safe on a nil *MultiLease, which
// reads as not held.
type MultiLease engine.Group

func (g *MultiLease) group() *engine.Group { return (*engine.Group)(g) }

// Leases returns the lease of each name, in the order of [Multi.Names].
func (g *MultiLease) Leases() []*lease.Lease {
	ls := g.group().Leases()
	out := make([]*lease.Lease, len(ls))
	for i, l := range ls {
		out[i] = (*lease.Lease)(l)
	}
	return out
}

// Valid reports whether every lease is valid now, by the monotonic clock (see lease.Lease.Valid).
func (g *MultiLease) Valid() bool { return g.group().Valid() }

// Until returns the earliest end of validity of the leases.
func (g *MultiLease) Until() time.Time { return g.group().Until() }

// Done returns a channel that is closed when the first of the leases ends: lost, released, or
// its quorum closed. Its first call starts a goroutine that waits for that; it ends, at the
// latest, when the MultiLease is released or its quorum closed.
func (g *MultiLease) Done() <-chan struct{} { return g.group().Done() }

// Err returns nil while every lease is held; otherwise the error of the first (in name order)
// that was lost, matching lease.ErrLost, or, if none was, lease.ErrReleased.
func (g *MultiLease) Err() error { return g.group().Err() }

// Fences returns the fencing token of each name, in the order of [Multi.Names]: with
// [WithFencing], every name has a counter of its own, and a resource guarded by several names
// checks each name's token. Without fencing the error matches lease.ErrInvalidArgument.
func (g *MultiLease) Fences() ([]uint64, error) { return g.group().Fences() }

// Release releases every lease in parallel and returns their errors, joined (see
// lease.Lease.Release); nil when every one was held and is now released.
func (g *MultiLease) Release(ctx context.Context) error {
	if ctx == nil {
		return errs.Invalid("ctx", "nil")
	}
	return g.group().Release(ctx)
}
