package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumsync/quorumsync/internal/telemetry"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// Lease is a claim held on a majority of a [Quorum]'s nodes. It is valid until [Lease.Until],
// which the quorum's watchdog keeps moving forward by renewing the lease at TTL/3. If renewal fails
// for long enough, the lease is lost: [Lease.Done] closes no later than the last Until, and
// [Lease.Err] says why. A lost lease is never revived.
//
// A Lease is safe for concurrent use. Ownership is not tied to a goroutine: any goroutine may
// release it. Its methods are safe on a nil *Lease, which reads as a lease not held: Done is
// closed, Err matches [ErrNotHeld], Until is the zero time.
type Lease struct {
	q      *Quorum
	kind   Kind
	claim  Claim
	errs   *Errors
	gate   *gate
	entry  *watchdog.Entry
	onLost func(error)
	held   atomic.Pointer[telemetry.Held] // set once the acquire span ends; nil without a recording provider

	// fences are the lease's fencing tokens (one per unit of a weighted claim), set at the grant;
	// nil without fencing.
	fences []uint64
	// grantedAt is when the servers granted the claim (the start of the round, on the monotonic
	// clock: see sinceEpoch), which bounds how long the process may keep it by passing it from
	// goroutine to goroutine (see Quorum.pass).
	grantedAt time.Duration
	// passed is set once the holder passed the lease to the next goroutine of the process, to its
	// validity at that moment: this handle then reads as released, while the claim lives on under
	// the next handle.
	passed atomic.Pointer[time.Time]

	// umu guards claim.Units and claim.Weight of a weighted claim once it is granted: a partial
	// release ([Lease.ReleaseUnits]) shrinks them while the watchdog renews.
	umu      sync.Mutex
	released atomic.Bool
	mode     Admission // beside released: a Lease is 8 bytes smaller, one size class down
}

// epoch is the origin of sinceEpoch.
var epoch = time.Now()

// sinceEpoch is the monotonic clock as a Duration: 8 bytes where a time.Time takes 24.
func sinceEpoch() time.Duration { return time.Since(epoch) }

// closedChan is the Done of a nil *Lease.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Name returns the name the lease holds.
func (l *Lease) Name() string {
	if l == nil {
		return ""
	}
	return l.claim.Name
}

// Token returns the lease's random token: 128 bits from crypto/rand, hex-encoded, unique to the
// servers' grant. It is not ordered; it identifies the holder on the servers. A lease passed from
// goroutine to goroutine ([WithHandoff]) keeps its token: use a fencing token to tell holders
// apart.
func (l *Lease) Token() string {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return ""
	}
	return l.claim.Token[:tokenLen]
}

// Holder returns who holds the lease: this process, and when the acquisition the servers granted
// began (for a passed lease, its first holder's). The servers
// store the same in the lease's value (see [ParseHolder]), so a tool can tell who holds a name.
func (l *Lease) Holder() Holder {
	if l == nil {
		return Holder{}
	}
	_, h, _ := ParseHolder(l.claim.Token)
	return h
}

// Sound reports whether l is held with at least TTL/4 of its validity left: what an acquire
// requires of a fresh grant, which a caller that holds l while it acquires more (mutex.Multi)
// requires of it again before it counts it as held.
func Sound(l *Lease) bool {
	return l.Valid() && time.Until(l.Until()) >= minValidity(l.claim.TTL)
}

// Record returns the holder's record as the servers store it (see [ParseHolder]): its token,
// process, start and label.
func Record(l *Lease) string { return l.claim.Token }

// Units returns the units the lease holds: for a claim whose units the servers pick (a
// semaphore's slots), their indices in increasing order; nil for a claim of one unit.
func (l *Lease) Units() []int64 {
	if l == nil || !l.picked() {
		return nil
	}
	return l.units()
}

// picked reports whether the servers pick the claim's units (an AdmitWeighted claim: a
// semaphore's slots), rather than the claim being the one unit [One]. Only such a claim keeps
// part of what a round granted (trim), asks for the units most nodes granted (Prefer), and gives
// up part of what it holds (ReleaseUnits).
func (l *Lease) picked() bool { return l.mode == AdmitWeighted }

