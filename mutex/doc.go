// Package mutex provides a mutual exclusion lock shared by many processes through Redis, shaped
// like [sync.Mutex]: Lock, TryLock and Unlock take a ctx and return an error because every call
// crosses a network. [Mutex.Do] runs a function under the lock and cancels its ctx if the lock is
// lost; [Mutex.Locker] adapts a Mutex to [sync.Locker].
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
//     [lease.Lease.Until]; the watchdog keeps moving that forward while the Mutex is locked.
//   - Within one process, goroutines queue FIFO for a name (sharing the queue across every Mutex
//     of the same Quorum and name), and only the head of the queue talks to Redis.
//   - A Lock whose ctx ends returns an error matching both [ErrNotAcquired] and ctx's error, and
//     leaves no key on any node.
//   - If the lease is lost while held, [Mutex.Lease]'s Done closes no later than its Until,
//     [Mutex.Do]'s ctx is cancelled with a cause matching [ErrLost], the error handler is told, and
//     Unlock reports [ErrLost].
//   - Misuse returns typed errors, never panics: [ErrNotLocked] for an Unlock of an unlocked
//     Mutex, [ErrInvalidArgument] for a nil Quorum, an empty name or a nil function.
//
// # Caveats
//
// Everything in package lease's caveats applies: a node restarted without persistence, a clock
// jump on a Redis host, an eviction policy that drops lock keys, and a holder paused past its
// validity can each let two holders in at once. The tests in this package show each happening.
// When the resource can check a number, protect it with one.
//
// # When not to use it
//
// For exclusion among goroutines of one process, use [sync.Mutex]: it is a thousand times faster.
// For work that must happen exactly once, a lock is not enough: make the work idempotent.
package mutex
