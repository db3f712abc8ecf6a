package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/mutation"
	"github.com/quorumsync/quorumsync/internal/telemetry"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// Request is one acquisition asked of the engine (see [Quorum.Claim]). Packages built on lease
// build one per operation once and reuse it: the engine only reads it, so one Request may serve
// many goroutines at once.
type Request struct {
	// Kind says what the claim means (see [Kind]); [Exclusive] for a plain lease.
	Kind Kind
	// Name is what is claimed. Any non-empty string works, odd characters included: the engine
	// escapes what would break the hash tag.
	Name string
	// Weight is how many units the claim needs: 1 (or 0) but for AdmitWeighted kinds.
	Weight int64
	// Capacity is, for an AdmitWeighted kind, the total weight admitted at once (a semaphore's
	// capacity).
	Capacity int64
	// TTL is the claim's lifetime on the servers without renewal; 0 means the quorum's.
	TTL time.Duration
	// OnRetry, if not nil, is called by a blocking acquire after each round that failed with node
	// errors, with that round's error, before it tries again (a sync.Locker reports them).
	OnRetry func(error)
	// OnLost, if not nil, is called once if the lease is lost, from the quorum's notifier
	// goroutine after Done has closed (see [OnLost]).
	OnLost func(error)
	// Primitive and Operation name the acquire in traces and metrics: "<primitive>.<operation>",
	// for example "mutex.Lock". Default "lease" and "Acquire" or "TryAcquire".
	Primitive, Operation string
	// Errors are the sentinels the acquire's errors, and the lease's, are built on, so that they
	// name the package the caller called. Default: package lease's.
	Errors *Errors
	// prepared holds the keys of Name for Kind, computed once (see Quorum.Prepare).
	prepared *prepared
	// Label is a short text ([MaxLabel] bytes at most) the servers keep beside the holder's
	// identity, for people looking up who holds the name (Quorum.Inspect); "" for none.
	Label string
	// Wait makes the acquire block until it holds, its ctx ends, or the quorum closes; without it
	// the acquire tries once.
	Wait bool
	// Fencing gives the lease fencing tokens ([Lease.Fence]): numbers that strictly increase
	// across the holders of the name, even over N nodes (see [Fencer]). The kind must implement
	// Fencer. With N = 1 it costs no extra round trip; with more, one.
	Fencing bool
}

// prepared are a request's keys, computed once.
type prepared struct {
	prefix  string
	label   string // Label, escaped
	keys    []string
	keyArgs []any
	ttl     time.Duration
	ttlArg  any // ttl in ms, boxed

	// Room for the keys of a kind with up to two suffixes of its own (the exclusive kind's: its
	// three engine keys, two, and the broken marker), so that such a prepared request is one
	// allocation, not three; a kind with more keys gets slices of their own.
	keyBuf [6]string
	argBuf [6]any
}

// Prepare computes r's keys once, so that every acquire made with r skips it (a name's keys are a
// few allocations). Packages built on lease call it for the requests they build once and reuse.
// Call it before r is used, not while an acquire may read it; a change of r's Name or Kind
// afterwards needs Prepare again.
func (q *Quorum) Prepare(r *Request) {
	if q == nil || r == nil || r.Kind == nil || r.Name == "" {
		return
	}
	p := &prepared{prefix: q.cfg.prefix, label: escapeLabel(r.Label)}
	p.keys = appendKeys(p.keyBuf[:0], q.cfg.prefix, r.Kind, r.Name)
	p.keyArgs = p.argBuf[:0]
	for i := range p.keys {
		// The keys a call starts with stay plain strings, which go-redis's Cluster routing reads
		// without fmt.Sprint (see textArg): the queue, where every kind's scripts start, and the
		// kind's first own key, where the exclusive kind's SET and renewal start. The others box
		// for free.
		if i == keyQueue || i == engineKeys {
			p.keyArgs = append(p.keyArgs, p.keys[i])
		} else {
			p.keyArgs = append(p.keyArgs, (*textArg)(&p.keys[i]))
		}
	}
	// Capped, so that no append to what every acquire of the request shares writes into it.
	p.keys, p.keyArgs = p.keys[:len(p.keys):len(p.keys)], p.keyArgs[:len(p.keyArgs):len(p.keyArgs)]
	if ttl := q.effectiveTTL(r.TTL); ttl > 0 {
		p.ttl, p.ttlArg = ttl, ttl.Milliseconds()
	}
	r.prepared = p
}

// effectiveTTL is the TTL a claim asking for ttl (0: the quorum's) lives with on the servers: a max
// hold time below it shortens the first grant too, since nothing may outlive the cap.
func (q *Quorum) effectiveTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		ttl = q.cfg.ttl
	}
	if q.cfg.maxHold > 0 {
		ttl = min(ttl, q.cfg.maxHold)
	}
	return ttl
}

// Acquire blocks until it holds name on a majority of the nodes, ctx ends, or the quorum closes.
// The lease is exclusive (see [Exclusive]): one holder of name at a time.
//
// Waiting costs little: goroutines of this process that want the same name queue FIFO and only
// the first talks to Redis; it joins the name's queue of waiters on the servers, which serves
// processes in the order they arrived, and sleeps until the release that makes it first in line
// publishes its token, or at the latest until the holder's remaining TTL (capped at TTL/2) has
// passed, so an expired holder, which publishes nothing, is noticed within its TTL.
//
// Its errors are the acquire outcomes of package lease; nothing a failed Acquire wrote is left on
// any node (neither key nor place in the queue; a node that cannot be reached gets its cleanup
// when it answers again). It is the engine's tests' way to take a plain lease.
func (q *Quorum) Acquire(ctx context.Context, name string, opts ...AcquireOption) (*Lease, error) {
	return q.acquireExclusive(ctx, name, true, opts)
}

