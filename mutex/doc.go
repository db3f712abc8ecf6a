// Package mutex provides a mutual exclusion lock shared by many processes through Redis, shaped
// like [sync.Mutex]: Lock, TryLock and Unlock take a ctx and return an error because every call
// crosses a network. [Mutex.Do] runs a function under the lock and cancels its ctx if the lock is
// lost, [Mutex.TryDo] runs it only if the lock is free, [Mutex.Obtain] returns the lease that holds
// the lock, and [Mutex.Locker] adapts a Mutex to [sync.Locker].
//
// A Mutex borrows a [lease.Quorum], which holds the connections and the watchdog that renews every
// held lock at TTL/3:
//
//	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(10*time.Second))
//	...
//	m := mutex.New(q, "orders:42")
//	if err := m.Lock(ctx); err != nil { ... }
//	defer m.Unlock(ctx)
//
// # Guarantees
//
//   - At most one holder at a time across every process that uses the same nodes and name, while
//     the caveats of package lease do not apply. The holder's lease is valid until
//     [lease.Lease.Until]; the watchdog keeps moving that forward while it is held.
//   - Within one process, goroutines queue FIFO for a name (sharing the queue across every Mutex
//     of the same Quorum and name), and only the head of the queue talks to Redis; an Unlock may
//     pass the lock to the next of them with no request (package lease, Local handoff). Across
//     processes, waiters are served in the order they queued on the servers.
//   - Uncontended, a Lock is one SET NX PX per node and an Unlock one short script.
//   - A failed acquire says why, with errors.Is: lease.ErrNotAcquired (held elsewhere),
//     lease.ErrUnavailable (too few nodes answered), lease.ErrMisconfigured (a refusal no retry
//     heals, returned at once), or ctx's error with the last round's outcome; no key is left on any
//     node (a node that cannot be reached gets the cleanup when it answers again).
//   - If the lease is lost while held, its Done closes no later than its Until, [Mutex.Do]'s ctx
//     is cancelled with a cause matching lease.ErrLost, and Unlock reports lease.ErrLost. Outside
//     Do, the loss also goes to the error handler ([WithErrorHandler]); a loss that Do returns
//     does not.
//   - [Mutex.Do] tells its caller whether fn failed (fn's error), never ran (the lock's error),
//     lost the lock on the way (lease.ErrLost) or succeeded with an unlock that reached too few
//     nodes (lease.ErrNotReleased).
//   - Errors name this package and the mutex ("mutex: not acquired \"orders:42\": ..."), say what
//     happened once, on one line, and match package lease's sentinels.
//   - Misuse returns typed errors, never panics: [ErrNotLocked] for an Unlock of an unlocked
//     Mutex, lease.ErrInvalidArgument for a nil Quorum, an empty name, a nil ctx or function, or a
//     TTL ([WithTTL]) the quorum cannot serve. The one exception is the [sync.Locker] adapter,
//     which has no error to return: see [Mutex.Locker].
//
// # Several names at once
//
// [NewMulti] locks a set of names all or nothing, for work that spans them (moving money between
// two accounts, rebuilding an index over two tenants): [Multi.Lock] returns holding every name or
// none, and a failed or cancelled Lock leaves none of them held, on any node. Each name is locked
// as a Mutex of that name would lock it, so Multis and Mutexes of overlapping names exclude each
// other; on Redis Cluster the names may fall in different slots. Its [MultiLease] is one lease
// for the group: Done closes when any name is lost, and [Multi.Do]'s ctx ends then. With
// [WithFencing] each name has its own fencing token ([MultiLease.Fences]).
//
// Why it cannot deadlock, whatever orders callers list their names in: a Multi takes its names in
// one canonical order (sorted). It first asks for every name at once without waiting (one round
// trip when none is taken, two with fencing over several nodes); if some are taken, it keeps the ones before the first taken name,
// gives back the later ones, and then waits for the rest one at a time, in order. So a Multi only
// ever waits for a name while holding names that sort before it, and a Mutex waits while holding
// nothing. Every "holds x, waits for y" in the wait-for graph — across processes, and at the local
// queues within one — goes from a name to a later one, so the graph has no cycle. This holds as
// long as no caller waits for a lock while it holds another outside one Multi (a Mutex held while
// another is locked nests locks, and two such callers can deadlock as with [sync.Mutex]): take
// every name a piece of work needs in one Multi. A Multi names at most [MaxNames] names.
//
// # Caveats
//
// Everything in package lease's caveats applies: a node restarted without persistence, a clock
// jump on a Redis host, an eviction policy that drops lock keys, and a holder paused past its
// validity can each let two holders in at once. The tests in this package show each happening.
// When the resource can check a number, protect it with one: [WithFencing] gives every holder a
// token larger than any before it, and package fence checks it in Redis.
//
// # When not to use it
//
// For exclusion among goroutines of one process, use [sync.Mutex]: it is a thousand times faster.
// For work that must happen exactly once, a lock is not enough: make the work idempotent.
package mutex
