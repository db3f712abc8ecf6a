// Package semaphore provides a weighted counting semaphore shared by many processes through Redis,
// over a quorum of independent masters, shaped like golang.org/x/sync/semaphore.Weighted: a fixed
// capacity C of permits, [Semaphore.Acquire] of n permits at once (blocking, in arrival order),
// [Semaphore.TryAcquire], and [Semaphore.Release] of any n held. Every call takes a ctx and returns
// an error because it crosses a network; [Semaphore.Do] runs a function while holding n permits and
// cancels its ctx if they are lost, [Semaphore.TryDo] only if they are free at once;
// [Semaphore.Locker] is the weight-1 [sync.Locker]; [Semaphore.Obtain] returns one acquisition's
// permits as a lease of their own.
//
//	gpus := semaphore.New(q, "gpu-pool", 8)
//	if err := gpus.Acquire(ctx, 2); err != nil { ... }
//	defer gpus.Release(ctx, 2)
//
// # Why slots
//
// The obvious design — each node lets in up to C holders, and a permit needs a majority — is unsafe
// for C > 1. With N = 3 and C = 2, client A can be let in by nodes {1, 2}, B by {2, 3} and C by
// {1, 3}: every node counts two holders, every client has a majority, and three clients hold
// permits of a semaphore of two, with no fault at all, only requests that reached the nodes in
// different orders. (A test shows it, with a model of that design.)
//
// This package uses slots instead. A semaphore of capacity C has C slots, numbered 0 to C-1, and
// each slot is an exclusive claim of its own, exactly like a mutex. A permit of weight n is n
// slots, which is why an acquisition takes at most 1000 permits: a script holds its node for
// every slot it touches. An acquire sends one script per node that takes n free slots there, all
// or none, preferring the slots named (those other nodes granted in the last round), and the
// acquire holds the slots that a majority granted, if they are n. Safety then follows from the
// mutex argument, per slot: two holders of one slot would need two majorities that granted it, and
// those share a node, which grants a slot to one token at a time. At most C slots exist, so at most C permits are held, at
// every instant, under the caveats of package lease (a node restarted without persistence, clock
// jumps, eviction, a holder paused past its validity).
//
// When the nodes disagree — each granted n slots, but no n of them have a majority — the acquire
// gives back everything it got on every node and sleeps a random part of its wait before the next
// round (asking for the slots most nodes granted, ties in a random order), so two large requests
// that split the nodes between them cannot deadlock, and rounds converge.
//
// # Cost
//
// Without contention an Acquire is one script per node, a Release another; the watchdog renews all
// of an acquisition's slots with one script per node per TTL/3, batched with every other lease. No
// operation grows with C: each node keeps the slots held (scored by expiry), the free slots below a
// watermark (those above it are free by construction), and each token's slots, so a script touches
// only the slots it takes, renews or frees. The capacity (1 to 2^53) is stored with the slots
// while the semaphore is in use; an acquire with another capacity fails at once with
// [ErrCapacityMismatch] (which also matches lease.ErrMisconfigured): the capacity is forgotten with the rest of the name's state once no slot is
// held or reserved and nobody waits. A release that leaves it so deletes the name's keys; otherwise
// they all expire together, with the last slot or with the queue, whichever lasts longer: the keys
// of holders and waiters that crashed are gone within two TTLs of the last renewal or attempt (the
// fencing counters aside, which must persist).
//
// # Crash safety
//
// Every slot is a lease: it expires by the server's own clock (TIME) unless its holder renews it.
// A holder that crashes, or is paused past its TTL, gives its permits back within the TTL; so does
// a waiter that crashed with slots reserved for it.
//
// # No starvation
//
// Waiters are served in the order they arrived, locally (the process admits its goroutines by
// weight, up to C, FIFO) and across processes (the servers' queue, by arrival). An acquire that
// finds slots free still waits while a waiter that arrived before it waits, so a large request at
// the head is not overtaken for ever by a stream of small ones: once it is at the head, every
// release brings it closer, and no newcomer takes what it needs. A release reserves the slots it
// frees for the waiters at the head, in order, as many as they serve (stopping at the first that
// does not fit), and wakes exactly those. A waiter that gives up (its ctx ends) leaves the queue at
// once and passes on what was reserved for it, so a cancelled large request at the head does not
// block the smaller ones behind it. A request for more than C is an error at once, not a hang.
//
// # Guarantees
//
//   - At most C permits are held at any instant across every process that uses the same nodes and
//     name (see above for why), and every holder's validity is its lease's.
//   - Acquire takes n permits or none; a failed acquire says why with package lease's sentinels
//     (busy, unavailable, misconfigured, or ctx's error with the last round's outcome: see
//     lease.ErrNotAcquired), and leaves no slot held and nothing queued on any node (a node that
//     cannot be reached gets the cleanup when it answers again).
//   - A Release may pass its permits to a goroutine of the same process that waits for as many,
//     with no request to the servers (see package lease, Local handoff).
//   - Release gives back any n held, the latest acquisitions first, splitting one if needed;
//     releasing more than held is [ErrReleaseTooMany], and nothing is released.
//   - Errors are typed and name this package; nothing panics but the sync.Locker adapter on
//     errors that cannot heal (see [Semaphore.Locker]).
//
// # When not to use it
//
// For a bound on goroutines of one process, use golang.org/x/sync/semaphore. For rate limits
// (requests per second rather than requests at once), use a rate limiter.
package semaphore