// TryAcquire tries once to acquire name — one SET NX PX per node — and returns at once, with the
// acquire outcomes of package lease. Nothing is left on any node when it fails.
func (q *Quorum) TryAcquire(ctx context.Context, name string, opts ...AcquireOption) (*Lease, error) {
	return q.acquireExclusive(ctx, name, false, opts)
}

func (q *Quorum) acquireExclusive(ctx context.Context, name string, wait bool, opts []AcquireOption) (*Lease, error) {
	r := &Request{Kind: Exclusive, Name: name, Wait: wait}
	for _, o := range opts {
		if o == nil {
			return nil, Invalid("option", "nil")
		}
		o.applyAcquire(r)
	}
	return q.Claim(ctx, r)
}

// Claim acquires what r asks for: the engine's one entry point, which every primitive calls. It
// admits the caller locally (r.Kind's Admission), then runs acquire rounds on the nodes until one
// reaches a quorum within its validity, or, unless r.Wait, once. Errors are built on r.Errors and
// are the acquire outcomes package lease documents (busy, unavailable, misconfigured, ctx), or
// Closed and InvalidArgument. Nothing a failed or cancelled Claim wrote outlives it on any node
// that answers.
func (q *Quorum) Claim(ctx context.Context, r *Request) (*Lease, error) {
	errs := leaseErrors
	if r != nil && r.Errors != nil {
		errs = r.Errors
	}
	if q == nil || q.wd == nil {
		return nil, errs.Invalid("quorum", "nil")
	}
	if ctx == nil {
		return nil, errs.InvalidFor(nameOf(r), "ctx", "nil")
	}
	if r == nil || r.Kind == nil {
		return nil, errs.Invalid("request", "nil, or without a kind")
	}
	if r.Name == "" {
		return nil, errs.Invalid("name", "empty")
	}
	weight := max(r.Weight, 1)
	if r.Weight < 0 {
		return nil, errs.InvalidFor(r.Name, "weight", "%d is negative", r.Weight)
	}
	if len(r.Label) > MaxLabel {
		return nil, errs.InvalidFor(r.Name, "label", "%d bytes, more than %d", len(r.Label), MaxLabel)
	}
	if r.Kind.Admission() == AdmitWeighted && weight > r.Capacity {
		return nil, errs.InvalidFor(r.Name, "weight", "%d is more than the capacity %d", weight, r.Capacity)
	}
	if _, ok := r.Kind.(Fencer); r.Fencing && !ok {
		return nil, errs.InvalidFor(r.Name, "fencing", "the kind has no fencing tokens")
	}
	if r.TTL != 0 {
		if err := q.cfg.checkTTL(errs, r.Name, r.TTL); err != nil {
			return nil, err
		}
	}
	if q.cfg.guard > 0 && max(r.TTL, q.cfg.ttl) > q.cfg.guard {
		return nil, errs.InvalidFor(r.Name, "ttl", "%v is longer than the restart guard's %v, which would not protect it", max(r.TTL, q.cfg.ttl), q.cfg.guard)
	}
	ttl := q.effectiveTTL(r.TTL)
	if !q.enter() {
		return nil, errs.Closed
	}
	defer q.leave()

	primitive, operation := r.Primitive, r.Operation
	if primitive == "" {
		primitive = "lease"
	}
	if operation == "" {
		operation = "TryAcquire"
		if r.Wait {
			operation = "Acquire"
		}
	}
	info := telemetry.AcquireInfo{Primitive: primitive, Operation: operation, Name: r.Name, Nodes: len(q.nodes), Quorum: q.quorum}
	if r.Kind.Admission() == AdmitWeighted {
		info.Permits = weight
	}
	ctx, tr := q.inst.StartAcquire(ctx, info)
	l, err := q.acquireLocal(ctx, r, errs, ttl, weight, tr)
	if err != nil {
		outcome, traced := outcomeOf(ctx, err), err
		if outcome == telemetry.OutcomeError {
			// In the trace, name the failure after the node errors, when there are any, rather
			// than after the not-acquired sentinel that wraps them. The caller gets err as is.
			var ne *NodeError
			if errors.As(err, &ne) {
				traced = &typedError{err, ne.errorType()}
			}
		}
		tr.End(outcome, 0, traced)
		return nil, err
	}
	l.held.Store(tr.End(telemetry.OutcomeAcquired, time.Until(l.Until()), nil))
	return l, nil
}

// nameOf is r's name, or "" for a nil r.
func nameOf(r *Request) string {
	if r == nil {
		return ""
	}
	return r.Name
}

// outcomeOf classifies a failed acquire for tracing: contention and cancellation are outcomes,
// not errors; node failures, a closed quorum and bad input are.
func outcomeOf(ctx context.Context, err error) telemetry.Outcome {
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return telemetry.OutcomeCancelled
	case errors.Is(err, ErrNotAcquired):
		return telemetry.OutcomeNotAcquired // busy, even when a minority of nodes failed too
	default:
		return telemetry.OutcomeError // unavailable, misconfigured, closed, invalid argument
	}
}

