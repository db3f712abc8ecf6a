package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// gate is the local admission of one name (and kind family) in one Quorum: goroutines of this
// process that want the name queue on it, FIFO, and only those it admits talk to Redis for the
// name. What it admits together depends on each claim's Admission: one AdmitOne claim alone,
// any number of AdmitShared claims, or AdmitWeighted claims up to the capacity. A waiter that does
// not fit waits at the head and holds up those behind it (no overtaking, so neither a writer
// nor a large weight starves); one whose ctx ends leaves, and those behind it are admitted if they
// now fit.
type gate struct {
	mu      sync.Mutex
	one     bool  // an AdmitOne claim is admitted
	shared  int   // AdmitShared claims admitted
	weight  int64 // weight of the AdmitWeighted claims admitted
	waiters []*gateWaiter
	// last is the last failed round of the goroutine that talks to the servers for the name, for
	// the error of those queued behind it whose ctx ends (nil after a grant).
	last atomic.Pointer[round]

	refs int // holders and waiters; guarded by Quorum.gmu
}

type gateWaiter struct {
	mode     Admission
	weight   int64
	capacity int64
	req      *Request      // what it asks for (for a lease passed to it, see pass)
	ttl      time.Duration // the TTL it asks for
	ready    chan struct{} // closed when admitted
	handed   *Lease        // set, before ready closes, when a holder passed its lease (see pass)
}

// fits reports whether a claim fits beside what is admitted; g.mu must be held.
func (g *gate) fits(mode Admission, weight, capacity int64) bool {
	switch mode {
	case AdmitShared:
		return !g.one && g.weight == 0
	case AdmitWeighted:
		return !g.one && g.shared == 0 && g.weight+weight <= capacity
	default:
		return !g.one && g.shared == 0 && g.weight == 0
	}
}

func (g *gate) admit(mode Admission, weight int64) {
	switch mode {
	case AdmitShared:
		g.shared++
	case AdmitWeighted:
		g.weight += weight
	default:
		g.one = true
	}
}

// noteFailure records res as the last failed round on the name (nil: the last round held).
func (g *gate) noteFailure(res *round) {
	if res == nil {
		if g.last.Load() != nil {
			g.last.Store(nil)
		}
		return
	}
	c := *res
	g.last.Store(&c)
}

// lastFailure returns the last failed round on the name, or nil.
func (g *gate) lastFailure() *round { return g.last.Load() }

// tryEnter admits the claim if nobody waits and it fits.
func (g *gate) tryEnter(mode Admission, weight, capacity int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) == 0 && g.fits(mode, weight, capacity) {
		g.admit(mode, weight)
		return true
	}
	return false
}

// testHookGaveUp, when set, runs as a waiter at a gate gives up, before it looks whether it was
// admitted meanwhile: tests line a holder's pass up with it.
var testHookGaveUp func()

// enter waits until the claim is admitted, ctx ends or stop is closed; it reports whether it was
// admitted, and the lease a holder passed it, if one did (see pass): the claim is then held
// already. When it was not admitted, refGone reports that the caller's reference to the gate is
// gone already: a lease passed to it as it gave up took the reference along, and released it.
func (g *gate) enter(ctx context.Context, stop <-chan struct{}, r *Request, ttl time.Duration, weight int64) (admitted bool, handed *Lease, refGone bool) {
	mode := r.Kind.Admission()
	g.mu.Lock()
	if len(g.waiters) == 0 && g.fits(mode, weight, r.Capacity) {
		g.admit(mode, weight)
		g.mu.Unlock()
		return true, nil, false
	}
	w := &gateWaiter{mode: mode, weight: weight, capacity: r.Capacity, req: r, ttl: ttl, ready: make(chan struct{})}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()
	select {
	case <-w.ready:
		return true, w.handed, false
	case <-ctx.Done():
	case <-stop:
	}
	if testHookGaveUp != nil {
		testHookGaveUp()
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Admitted as we gave up: pass it on (a lease passed to us goes back the normal way, and
		// may be passed again).
		g.mu.Unlock()
		if w.handed != nil {
			// The handed lease holds our reference to the gate; releasing it lets go of that.
			_ = w.handed.Release(context.Background())
			return false, nil, true
		}
		g.exit(mode, weight)
		return false, nil, false
	default:
	}
	for i, x := range g.waiters {
		if x == w {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			break
		}
	}
	// Leaving from the head may let those behind in.
	g.admitWaitersLocked()
	g.mu.Unlock()
	return false, nil, false
}

// pass hands what the caller holds — an admission in mode — to the first waiter, if that waiter
// asks for the same mode and take, called with it, returns a lease for it (nil: it does not fit).
// The admission goes with the lease: the gate's state does not change, and the waiter returns
// from enter holding.
func (g *gate) pass(mode Admission, take func(w *gateWaiter) *Lease) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) == 0 || g.waiters[0].mode != mode {
		return false
	}
	w := g.waiters[0]
	l := take(w)
	if l == nil {
		return false
	}
	w.handed = l
	g.waiters[0] = nil
	g.waiters = g.waiters[1:]
	close(w.ready)
	return true
}

// exit gives back what a claim was admitted with and admits the waiters that now fit, in order.
func (g *gate) exit(mode Admission, weight int64) {
	g.mu.Lock()
	switch mode {
	case AdmitShared:
		g.shared--
	case AdmitWeighted:
		g.weight -= weight
	default:
		g.one = false
	}
	g.admitWaitersLocked()
	g.mu.Unlock()
}

func (g *gate) admitWaitersLocked() {
	for len(g.waiters) > 0 {
		w := g.waiters[0]
		if !g.fits(w.mode, w.weight, w.capacity) {
			return
		}
		g.admit(w.mode, w.weight)
		close(w.ready)
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
	}
	if len(g.waiters) == 0 {
		g.waiters = nil
	}
}

// gateFor returns the gate for key, creating it if needed, and counts a reference to it. Gates
// are dropped when their last user leaves, so a process that locks many distinct names does not
// keep a gate for each.
func (q *Quorum) gateFor(key string) *gate {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	g := q.gates[key]
	if g == nil {
		g = gatePool.Get().(*gate)
		q.gates[key] = g
	}
	g.refs++
	return g
}

func (q *Quorum) dropGate(key string, g *gate) {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if g.refs--; g.refs == 0 {
		delete(q.gates, key)
		// Nobody holds or waits on it (refs counts both): it is back to its zero state, but for
		// the last failure, which goes.
		g.last.Store(nil)
		gatePool.Put(g)
	}
}

// gatePool recycles gates: a name locked without contention gets a new gate each time.
var gatePool = sync.Pool{New: func() any { return new(gate) }}