// units returns the units held. The slice is never written after it is published: a partial
// release installs a shorter one, which is why a claim whose units can shrink reads them under
// umu.
func (l *Lease) units() []int64 {
	if !l.picked() {
		return l.claim.Units
	}
	l.umu.Lock()
	defer l.umu.Unlock()
	return l.claim.Units
}

// snapshot returns the claim as it stands, for a call built while a partial release may change it.
func (l *Lease) snapshot() *Claim {
	if !l.picked() {
		return &l.claim
	}
	l.umu.Lock()
	defer l.umu.Unlock()
	c := l.claim
	return &c
}

// Fence returns the lease's fencing token: a number that strictly increases across the holders of
// the name in the order they acquired it, even over N nodes, for the resource to check (see
// package fence). It returns an error matching [ErrNoFencing] when the lease was acquired without
// fencing, and for a weighted lease, which has one token per unit (see [Lease.Fences]).
func (l *Lease) Fence() (uint64, error) {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return 0, ErrNoFencing
	}
	if l.fences == nil {
		return 0, &opError{sentinel: l.errs.NoFencing, name: l.claim.Name, detail: "acquired without fencing"}
	}
	if len(l.fences) != 1 || l.picked() {
		return 0, &opError{sentinel: l.errs.NoFencing, name: l.claim.Name, detail: "a weighted lease has a token per unit: use Fences"}
	}
	return l.fences[0], nil
}

// Fences returns the fencing tokens of a weighted lease, one per unit it was granted, in the order
// of the units at the grant (a semaphore's slots: each slot's tokens increase across its holders);
// for a lease of one unit, its one token. It returns an error matching [ErrNoFencing] when the
// lease was acquired without fencing.
func (l *Lease) Fences() ([]uint64, error) {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return nil, ErrNoFencing
	}
	if l.fences == nil {
		return nil, &opError{sentinel: l.errs.NoFencing, name: l.claim.Name, detail: "acquired without fencing"}
	}
	return slices.Clone(l.fences), nil
}

// Valid reports whether the lease is valid now, by the monotonic clock: not ended (Err is nil)
// and Until not passed. Done and a ctx cancelled with the lease close on timers; a holder that
// wakes from a pause (GC, swap, a stopped VM) can find them still open for a few milliseconds
// after Until has passed, and Valid already false. It promises only what it says at the instant
// it reads the clock: a pause right after it can outlast the lease all the same, which is why a
// resource that must not be written by a holder that lost its lease checks a fencing token
// ([Lease.Fence]). It cannot see a loss on the servers that no renewal has reported yet (a node
// restarted without persistence, an eviction).
func (l *Lease) Valid() bool {
	if l == nil || l.entry == nil || l.passed.Load() != nil {
		return false
	}
	return l.entry.Err() == nil && time.Now().Before(l.entry.Until())
}

// Until returns the end of the lease's validity as last renewed, on the local monotonic clock.
// Past it, nothing guarantees exclusion.
func (l *Lease) Until() time.Time {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return time.Time{}
	}
	if l.passed.Load() != nil {
		return *l.passed.Load()
	}
	return l.entry.Until()
}

// Done returns a channel that is closed when the lease ends: lost, released, or its quorum closed.
func (l *Lease) Done() <-chan struct{} {
	if l == nil || l.entry == nil || l.passed.Load() != nil {
		return closedChan
	}
	return l.entry.Done()
}

// Err returns nil while the lease is held. After [Lease.Release] it returns an error matching
// [ErrReleased]. After a loss it returns an error matching [ErrLost] whose cause says why: the
// lease expired before it could be renewed (watchdog.ErrExpired), was found gone on the servers
// ([ErrNotHeld]), reached its max hold time (watchdog.ErrMaxHold), or its quorum was closed
// ([ErrClosed]). The errors are the sentinels of the package that acquired the lease (see
// [Request.Errors]), so they also match, say, lease.ErrLost.
func (l *Lease) Err() error {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return ErrNotHeld
	}
	if l.passed.Load() != nil {
		return l.errs.Released
	}
	return l.endErr(l.entry.Err())
}