// typedError gives an error a name for tracing (see sentinel.ErrorType) without changing what it
// matches.
type typedError struct {
	error
	typ string
}

func (e *typedError) ErrorType() string { return e.typ }
func (e *typedError) Unwrap() error     { return e.error }

// acquireLocal passes the process-local gate of the name, then acquires on the servers.
func (q *Quorum) acquireLocal(ctx context.Context, r *Request, errs *Errors, ttl time.Duration, weight int64, tr *telemetry.Acquire) (*Lease, error) {
	var keys []string
	var ttlArg any
	var keyArgList []any
	var label string
	if p := r.prepared; p != nil && p.prefix == q.cfg.prefix {
		keys, keyArgList, label = p.keys, p.keyArgs, p.label
		if p.ttl == ttl {
			ttlArg = p.ttlArg
		}
	} else {
		keys = keysFor(q.cfg.prefix, r.Kind, r.Name)
		label = escapeLabel(r.Label)
	}
	if ttlArg == nil {
		ttlArg = ttl.Milliseconds()
	}
	mode := r.Kind.Admission()
	g := q.gateFor(keys[keyQueue])
	contended := false
	if !g.tryEnter(mode, weight, r.Capacity) {
		if !r.Wait {
			q.dropGate(keys[keyQueue], g)
			return nil, &opError{sentinel: errs.NotAcquired, name: r.Name, detail: "held in this process"}
		}
		contended = true
		tr.Waiting()
		ok, handed, refGone := g.enter(ctx, q.stop, r, ttl, weight)
		if !ok {
			// Read before the gate is let go: the last one to let go of it clears it and
			// recycles it. (When our reference went with a lease passed to us as we gave up,
			// the gate may be another name's already: say nothing of it.)
			var last *round
			if !refGone {
				last = g.lastFailure()
				q.dropGate(keys[keyQueue], g)
			}
			if ctx.Err() != nil {
				return nil, q.notAcquired(ctx, errs, r.Name, last)
			}
			return nil, errs.Closed
		}
		if handed != nil {
			return handed, nil // passed to us by its holder: held already (see Quorum.pass)
		}
	}
	token := newToken(time.Now(), label)
	l := &Lease{
		q: q, kind: r.Kind, errs: errs, gate: g, mode: mode, onLost: r.OnLost,
		claim: Claim{
			Name: r.Name, Keys: keys, Token: token, TTL: ttl, Weight: weight, Capacity: r.Capacity,
			Fencing: r.Fencing, ttlArg: ttlArg, keyArgs: keyArgList,
		},
	}
	l.claim.tokenArgs[0] = (*textArg)(&l.claim.Token) // boxed for free; the Token never changes
	if !l.picked() {
		l.claim.Units = One // a claim of one unit; the servers pick a weighted claim's
	}
	if q.isClosed() { // before, or while we queued at the gate
		l.leaveGate()
		return nil, errs.Closed
	}
	if err := q.acquireRemote(ctx, l, r.Wait, contended, r.OnRetry, tr); err != nil {
		l.leaveGate()
		return nil, err
	}
	return l, nil
}

// nodeVote is one node's part in a call fanned out to all of them.
type nodeVote struct {
	reply Reply
	err   error // the node's failure, as the client returned it
	sent  bool  // a request went out (the node was not skipped)
	young bool  // the restart guard ignores the node's vote: it restarted too recently
}

// granted reports whether the node granted the claim, or may have (its call failed after it went
// out): the nodes a failed round must undo.
func (v *nodeVote) granted() bool {
	return v.sent && (v.err != nil || len(v.reply.Units) > 0)
}

// round is the outcome of one acquire attempt.
type round struct {
	granted     bool
	unavailable bool          // too few nodes answered (or counted) for a quorum: not busy
	some        int           // nodes that granted
	young       int           // nodes whose vote the restart guard ignored
	retryIn     time.Duration // the shortest wait a node asked for; 0 if none said
	unknown     bool          // a node could not say how long to wait: back off
	split       bool          // some nodes granted, too few
	detail      string        // what happened, for the error
	nodeErrs    []error
}

// failure is the error of a round that did not acquire.
func (r *round) failure(errs *Errors, name string) error {
	return &opError{sentinel: r.sentinel(errs), name: name, detail: r.detail, causes: r.nodeErrs}
}

// sentinel is the outcome of a failed round: busy (NotAcquired) or unavailable.
func (r *round) sentinel(errs *Errors) error {
	if r.unavailable {
		return errs.Unavailable
	}
	return errs.NotAcquired
}

