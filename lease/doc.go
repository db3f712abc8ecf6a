// Package lease grants time-bounded exclusive leases on names from a quorum of independent Redis
// masters (Redlock), renews them from one watchdog goroutine, and tells each holder when its lease
// is lost. Packages mutex, rwmutex and semaphore are built on it; use it directly when you want the
// lease itself.
//
// # How a lease is granted
//
// [Quorum.Acquire] takes a start time from the monotonic clock, sends the acquire script to all N
// nodes in parallel (each under the per-node timeout, [WithNodeTimeout]), and holds the lease iff
// at least N/2+1 nodes said yes and validity = TTL − elapsed − drift is still positive, with drift
// = TTL/100 + 2ms. The lease is valid until start + TTL − drift: every node's key was set after
// start, so it expires on that node no earlier than start + TTL, by that node's clock.
//
// # Waiting
//
// An acquire starts with a plain SET NX PX on each node: without contention that is the whole
// cost, and a release is one short script. A blocking [Quorum.Acquire] that finds the name taken
// does not poll. Goroutines of one process that want the same name queue FIFO on a local gate,
// and only the first talks to Redis; it joins the name's queue of waiters on the servers — a
// sorted set ordered by arrival — and sleeps. A release that finds waiters does not delete the
// key: it reserves it for the first of them ("r:" and its token, expiring with that waiter's
// liveness) and publishes that token on the name's channel, so exactly one waiter wakes and takes
// the lock, newcomers' SET NX fails meanwhile, and processes are served in the order they
// arrived. A waiting acquisition costs four requests: the SET NX, the queue script that
// enqueues it, the one that takes the lock, and the release. The process keeps one pub/sub
// connection per node for all names: a channel is subscribed when a waiter first needs it and
// unsubscribed half a second after its last waiter leaves.
//
// Messages can be missed and expiry publishes nothing, so every sleep is bounded: by the
// remaining TTL of the holder or of the reservation (at most TTL/2), with jitter. A waiter also
// re-checks when its subscription is confirmed and whenever the pub/sub connection fails or
// reconnects. A waiter that gives up (ctx) leaves the queue at once and passes on a reservation
// made for it; one whose process crashed holds up the name for at most one TTL, the same as a
// crashed holder. [Quorum.TryAcquire] is the SET NX alone: it never jumps the queue, except in
// the moment after a reservation ran out unused.
//
// A local Unlock does not hand the lease to the next local goroutine; it releases, and the next
// goroutine acquires again. That costs a round trip more than a local handoff, but it keeps the
// servers' queue in charge, so a busy process cannot keep a name from the others: after an
// Unlock, a process that was waiting longer goes first.
//
// # Guarantees
//
//   - Exclusion: while a lease is valid ([Lease.Until] not passed and [Lease.Done] not closed), no
//     other holder has a valid lease on the same name from nodes that share a majority with it —
//     as long as the caveats below do not apply.
//   - Loss is visible: if renewal fails, Done closes no later than Until, on a timer independent of
//     any network call; [Lease.Err] says why; a late reply never revives a lost lease.
//   - Nothing left behind: a failed or cancelled acquire releases on every node that granted it or
//     did not answer; a release deletes the key only where it still holds the lease's token.
//   - Every goroutine a call starts is joined before it returns; the watchdog goroutine is joined
//     by [Quorum.Close].
//   - Tokens are 128 random bits from crypto/rand, one per acquisition; every script checks the
//     token before it changes anything.
//   - Keys of one name share a hash tag, so the scripts work on Redis Cluster.
//
// # Caveats (what breaks exclusion; each is demonstrated by a test of package mutex)
//
//   - A node restarted without persistence (AOF with appendfsync always) before the longest TTL
//     has passed forgets the keys it held: another client can then win a majority that includes
//     it.
//   - A wall-clock jump on a Redis host makes its keys expire early.
//   - A maxmemory-policy other than noeviction can drop lock keys when memory is full (volatile-*
//     policies too: they evict keys that have a TTL, and lock keys have one). NewQuorum logs a
//     warning for each such node.
//   - A holder paused longer than its validity (GC, swap, a stopped VM) may still act after its
//     lease is gone. Done closes on time, but a paused process cannot look at it. Protect the
//     resource itself, for example with fencing tokens checked by the resource.
//   - (Availability, not safety.) A lease lives on the nodes that granted it. If enough of those
//     fail that they are no longer a majority, renewals fail and the lease is lost, even while a
//     different majority is up: a lease survives the failure of any minority that was down when it
//     was granted, or of any one minority during its life, not of minorities that change under it.
//   - A node that hangs (answers nothing, rather than refusing connections) costs the whole
//     per-node timeout on the first call that meets it, because every call waits for every node
//     before it returns, and go-redis interrupts socket reads only at deadlines, not on
//     cancellation. After that the node is suspect and gets a tenth of the timeout (at least
//     5ms), and the whole timeout once every 16 calls, until it answers again.
//
// # When not to use it
//
// When a single Redis (N = 1) is acceptable to lose — most applications — the quorum adds nothing
// but is also free. When you need exclusion that survives arbitrary pauses without help from the
// resource, no lease-based lock gives that; use a consensus system and fencing.
//
// Node clients must be created with ContextTimeoutEnabled: true (NewQuorum checks), so that the
// per-node timeout reaches their sockets.
package lease
