// Package rwmutex provides a reader-writer lock shared by many processes through Redis, over a
// quorum of independent masters, shaped like [sync.RWMutex]: any number of readers or one writer.
// RLock, TryRLock, RUnlock, Lock, TryLock and Unlock take a ctx and return an error because every
// call crosses a network; [RWMutex.RDo] and [RWMutex.Do] run a function under the lock and cancel
// its ctx if the lock is lost, [RWMutex.TryRDo] and [RWMutex.TryDo] only if the lock is free;
// [RWMutex.ObtainRead] and [RWMutex.Obtain] return the lease of the lock taken; [RWMutex.RLocker]
// and [RWMutex.Locker] adapt it to [sync.Locker].
//
//	rw := rwmutex.New(q, "config")
//	if err := rw.RLock(ctx); err != nil { ... }
//	defer rw.RUnlock(ctx)
//
// # How it works
//
// An RWMutex is two kinds of claim that share their keys: readers and
// the writer. Per node there is a writer key (the writer's token, with its TTL), the readers (a
// sorted set of tokens, each scored by when it expires by the server's own clock, TIME), and the
// waiting writers (a sorted set by arrival: the writer-intent marker), beside the engine's queue of
// waiters. All of a name's keys share its hash tag. A reader is granted on a node when no writer
// holds or is reserved the writer key there and no writer queued before it; a writer when the
// writer key is free, no reader is left, and no waiter queued before it. Each is held when a
// majority of the nodes granted it, for TTL − elapsed − drift, and the watchdog renews readers and
// writers alike at TTL/3, in the same batches as every other lease.
//
// # Guarantees
//
//   - A writer excludes every reader and every other writer, across every process that uses the
//     same nodes and name; readers exclude only writers. Safety over the quorum: readers and
//     writers both need a majority, any two majorities share a node, and on that node one script
//     run decides both — it grants a writer only with no live reader, and a reader only with no
//     writer — so a valid writer and a valid reader can never both hold. The caveats of package
//     lease apply (a node restarted without persistence, clock jumps, eviction, a holder paused past
//     its validity).
//   - Writers are not starved. Once a writer waits on the servers, readers that arrive after it
//     queue behind it, so it gets in as soon as the readers already in are done: within one reader
//     hold time (and the TTL for a reader that died). Locally too: the process admits its
//     goroutines in arrival order, and a waiting writer holds up the readers that come after it.
//   - Readers are not starved either: waiters are served in arrival order, and a release wakes
//     whoever it served — one writer, or every reader at the head of the queue at once (their
//     tokens in one message).
//   - A dead reader does not keep the lock: its entry expires by the server's clock within its TTL,
//     whether its process was killed or paused.
//   - A ctx that ends leaves nothing on any node (a node that cannot be reached gets the cleanup
//     when it answers again); a writer that gives up lets the readers behind it in at once.
//   - A failed acquire says why with package lease's sentinels: busy, unavailable, misconfigured,
//     or ctx's error with the last round's outcome (see lease.ErrNotAcquired). This package adds
//     [ErrNotRLocked] and [ErrNotLocked] for an unlock of the wrong kind or a double unlock, and
//     [ErrUpgrade]. Nothing panics but the sync.Locker adapters on errors that cannot heal (see
//     [RWMutex.Locker]).
//   - A write lock may be passed to a waiting goroutine of the same process with no request
//     (package lease, Local handoff); a read lock has no need to be.
//
// # Readers of one process
//
// Readers of one process do not serialize: the local gate admits them together. Each read lock is
// a lease of its own on the servers, so N readers of a process cost N acquire scripts (one round
// trip per node each), N releases, and N entries in the watchdog's renewal pipelines — one batch
// per TTL/3 for all of them, not a round trip each. That is safe because each reader is checked
// against the writer key on a majority on its own, exactly like a reader of another process; a
// shared per-process reader would save round trips but could not see a writer that waits on the
// servers without asking them, which costs the same round trip.
//
// # Upgrades and recursion
//
// A read lock cannot be upgraded to a write lock: the writer would wait for every reader, itself
// included. Inside [RWMutex.RDo], a Lock, TryLock or Do with the ctx RDo gave returns [ErrUpgrade]
// at once. Outside RDo the RWMutex cannot tell which goroutine holds which read lock (ownership is
// not tied to a goroutine), so Lock simply waits, until its ctx ends. As with sync.RWMutex, a
// goroutine holding a read lock must not RLock again while a writer may be waiting: the writer
// waits for the first read lock, and the second waits for the writer.
//
// # When not to use it
//
// When readers are few and short, a [github.com/quorumsync/quorumsync/mutex.Mutex] costs the same
// and is simpler. For readers and
// writers of one process, use [sync.RWMutex].
package rwmutex