// acquireRemote runs acquire rounds until one reaches a quorum (or, with wait false, once).
// contended says the caller had to wait at the local gate: it then skips the kind's fast request,
// which would most likely fail, and joins the servers' queue at once.
func (q *Quorum) acquireRemote(ctx context.Context, l *Lease, wait, contended bool, onRetry func(error), tr *telemetry.Acquire) (err error) {
	w := begin()
	defer end(w)
	votes := l.votes(w)
	// The arrival orders this waiter in the servers' queues; it is the same on every node and
	// every attempt so that every node puts the waiters in the same order.
	arrival := time.Now().UnixMilli()
	a := &w.attempt
	*a = Attempt{Claim: &l.claim, Queue: wait, Arrival: arrival, ArrivalArg: arrival}
	var (
		sub        *waiter
		subscribed bool
		bo         backoff.BackOff
		timer      *time.Timer
	)
	// A release may grant this waiter the claim outright rather than reserve it (see directGrant):
	// for a kind of one unit that offers it, with N = 1, without the restart guard, whose check
	// needs a reply of the node's, and without replica acknowledgement, whose WAIT must follow the
	// grant's write on the writer's own connection (the releaser's, not the waiter's). seq numbers the requests that may queue us; sent is when the last
	// of them was sent.
	_, grants := l.kind.(directGranter)
	direct := wait && grants && len(q.nodes) == 1 && q.cfg.guard == 0 && q.cfg.ackReplicas == 0
	var seq int64
	var sent time.Time
	// listen registers us for wake-ups before the first attempt that may queue us (the fast
	// request never does): the release that serves us may come at once, and its message must find
	// us listening. An uncontended acquire never gets here.
	listen := func() {
		sub = q.watch(l.claim.Keys[keyChannel]+procChannel, l.claim.Token)
		subscribed = q.subscribe(sub)
		tr.Waiting()
	}
	if wait && contended {
		listen()
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if sub != nil {
			q.unwatch(sub)
			if err != nil {
				q.leaveQueue(ctx, l, w)
			}
		}
	}()
	// last is the last round that failed, for the error if ctx ends: a copy in one variable of
	// the function's, not a pointer to the loop's res, which would then live on the heap.
	var lastRes round
	var last *round
	for attempt := 1; ; attempt++ {
		// A node call sees the caller's cancellation only between calls (see nodeCtx): an acquire
		// whose ctx has ended makes no new round, even when the name is free.
		if ctx.Err() != nil {
			if last == nil {
				// No round of its own yet (admitted at the gate as its ctx ran out): the last
				// round of the goroutine it waited behind says what it was waiting through.
				last = l.gate.lastFailure()
			}
			return q.notAcquired(ctx, l.errs, l.claim.Name, last)
		}
		tr.Attempt()
		a.Fast = attempt == 1 && !contended
		if direct && !a.Fast {
			seq, sent = int64(attempt), time.Now()
			a.Seq = seq
		}
		res, err := q.round(ctx, l, w, votes, tr)
		if direct && (res.some > 0 || len(res.nodeErrs) > 0) {
			// The round undid what the node granted or may have (or owes it the undo), and an
			// undo releases a direct grant too: no wake-up for this request or an earlier one
			// may be taken for a grant any more; the next round asks the server.
			seq = 0
		}
		if err == nil && !res.granted {
			l.gate.noteFailure(&res)
			if onRetry != nil && wait && len(res.nodeErrs) > 0 && ctx.Err() == nil {
				onRetry(res.failure(l.errs, l.claim.Name))
			}
		}
		switch {
		case err != nil:
			return err
		case res.granted:
			l.gate.noteFailure(nil)
			return nil
		case ctx.Err() != nil:
			return q.notAcquired(ctx, l.errs, l.claim.Name, &res)
		case !wait:
			return res.failure(l.errs, l.claim.Name)
		}
		lastRes = res
		last = &lastRes
		nodeErrs := len(res.nodeErrs) > 0
		if a.Fast {
			listen()
			if !nodeErrs {
				continue // straight on to the queue
			}
		}
		d, reason := q.sleepFor(&res, nodeErrs, subscribed, l.claim.TTL, &bo)
		tr.Retry(d, reason)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
	sleep:
		select {
		case <-ctx.Done():
			return q.notAcquired(ctx, l.errs, l.claim.Name, &res)
		case <-q.stop:
			return l.errs.Closed
		case <-sub.wake:
			if q.woken != nil && !q.woken() {
				goto sleep
			}
			tr.WakeUp("pubsub")
			if !direct {
				break
			}
			if fence, ok := sub.granted(seq); ok && (fence > 0 || !l.claim.Fencing) {
				if held, err := q.directGrant(l, sent, fence); held || err != nil {
					if held {
						l.gate.noteFailure(nil)
					}
					return err
				}
				// Too little of its validity is sure to be left: the next round asks the server,
				// which finds the claim ours and renews it, or, if it ran out, queues us again.
			}
		case <-timer.C:
			tr.WakeUp("timer")
		}
	}
}

// sleepFor says how long a waiter sleeps after a round that did not acquire, and why. Subscribed
// and with the servers' word on how long the holder has left, it sleeps until woken, or at most
// that long (and TTL/2): the release that serves it will say so, and the timer only bounds a
// missed message or an expiry, which publishes nothing. Otherwise (node errors, no subscription,
// a holder whose key has no TTL) it backs off, still at most TTL/2. A split vote (some nodes
// granted, too few) sleeps a random part of that, so that two claims that each got part of the
// nodes do not collide again in step.
func (q *Quorum) sleepFor(res *round, nodeErrs, subscribed bool, ttl time.Duration, bo *backoff.BackOff) (time.Duration, string) {
	var d time.Duration
	reason := "held"
	if subscribed && !nodeErrs && !res.unknown && res.retryIn > 0 {
		d = min(res.retryIn, ttl/2)
		d -= rand.N(d/10 + 1) // jitter: waiters woken by one expiry do not all retry at once
	} else {
		if *bo == nil {
			*bo = q.cfg.newBackOff()
		}
		reason = "node errors or no subscription"
		if res.unknown {
			reason = "holder's key has no TTL"
		}
		if d = (*bo).NextBackOff(); d == backoff.Stop || d > ttl/2 {
			d = ttl / 2
		}
		if res.retryIn > 0 && d > res.retryIn {
			d = res.retryIn
		}
	}
	if res.split {
		reason = "split vote"
		d = rand.N(d + 1)
	}
	return max(d, time.Millisecond), reason
}