// endErr turns why the watchdog entry ended into the lease's error.
func (l *Lease) endErr(cause error) error {
	switch {
	case cause == nil:
		return nil
	case cause == ErrReleased:
		return l.errs.Released
	default:
		return &opError{sentinel: l.errs.Lost, name: l.claim.Name, causes: []error{cause}}
	}
}

// Observe records what happens to the lease while work runs under ctx: renewal failures and the
// loss become events on ctx's span, besides their own spans linked to the acquire span. Call the
// returned function when the work ends: if the lease was lost by then, the loss is on the span
// before it detaches. mutex.Do does this for its function.
func (l *Lease) Observe(ctx context.Context) (stop func()) {
	if l == nil || l.entry == nil { // nil, or a zero Lease: not held
		return func() {}
	}
	h := l.held.Load()
	detach := h.Attach(ctx)
	return func() {
		if err := l.entry.Err(); err != nil && err != ErrReleased && err != ErrClosed {
			h.LostEvent(l.endErr(err))
		}
		detach()
	}
}

// Release stops renewing the lease, then gives it up on every node where it still holds the
// lease's token, and wakes the waiters it frees the name for. It returns nil when the lease was
// held and is now released. When a goroutine of the process waits for the name and the handoff
// budget allows ([WithHandoff]), Release passes the claim to it instead, with no request to the
// servers: this handle then reads as released (nil from Release), and the claim lives on, held and
// renewed, under the next holder's. Releasing is idempotent on the servers; the error says what happened:
//   - [ErrReleased]: Release was called before (or [ErrClosed]: the quorum was closed, which
//     released it);
//   - an error matching [ErrLost]: the lease had been lost before Release (what is left of it
//     is deleted all the same);
//   - an error matching [ErrNotHeld]: a majority no longer held the token, so the lease had
//     expired;
//   - an error matching [ErrNotReleased], with the node errors: too few nodes answered; what is
//     left expires within the TTL, and nodes that come back get the release then.
//
// Release does not honour ctx's cancellation, so that a cancelled ctx cannot leave a key behind;
// each node is still bounded by the per-node timeout. A nil ctx is refused (ErrInvalidArgument)
// and leaves the lease as it was.
func (l *Lease) Release(ctx context.Context) error {
	if l == nil || l.q == nil {
		return errNilLease
	}
	if ctx == nil {
		return l.errs.InvalidFor(l.claim.Name, "ctx", "nil")
	}
	return l.release(detach(ctx), ErrReleased)
}

// errNilLease is the Release of a nil *Lease, which reads as a lease not held.
var errNilLease = fmt.Errorf("%w: nil lease", ErrNotHeld)

