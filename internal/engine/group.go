package engine

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"time"
)

// Held is what [Run] watches while its function runs: one [Lease], or a [Group] of them. Only
// the engine's types implement it.
type Held interface {
	Valid() bool
	Done() <-chan struct{}
	Err() error
	Observe(ctx context.Context) (stop func())
	invalid(when string) error
}

// Group is several leases held together, as one (mutex.Multi): it is valid while every one of
// them is, and its Done closes when the first of them ends. Each lease is still renewed, and
// released, on its own. A nil *Group reads as a group not held, like a nil *Lease.
type Group struct {
	leases []*Lease

	once sync.Once
	done chan struct{}
}

// NewGroup returns the group of leases, which the caller holds (none nil).
func NewGroup(leases []*Lease) *Group { return &Group{leases: leases} }

// Leases returns the group's leases, in the order it was made with.
func (g *Group) Leases() []*Lease {
	if g == nil {
		return nil
	}
	return slices.Clone(g.leases)
}

// Valid reports whether every lease of the group is valid now (see [Lease.Valid]).
func (g *Group) Valid() bool {
	if g == nil {
		return false
	}
	for _, l := range g.leases {
		if !l.Valid() {
			return false
		}
	}
	return len(g.leases) > 0
}

// Until returns the earliest end of validity of the group's leases.
func (g *Group) Until() time.Time {
	var until time.Time
	if g == nil {
		return until
	}
	for i, l := range g.leases {
		if u := l.Until(); i == 0 || u.Before(until) {
			until = u
		}
	}
	return until
}

// Done returns a channel that is closed when the first of the group's leases ends: lost,
// released, or its quorum closed. The first call starts a goroutine that waits for that, unless a
// lease has ended already; the goroutine ends with the first lease that does, at the latest when
// the group is released or its quorum closed.
func (g *Group) Done() <-chan struct{} {
	if g == nil || len(g.leases) == 0 {
		return closedChan
	}
	g.once.Do(func() {
		g.done = make(chan struct{})
		cases := make([]reflect.SelectCase, len(g.leases))
		for i, l := range g.leases {
			done := l.Done()
			select {
			case <-done:
				close(g.done)
				return
			default:
			}
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)}
		}
		go func() {
			reflect.Select(cases)
			close(g.done)
		}()
	})
	return g.done
}

// Err returns nil while every lease of the group is held; otherwise the error of the first lease
// (in the group's order) that was lost, or, when none was, the error of one that was released.
func (g *Group) Err() error {
	if g == nil || len(g.leases) == 0 {
		return ErrNotHeld
	}
	var released error
	for _, l := range g.leases {
		err := l.Err()
		switch {
		case err == nil:
		case errors.Is(err, ErrReleased):
			if released == nil {
				released = err
			}
		default:
			return err
		}
	}
	return released
}

// Observe records what happens to each lease of the group while work runs under ctx (see
// [Lease.Observe]).
func (g *Group) Observe(ctx context.Context) (stop func()) {
	stops := make([]func(), len(g.leases))
	for i, l := range g.leases {
		stops[i] = l.Observe(ctx)
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// invalid is the loss of the first lease whose validity ran out, by the clock, when.
func (g *Group) invalid(when string) error {
	for _, l := range g.leases {
		if !l.Valid() {
			return l.invalid(when)
		}
	}
	return g.leases[0].invalid(when)
}

// Fences returns the fencing token of each lease, in the group's order (see [Lease.Fence]).
func (g *Group) Fences() ([]uint64, error) {
	if g == nil {
		return nil, ErrNotHeld
	}
	fences := make([]uint64, len(g.leases))
	for i, l := range g.leases {
		f, err := l.Fence()
		if err != nil {
			return nil, err
		}
		fences[i] = f
	}
	return fences, nil
}

// Release releases every lease of the group at once (see [Lease.Release]) and returns their
// errors joined, each naming its lease; nil when every one was held and is now released.
func (g *Group) Release(ctx context.Context) error {
	if g == nil {
		return errNilLease
	}
	return ReleaseAll(ctx, g.leases)
}

// ReleaseAll releases leases (nil ones skipped) in parallel, and joins their errors.
func ReleaseAll(ctx context.Context, leases []*Lease) error {
	errs := make([]error, len(leases))
	var wg sync.WaitGroup
	for i, l := range leases {
		if l == nil {
			continue
		}
		if i == len(leases)-1 {
			errs[i] = l.Release(ctx)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Release(ctx)
		}()
	}
	wg.Wait()
	return Join(errs...)
}