// round is one Redlock attempt, in four steps: the kind's acquire call on every node in parallel;
// the votes counted (countVotes); the grant checked for validity and settled (settle), or else
// undone and described (describe). On success the lease is registered with the watchdog. The
// error is non-nil only when the attempt cannot be retried: a node refused it for good
// (misconfigured), or the quorum closed.
func (q *Quorum) round(ctx context.Context, l *Lease, w *scratch, votes []nodeVote, tr *telemetry.Acquire) (round, error) {
	a := &w.attempt
	// Validity is measured from before the first request: whatever time the requests take is
	// time the key has already been ticking on the servers.
	start := time.Now()
	q.each(ctx, w, l.kind.Acquire(a), OpAcquire, l, votes, nil, false)
	// A node that refuses for good (misconfigured) is a failed vote like any other, as long as
	// the others can still make a quorum; when too many refuse for that, no retry can help.
	if refusals := q.permanentOf(ctx, votes); len(refusals) > len(q.nodes)-q.quorum {
		q.undo(ctx, l, w, votes)
		return round{}, &opError{sentinel: l.errs.Misconfigured, name: l.claim.Name, causes: refusals}
	}
	res, t, keep := q.countVotes(ctx, l, votes, a, tr)
	until := validUntil(start, l.claim.TTL)
	if res.granted && time.Until(until) >= minValidity(l.claim.TTL) {
		err := q.settle(ctx, l, w, votes, keep, start, until, &res)
		return res, err // not granted: settle undid it and said why
	}
	// A waiter that goes on waiting, granted by too few nodes while a quorum answered (it is
	// queued on those that refused), keeps its place where it gives the grant back (see
	// Requeuer): handing the grant to the next in line could swap two waiters' places between the
	// nodes, round after round. (Units a quorum granted, but not the same ones, are released:
	// the next round asks for those most nodes granted.)
	undo := l.kind.Release(&l.claim)
	if r, ok := l.kind.(Requeuer); ok && a.Queue && !a.Fast && res.some < q.quorum && t.answered >= q.quorum {
		undo = r.Requeue(a)
	}
	q.undoWith(ctx, l, w, votes, undo)
	q.describe(&res, l, a, &t, start, until)
	res.granted = false
	return res, nil
}

// countVotes tallies an acquire round: whether a quorum granted every unit of the claim (and, for
// a claim whose units the servers pick, which units to keep), what the nodes that did not grant
// asked the caller to wait, and the node errors.
func (q *Quorum) countVotes(ctx context.Context, l *Lease, votes []nodeVote, a *Attempt, tr *telemetry.Acquire) (round, tally, []int64) {
	var asked []int64
	if !l.picked() {
		asked = l.claim.Units
	}
	t := q.count(ctx, votes, asked, tr)
	res := round{nodeErrs: t.errs}
	counted := 0 // nodes that granted something, the restart guard's ignored ones aside
	for i := range votes {
		v := &votes[i]
		if v.young && v.err == nil {
			res.young++
		}
		switch {
		case v.err != nil:
		case len(v.reply.Units) > 0:
			res.some++
			if !v.young {
				counted++
			}
		case v.reply.Retry <= 0:
			res.unknown = res.unknown || !a.Fast
		case res.retryIn == 0 || v.reply.Retry < res.retryIn:
			res.retryIn = v.reply.Retry
		}
	}
	keep := asked
	res.granted = t.holds(q.quorum)
	if asked == nil {
		// The servers picked the units: keep the weight most granted by a quorum, or else ask
		// again for those most nodes granted, so that the nodes converge.
		keep = t.quorate(q.quorum, l.claim.Weight)
		res.granted = keep != nil
		if !res.granted && len(t.units) > 0 {
			a.Prefer = t.ranked(a.Prefer)
		}
	}
	res.split = res.some > 0 && !res.granted
	// Busy or unavailable: had the nodes that failed (or that the restart guard ignored) granted,
	// would a quorum have? Then the round failed for want of nodes; else enough nodes answered
	// "taken" that no quorum was possible.
	res.unavailable = !res.granted && counted+len(t.errs)+res.young >= q.quorum
	return res, t, keep
}