// detach returns ctx without its cancellation: ctx itself when it has none (no allocation).
func detach(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// release ends the lease with why (ErrReleased or ErrClosed) and gives it up on the servers, under
// ctx (Release detaches it from the caller's cancellation; Close does not).
func (l *Lease) release(ctx context.Context, why error) error {
	if !l.released.CompareAndSwap(false, true) {
		if l.passed.Load() == nil && errors.Is(l.entry.Err(), ErrClosed) {
			return l.errs.Closed
		}
		return l.errs.Released
	}
	if why == ErrReleased && l.q.pass(l) {
		return nil // the next goroutine of the process holds it now
	}
	// Renewal stops before the release goes out, so no renewal is scheduled after it.
	lostBefore := l.entry.Stop(why)
	if lostBefore == nil {
		l.held.Load().Released()
	}
	q := l.q
	defer func() {
		q.untrack(l)
		l.leaveGate()
	}()
	w := begin()
	defer end(w)
	votes := l.votes(w)
	c := l.snapshot()
	q.each(ctx, w, l.kind.Release(c), OpRelease, l, votes, nil, true)
	t := q.count(ctx, votes, c.Units, nil)
	if lostBefore != nil {
		// Lost first: that is the news. Node errors, if any, say why what was left could not be
		// deleted now; it expires within the TTL.
		return &opError{sentinel: l.errs.Lost, name: l.claim.Name, causes: append([]error{lostBefore}, t.errs...)}
	}
	switch {
	case t.holds(q.quorum):
		return nil
	case t.gone(len(q.nodes), q.quorum):
		return &opError{sentinel: l.errs.NotHeld, name: l.claim.Name,
			detail: fmt.Sprintf("held on %d of %d nodes at release", t.least, len(q.nodes))}
	default:
		return &opError{sentinel: l.errs.NotReleased, name: l.claim.Name,
			detail: fmt.Sprintf("released on %d of %d nodes, %d needed", t.least, len(q.nodes), q.quorum), causes: t.errs}
	}
}

// pass hands l, which its holder is releasing, to the first goroutine of this process that waits
// for the name at the local gate, without a word to the servers: the claim stays granted, renewed
// and valid as it was, under a new handle; l reads as released. The rule and its bounds are the
// lease doc's (Local handoff), stated there once: within the handoff budget after the servers'
// grant, with at least half the TTL of validity left, never with fencing, to a waiter of the same
// kind and TTL (and, for a weighted claim, the same weight and capacity).
func (q *Quorum) pass(l *Lease) bool {
	// Shared claims never wait for each other at the gate: there is no reader to pass a read
	// lease to (see the lease doc, Local handoff).
	if q.cfg.handoff <= 0 || l.mode == AdmitShared || l.claim.Fencing || sinceEpoch()-l.grantedAt >= q.cfg.handoff {
		return false
	}
	// Everything past the gate's own check that someone waits runs only when someone does: an
	// uncontended release pays one look at the gate.
	passed := l.gate.pass(l.mode, func(w *gateWaiter) *Lease {
		if w.req.Fencing || w.ttl != l.claim.TTL || w.req.Kind != l.kind {
			return nil
		}
		// A weighted claim goes as it is, its units and all, to a waiter of the same weight and
		// capacity: the admission it takes over is the one it would have been given.
		if l.picked() && (w.weight != l.claim.Weight || w.capacity != l.claim.Capacity || len(l.units()) != int(l.claim.Weight)) {
			return nil
		}
		if l.entry.Err() != nil || time.Until(l.entry.Until()) < l.claim.TTL/2 || q.isClosed() {
			return nil
		}
		errs := w.req.Errors
		if errs == nil {
			errs = leaseErrors
		}
		next := &Lease{q: q, kind: l.kind, claim: *l.snapshot(), errs: errs, gate: l.gate, mode: l.mode,
			entry: l.entry, onLost: w.req.OnLost, grantedAt: l.grantedAt}
		next.claim.tokenArgs[0] = (*textArg)(&next.claim.Token) // its own, not l's (see acquireLocal)
		until := l.entry.Until()
		if !l.entry.Rebind(next, nil) {
			return nil // lost meanwhile: released the normal way
		}
		l.passed.Store(&until)
		q.retrack(l, next)
		return next
	})
	if passed {
		l.held.Load().Released()
		// The admission went with the lease; the passer's reference to the gate does not.
		q.dropGate(l.claim.Keys[keyQueue], l.gate)
	}
	return passed
}

// ReleaseUnits gives up k of the units a weighted lease holds (a semaphore's partial release),
// keeping the rest held and renewed: the kind's renew call, naming the units kept, lets go of the
// others on every node and hands them to the waiters. With k the number held, it is Release. The
// units given up are the last ones ([Lease.Units]). It returns an error matching
// [ErrInvalidArgument] for a lease that is not weighted or a k out of range, the lease's error if
// it had ended (the k units count as given up all the same), and one matching [ErrNotReleased] if too few nodes answered (what was given up
// expires there within the TTL, no longer renewed).
func (l *Lease) ReleaseUnits(ctx context.Context, k int64) error {
	if l == nil || l.q == nil {
		return Invalid("lease", "nil")
	}
	if ctx == nil {
		return l.errs.InvalidFor(l.claim.Name, "ctx", "nil")
	}
	if !l.picked() {
		return l.errs.Invalid("lease", "a claim of one unit: it has no part to give up")
	}
	l.umu.Lock()
	held := int64(len(l.claim.Units))
	if k <= 0 || k > held {
		l.umu.Unlock()
		return l.errs.InvalidFor(l.claim.Name, "k", "%d is not between 1 and the %d units held", k, held)
	}
	if k == held {
		l.umu.Unlock()
		return l.Release(ctx)
	}
	// The units count as given up whatever follows: a lease lost meanwhile has nothing on the
	// servers to give up, and says so.
	keep := l.claim.Units[: held-k : held-k]
	l.claim.Units = keep
	l.claim.Weight -= k
	c := l.claim
	l.umu.Unlock()
	l.gate.exit(AdmitWeighted, k)
	if err := l.Err(); err != nil {
		return err
	}
	q := l.q
	// Its own task, not the scratch space's: a partial release may run beside a release.
	votes := make([]nodeVote, len(q.nodes))
	q.fanout(context.WithoutCancel(ctx), &callTask{q: q, l: l, call: l.kind.Renew(&c, c.TTL), op: OpRenew, votes: votes, owed: true})
	t := q.count(ctx, votes, keep, nil)
	if t.holds(q.quorum) {
		return nil
	}
	return &opError{sentinel: l.errs.NotReleased, name: c.Name,
		detail: fmt.Sprintf("%d units given up on %d of %d nodes, %d needed", k, t.least, len(q.nodes), q.quorum), causes: t.errs}
}

// scratch is the working space of an acquire or a release: its attempt, the task of its fan-outs,
// and the vote of a quorum of one node. It comes from a pool for the call, so that neither an
// acquire nor a release allocates it, and a held lease does not carry it.
type scratch struct {
	attempt Attempt
	task    callTask
	voteBuf [maxRoom]nodeVote // the votes of a quorum of up to five nodes
	room    [maxRoom]callRoom // their calls' arguments and contexts
}

// maxRoom is how many nodes a scratch space has room for.
const maxRoom = 5

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// begin returns a scratch space for an acquire or release; end takes it back. The space is the
// call's, passed along to what it calls, never kept on the lease: a lease may be released (by
// Close) while the acquire that granted it is still returning.
func begin() *scratch { return scratchPool.Get().(*scratch) }

func end(w *scratch) {
	w.attempt, w.task, w.voteBuf = Attempt{}, callTask{}, [maxRoom]nodeVote{}
	for i := range w.room {
		clear(w.room[i].args[:]) // what they point to may be collected
		// A context no call uses any more reads as ended, never as a nil one.
		w.room[i].ctx = nodeCtx{Context: context.Background(), done: closedChan}
	}
	scratchPool.Put(w)
}

// votes returns a slice for one vote per node: the scratch space's own for up to five nodes.
func (l *Lease) votes(w *scratch) []nodeVote {
	if n := len(l.q.nodes); n <= len(w.voteBuf) {
		return w.voteBuf[:n]
	}
	return make([]nodeVote, len(l.q.nodes))
}

// leaveGate gives the lease's local admission back and drops its reference to the gate.
func (l *Lease) leaveGate() {
	l.umu.Lock()
	weight := l.claim.Weight
	l.umu.Unlock()
	l.gate.exit(l.mode, weight)
	l.q.dropGate(l.claim.Keys[keyQueue], l.gate)
}

// Lost is the lease's loss handler (watchdog.LossHandler): it runs on the goroutine that found
// the loss, after Done has closed, and hands everything else — telemetry, the holder's callback —
// to the notifier, so that none of it can delay another lease's renewal.
func (l *Lease) Lost(cause error) {
	err := l.endErr(cause)
	l.q.notes.post(func() {
		l.held.Load().Lost(err)
		if l.onLost != nil {
			l.onLost(err)
		}
	})
}