// settle makes a round that a quorum granted in time the caller's: it gives back the units a node
// granted beyond those kept (a weighted claim), fixes the fencing tokens (a second round), checks
// that at least TTL/4 of validity is still left after both, and hands the lease to the watchdog.
// When any step fails it undoes the round and says why in res (res.granted false).
func (q *Quorum) settle(ctx context.Context, l *Lease, w *scratch, votes []nodeVote, keep []int64, start, until time.Time, res *round) error {
	l.claim.Units = keep
	settled := l.picked() || l.claim.Fencing
	if l.picked() {
		q.trim(ctx, l, w, votes)
	}
	if l.claim.Fencing {
		if detail, errs := q.fence(ctx, l, w, votes); detail != "" {
			q.undo(ctx, l, w, votes)
			res.granted, res.detail, res.nodeErrs = false, detail, append(res.nodeErrs, errs...)
			res.unavailable = len(errs) > 0
			return nil
		}
	}
	if left := time.Until(until); settled && left < minValidity(l.claim.TTL) {
		q.undo(ctx, l, w, votes)
		res.granted, res.unavailable = false, true
		res.detail = fmt.Sprintf("granted by a quorum, but only %v of its validity was left once the grant was settled (%v after the request; at least TTL/4 needed)",
			max(left, 0).Round(time.Microsecond), time.Since(start).Round(time.Microsecond))
		return nil
	}
	if err := q.grant(l, start, until); err != nil {
		q.undo(ctx, l, w, votes)
		res.granted = false
		return err
	}
	q.undoUnreplicated(ctx, l, w, votes)
	return nil
}

// undoUnreplicated releases the claim, when the round succeeded without them, on the nodes whose
// vote did not count but that may have granted (WithReplicaAck): a grant its replicas did not
// confirm, or one whose reply (or WAIT) did not come back in time. What a failover could forget is
// not kept, nor renewed; a node that does not answer gets the release when it answers again.
func (q *Quorum) undoUnreplicated(ctx context.Context, l *Lease, w *scratch, votes []nodeVote) {
	if q.cfg.ackReplicas == 0 {
		return
	}
	var pick []bool
	for i := range votes {
		if votes[i].granted() && votes[i].err != nil {
			if pick == nil {
				pick = make([]bool, len(votes))
			}
			pick[i] = true
		}
	}
	if pick != nil {
		q.each(detach(ctx), w, l.kind.Release(&l.claim), OpRelease, l, make([]nodeVote, len(votes)), pick, true)
	}
}

// describe says, in res.detail, why a round that did not hold failed.
func (q *Quorum) describe(res *round, l *Lease, a *Attempt, t *tally, start, until time.Time) {
	switch {
	case res.granted:
		// Granted, but too late: the requests took most of the TTL (a stall, a slow node).
		res.unavailable = true
		res.detail = fmt.Sprintf("granted by a quorum, but only %v of its validity was left when the votes were in (%v after the request; at least TTL/4 needed)",
			max(time.Until(until), 0).Round(time.Microsecond), time.Since(start).Round(time.Microsecond))
	case res.young > 0:
		res.detail = fmt.Sprintf("granted by %d of %d nodes, %d needed: the votes of %d not surely up for %v are ignored (restart guard)",
			res.some, len(q.nodes), q.quorum, res.young, q.cfg.guardUp())
	case l.mode == AdmitWeighted && res.some >= q.quorum:
		// Enough nodes granted units, but not the same ones.
		res.detail = fmt.Sprintf("%d of %d nodes granted %d units each, but no %d of them the same units by a quorum of %d: a blocking acquire asks again for those most nodes granted",
			res.some, len(q.nodes), l.claim.Weight, l.claim.Weight, q.quorum)
		if len(t.errs) > 0 {
			res.detail += fmt.Sprintf("; %d nodes failed", len(t.errs))
		}
	case len(t.errs) > 0:
		res.detail = fmt.Sprintf("granted by %d of %d nodes, %d needed", res.some, len(q.nodes), q.quorum)
		if held := t.answered - res.some; held > 0 {
			res.detail += fmt.Sprintf(" (held or queued for on %d)", held)
		}
	case res.split:
		res.detail = fmt.Sprintf("granted by %d of %d nodes, %d needed: the others hold it for someone else", res.some, len(q.nodes), q.quorum)
	case a.Fast:
		res.detail = "held, or reserved for a waiter"
	case res.unknown:
		res.detail = "held by a key with no TTL (not set by this library)"
	default:
		res.detail = fmt.Sprintf("held, or others queued first; try again within %v", res.retryIn)
	}
}

// fence settles the fencing tokens of a round that a quorum granted: per unit the highest counter
// the granting nodes reported and, with more than one node, a second round that raises the
// counter to it on every node where the claim is still ours. It returns "" when a quorum acked (the
// tokens are then the lease's), else what happened and the node errors of the second round.
func (q *Quorum) fence(ctx context.Context, l *Lease, w *scratch, votes []nodeVote) (string, []error) {
	fences := make([]uint64, len(l.claim.Units))
	for i := range votes {
		v := &votes[i]
		if v.err != nil {
			continue
		}
		for j, u := range v.reply.Units {
			if k, ok := slices.BinarySearch(l.claim.Units, u); ok && j < len(v.reply.Fences) {
				fences[k] = max(fences[k], v.reply.Fences[j])
			}
		}
	}
	if len(q.nodes) > 1 && !mutation.On(mutation.FenceOneRound) {
		acks := make([]nodeVote, len(q.nodes))
		q.each(ctx, w, l.kind.(Fencer).Fence(&l.claim, fences), OpFence, l, acks, nil, false)
		if q.cfg.ackReplicas > 0 {
			// A node whose grant did not count does not count for the token either: when its
			// counter is already at the token, the round writes nothing there, and a WAIT
			// confirms nothing about the counter.
			for i := range acks {
				if votes[i].err != nil && acks[i].err == nil {
					acks[i].err = votes[i].err
				}
			}
		}
		// The second round answers for the claim as a whole: yes where every unit was ours still.
		t := q.count(ctx, acks, One, nil)
		if !t.holds(q.quorum) {
			return fmt.Sprintf("granted by a quorum, but its fencing token was settled on %d of %d nodes, %d needed", t.least, len(q.nodes), q.quorum), t.errs
		}
	}
	l.fences = fences
	return "", nil
}

// directGranter is implemented by a kind whose release can grant a waiter the claim outright (see
// [Attempt.Seq]); only the engine's own kinds can.
type directGranter interface{ grantsDirectly() }

// directGrant makes a release's grant of the claim to this waiter the lease's, with no request
// (N = 1). The waiter's wake-up named the request the grant answered, sent at sent: the release
// read that request's number from the queue's liveness hash, where the request's execution put it
// with the liveness the grant expires with (that execution + TTL), so the grant cannot precede
// sent, and sent + TTL − drift is a lower bound of its end (the argument of a round's validity,
// with the request that queued us as the round; lease's doc, Direct grant). A lease
// held from such a grant is valid until then; when less than TTL/4 of that is left (the waiter was
// paused, or the wake-up was slow), it reports false and the caller asks the server instead.
func (q *Quorum) directGrant(l *Lease, sent time.Time, fence uint64) (bool, error) {
	until := validUntil(sent, l.claim.TTL)
	if time.Until(until) < minValidity(l.claim.TTL) {
		return false, nil
	}
	if l.claim.Fencing {
		l.fences = []uint64{fence}
	}
	if err := q.grant(l, sent, until); err != nil {
		return false, err
	}
	// The local handoff's budget counts from when the grant reached us.
	l.grantedAt = sinceEpoch()
	return true, nil
}

// grant hands a lease that reached its quorum to the watchdog and to the quorum's set of held
// leases.
func (q *Quorum) grant(l *Lease, start, until time.Time) error {
	var holdUntil time.Time
	if q.cfg.maxHold > 0 {
		holdUntil = start.Add(q.cfg.maxHold)
	}
	e, err := q.wd.Add(watchdog.Spec{Owner: l, TTL: l.claim.TTL, Start: start, Until: until, HoldUntil: holdUntil}) // the watchdog calls l.Lost
	if err != nil {
		return l.errs.Closed
	}
	l.entry, l.grantedAt = e, start.Sub(epoch)
	if !q.track(l) {
		e.Stop(ErrClosed)
		return l.errs.Closed
	}
	return nil
}

// undo gives a failed attempt back on every node that granted it or did not answer (a node that
// timed out may still set what it was asked to). Nodes that answered "not granted" set nothing and
// are skipped, and so are suspect nodes, which were sent nothing. It ignores ctx's cancellation:
// the point is to leave nothing behind. A node that cannot be reached is owed the undo.
func (q *Quorum) undo(ctx context.Context, l *Lease, w *scratch, votes []nodeVote) {
	q.undoWith(ctx, l, w, votes, l.kind.Release(&l.claim))
}

// undoWith is undo with the call it sends: the kind's release, or its requeue.
func (q *Quorum) undoWith(ctx context.Context, l *Lease, w *scratch, votes []nodeVote, call Call) {
	var pick []bool
	for i := range votes {
		if votes[i].granted() {
			if pick == nil {
				pick = make([]bool, len(votes))
			}
			pick[i] = true
		}
	}
	if pick == nil {
		return
	}
	q.each(detach(ctx), w, call, OpRelease, l, make([]nodeVote, len(votes)), pick, true)
}

// trim lets go of the units a weighted round's nodes granted beyond those kept: the kind's renew
// call, naming the units kept, goes to every node that granted another.
func (q *Quorum) trim(ctx context.Context, l *Lease, w *scratch, votes []nodeVote) {
	var pick []bool
	for i := range votes {
		for _, u := range votes[i].reply.Units {
			if _, kept := slices.BinarySearch(l.claim.Units, u); !kept {
				if pick == nil {
					pick = make([]bool, len(votes))
				}
				pick[i] = true
				break
			}
		}
	}
	if pick != nil {
		q.each(detach(ctx), w, l.kind.Renew(&l.claim, l.claim.TTL), OpRenew, l, make([]nodeVote, len(votes)), pick, true)
	}
}

// leaveQueue takes a waiter that gives up out of every node's queue (and passes on what was
// reserved for it). A node that cannot be reached is owed the leave.
func (q *Quorum) leaveQueue(ctx context.Context, l *Lease, w *scratch) {
	q.each(detach(ctx), w, l.kind.Leave(&l.claim), OpLeave, l, make([]nodeVote, len(q.nodes)), nil, true)
}

// callTask sends one call to every node (those with pick[i] set, when pick is not nil) and stores
// each node's reply, read by the lease's kind for op, in votes. With owed set the call is a cleanup:
// a node that is skipped as suspect, or whose call fails at the transport, is owed it.
type callTask struct {
	q     *Quorum
	l     *Lease
	call  Call
	op    Op
	votes []nodeVote
	pick  []bool
	owed  bool
	// room, when not nil, is per-node room for the call's arguments and context, which the
	// scratch space of an acquire or release lends (a call then allocates neither).
	room *[maxRoom]callRoom
}

// callRoom is one node's room for a call: its arguments, and its context.
type callRoom struct {
	args [20]any
	ctx  nodeCtx
}

// argsFor returns n's room for a call's arguments, or nil.
func (t *callTask) argsFor(n *node) []any {
	if t.room == nil || n.index >= len(t.room) {
		return nil
	}
	return t.room[n.index].args[:0]
}

// nodeContext returns the context of n's call under ctx that ends at deadline, in n's room when
// the task has one (Quorum.callNode asks for it).
func (t *callTask) nodeContext(q *Quorum, ctx context.Context, n *node, deadline time.Time) context.Context {
	if t.room == nil || n.index >= len(t.room) {
		return q.deadlines.context(ctx, deadline)
	}
	c := &t.room[n.index].ctx
	q.deadlines.fill(c, ctx, deadline)
	return c
}

func (t *callTask) do(ctx context.Context, n *node, c redis.UniversalClient) {
	q, l := t.q, t.l
	v := &t.votes[n.index]
	*v = nodeVote{}
	if t.pick != nil && !t.pick[n.index] {
		return
	}
	if c == nil {
		v.err = n.skipped()
		if t.owed {
			q.owe(n, t.call)
		}
		return
	}
	v.sent = true
	var cmd *redis.Cmd
	guarded := t.op == OpAcquire && q.cfg.guard > 0
	acked := int64(-1) // -1: no WAIT
	switch {
	case q.cfg.ackReplicas > 0 && (t.op == OpAcquire || t.op == OpFence):
		// What a grant wrote (and a fencing counter raised) must reach the replicas before the
		// vote counts, or a failover to one of them could forget it.
		var up time.Duration
		cmd, acked, up = q.runAcked(ctx, c, l.claim.Keys[0], t.call, guarded)
		v.young = guarded && up < q.cfg.guardUp()
	case guarded:
		var up time.Duration
		cmd, up = runGuarded(ctx, c, t.call)
		v.young = up < q.cfg.guardUp()
	default:
		cmd = run(ctx, c, t.call, t.argsFor(n))
	}
	if err := cmd.Err(); err != nil && err != redis.Nil {
		v.err = err
		if redis.HasErrorPrefix(err, "OOM") {
			v.err = &outOfMemory{err}
		} else if r := refusalOf(err); r != nil && r.vague {
			v.err = q.explain(ctx, c, r)
		} else if r == nil && connectionDropped(err) {
			// A server that speaks only TLS drops a plain-text connection at once: once a check
			// in the background has found that, say so rather than report a node that looks
			// down. The check never delays a call.
			if tlsErr := n.tls.Load(); tlsErr != nil {
				v.err = tlsErr
			} else {
				q.checkTLS(n)
			}
		}
		if t.owed && isTransportError(err) {
			q.owe(n, t.call)
		}
		return
	}
	v.reply, v.err = l.kind.Read(t.op, cmd, &l.claim)
	if acked >= 0 && v.err == nil && acked < int64(q.cfg.ackReplicas) && (len(v.reply.Units) > 0 || t.op == OpFence) {
		// Not confirmed: a failed vote, which a failed round undoes (granted() holds) and a
		// successful one undoes too (settle).
		v.err = &notReplicated{acked: acked, want: int64(q.cfg.ackReplicas), timeout: q.cfg.ackTimeout}
	}
}

// each sends call to every node (those with pick[i] set, when pick is not nil) in parallel, and
// stores each node's reply in votes (see callTask). It uses the task of w, the scratch space of
// the acquire or release making the call (their calls are made one at a time), so that a call
// costs no allocation; with w nil, a task of its own.
func (q *Quorum) each(ctx context.Context, w *scratch, call Call, op Op, l *Lease, votes []nodeVote, pick []bool, owed bool) {
	var t *callTask
	var room *[maxRoom]callRoom
	if w != nil {
		t, room = &w.task, &w.room
	} else {
		t = new(callTask)
	}
	*t = callTask{q: q, l: l, call: call, op: op, votes: votes, pick: pick, owed: owed, room: room}
	q.fanout(ctx, t)
	*t = callTask{}
}

// outOfMemory is the vote of a node that refused a write for lack of memory (maxmemory reached
// with the noeviction policy): a failed vote, which heals once memory is freed.
type outOfMemory struct{ err error }

func (e *outOfMemory) Error() string {
	return "out of memory: the node refuses new writes until memory is freed (used memory over maxmemory, policy noeviction): " + e.err.Error()
}

func (e *outOfMemory) Unwrap() error { return e.err }

// notAcquired is the error of an acquire whose ctx ended: it matches ctx's error and the outcome
// of the last round (busy or unavailable: see round.sentinel), busy when no round ran, and, when
// nodes failed in the last round, says so with their errors. last is the caller's own last round,
// or else the last round of the goroutine it queued behind at the local gate.
func (q *Quorum) notAcquired(ctx context.Context, errs *Errors, name string, last *round) error {
	causes := []error{ctx.Err()}
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		causes = append(causes, cause)
	}
	sentinel := errs.NotAcquired
	if last != nil {
		sentinel = last.sentinel(errs)
		if len(last.nodeErrs) > 0 {
			causes = append(causes, lastAttempt(last.detail))
			causes = append(causes, last.nodeErrs...)
		}
	}
	return &opError{sentinel: sentinel, name: name, causes: causes}
}

// lastAttempt says what the last attempt of an acquire that ran out of time found.
type lastAttempt string

func (e lastAttempt) Error() string { return "last attempt: " + string(e) }
