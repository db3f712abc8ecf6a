// Package lease is what an application configures and holds when it uses quorumsync: the
// [Quorum] of Redis masters that grants time-bounded claims on names by majority (Redlock), the
// [Lease] a holder gets, which the quorum's watchdog renews and which tells its holder when it is
// lost, and the errors every package of the library returns. Packages mutex, rwmutex, semaphore
// and election take a Quorum and return Leases; this page is the spec of what they all promise.
//
//	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(10*time.Second))
//	...
//	defer q.Close(ctx)
//	l, err := mutex.New(q, "orders:42").Obtain(ctx)
//
// # What a claim is
//
// A claim is a set of units on a name, each granted by a majority of the nodes: a mutex or an
// rwmutex writer is one exclusive unit, an rwmutex reader a shared one, and a semaphore permit of
// weight n is n of its slots, taken all or none in one round. The quorum owns the nodes and their
// health, the parallel requests (always joined before a call returns), the vote count, the
// validity rule, the undo of a failed round, renewal, loss, the servers' waiter queue and the
// wake-ups, and the local admission of the process's goroutines; what a claim means on the servers
// is each primitive's (its Lua scripts).
//
// # How a claim is granted
//
// An acquire takes a start time from the monotonic clock, sends the claim's acquire request to all
// N nodes in parallel (each under the per-node timeout, [WithNodeTimeout]), and holds the claim iff
// at least N/2+1 nodes granted it (every unit of it) and validity = TTL − elapsed − drift is still
// at least TTL/4, with drift = TTL/100 + 2ms. The claim is valid until start + TTL − drift: every
// node set it after start, so it expires on that node no earlier than start + TTL, by that node's
// clock. A round that left less (the process stalled, or a node call overran its timeout) is
// undone like a failed one: the caller never gets a lease that is about to expire, which the
// watchdog could not renew in time.
// After a failed round, the engine undoes it on every node that granted or did not answer; a node
// that answered "no" set nothing.
//
// # Waiting
//
// The first attempt is the claim's cheapest request: for a mutex a plain SET NX PX, and a release
// is one short script. A blocking acquire that finds the name taken does not poll.
// Goroutines of one process queue FIFO on a local gate (shared by every primitive of the same
// quorum, kind and name), and only those admitted talk to Redis; an admitted waiter joins the name's queue on
// the servers — a sorted set ordered by arrival — and sleeps. A release that frees what waiters
// wait for hands it to them in queue order and publishes their tokens on the name's channel, so
// exactly the waiters it served wake, newcomers' requests fail meanwhile, and processes are served
// in the order they arrived. A holder nobody queued behind releases with a plain delete, as a lock
// without a queue does: the first waiter to queue marks the holder's value ("q:" before its token),
// and only a marked value makes the release look at the queue. A holder that took the name while
// it was free with waiters queued (a plain SET NX after a reservation ran out unused, or after a
// holder expired) is unmarked until a waiter's next attempt marks it; if it releases before that,
// its release wakes nobody, and the waiters come back on their timers (at most TTL/2).
//
// What a release hands over is, with N = 1, the lock itself (a direct grant, below), for a mutex
// and for a waiter that is not held back by the restart guard ([WithRestartGuard]); otherwise a
// reservation ("r:" and the waiter's token, expiring with that waiter's liveness) that only that
// waiter can take, with one request of its own. A waiting mutex acquisition thus costs three
// requests with N = 1 (the SET NX, the queue script that enqueues it, and the release) or two when
// it waited at the local gate first (it skips the SET NX), one more with a reservation, and none
// when the lease was passed to it (see Local handoff). The process keeps one pub/sub connection
// per node for all names: a channel is subscribed when a waiter first needs it and unsubscribed
// half a second after its last waiter leaves.
//
// # Direct grant
//
// With N = 1 the release that serves a waiter makes it the holder (it sets the lock key to the
// waiter's token until the waiter's liveness ends, and increments the fencing counter for a fenced
// waiter) and publishes "<token>#<k>[#<fencing token>]", where k numbers the waiter's request that
// queued it (each request that may queue it stores its number in the queue's liveness hash, in the
// same write as the liveness: its execution + TTL). On that wake-up the waiter holds
// with no request, valid until s_k + TTL − drift, where s_k is when it sent request k, read from the
// monotonic clock before sending. Why that bound is safe: the release read k from the queue, where
// only an execution of request k put it, and that execution followed s_k; so the grant began after
// s_k, and the key, set to expire with the liveness that execution wrote, expires no earlier than
// s_k + TTL by the server's clock — the argument of an ordinary round, with request k as the
// round. The number ties the wake-up to the request: the waiter accepts a grant only for its
// latest request, and not at all once that request's round failed or was undone (a round with a
// node error, or one that granted too late, undoes what the node granted or may have, and the
// undo releases a direct grant too). A stale wake-up (for an earlier request,
// or arriving after the waiter's later request was answered "not yet") is ignored; when the
// waiter's later request ran after the grant, that request found the lock its own and renewed it,
// which is an ordinary grant. When less than TTL/4 of the bound is left as the wake-up is read
// (the waiter was paused, or the message was slow), the waiter asks the server instead: a grant
// still on the server is found to be its own and renewed, one that ran out is not, and the waiter
// queues again. A lost wake-up costs what a lost reservation message does: the waiter's timer.
// A waiter that gives up after it was granted gives the grant up with its leave, like a
// reservation.
//
// With N > 1 each node serves its own first waiter and one wake-up per node carries its grant;
// nothing makes the nodes' heads agree (a waiter may be queued on some nodes only), a waiter that
// heard from a minority would hold there without knowing whether a majority followed, and the
// undo of a partial grant would need a request anyway. So with N > 1 a release reserves, and the
// waiter takes the reservation with one round, which also runs the restart guard's uptime check:
// a direct grant reaches the waiter with no reply of the node's to check, which is why the guard
// keeps the reservation too.
//
// A round that too few nodes granted (a split vote: the nodes served different waiters, or a
// release reached some of them only) is undone, but a waiter that goes on waiting keeps its place:
// where it gives a grant back it is put back in line at its arrival, and what it gave back is
// offered to those who arrived before it, then to it, and only then to a waiter that arrived after
// it. Handed to that one first, it would be granted there and refused where the first is served,
// and the two could trade places between
// the nodes round after round. Every node orders its queue by the same arrivals, so the earliest
// waiter ends up served by every node that answers. A waiter that fewer than a quorum of nodes
// answered gives its grants back to the next in line, as a release does, so as not to hold the
// others up while it cannot win; so do units a quorum granted but not the same ones (permits), so
// that the next round can ask for those most nodes granted.
//
// Messages can be missed and expiry publishes nothing, so every sleep is bounded: by the remaining
// TTL of the holder or of the reservation (at most TTL/2), with jitter. A waiter also re-checks
// when its subscription is confirmed and whenever the pub/sub connection fails or reconnects. When
// nodes fail, its subscriptions could not be made, or the name is held by a key with no TTL (not
// set by this library), it backs off instead (exponentially, from 2ms to 100ms), still at most TTL/2
// between tries.
// A waiter that gives up (ctx) leaves the queue at once and passes on a reservation made for it;
// one whose process crashed holds up the name for at most one TTL, the same as a crashed holder.
// A try (TryLock, TryRLock, TryAcquire) is the first request alone: it never jumps the queue,
// except in the moment after a reservation ran out unused.
//
// # Local handoff
//
// This is the one statement of the rule; the primitives' docs and [WithHandoff] link here. A
// release may pass its claim straight to the goroutine of the same process that waits first for
// the name at the local gate, with no request to the servers: the claim stays as it is on the
// nodes, renewed by the same watchdog entry, under a new [Lease] handle with the same token (the
// old one reads as released). Goroutines of one process thus take turns at the speed of a local
// mutex. It is bounded so that a busy process cannot keep a name from the others: only within the
// handoff budget after the servers' grant ([WithHandoff], 1ms by default), only with at least half
// the TTL of validity left, and only to a waiter that asks for the same kind and TTL; after that
// the release goes to the servers, which serve processes in the order they queued, so a waiting
// process waits about the budget plus one critical section per process ahead of it.
//
// It applies to a mutex, an rwmutex writer, and semaphore permits passed to a goroutine that asks
// for as many permits of the same semaphore (it takes over the same slots, token and renewal; one
// that asks for another weight waits for the servers). A fenced claim is never passed: the next
// holder needs a token larger than its predecessor's, and a passed claim keeps its token. Read
// locks are never passed, and need not be: readers do not wait for each other, and a writer's
// lease is not a reader's.
//
// # Renewal and loss
//
// One watchdog goroutine per quorum renews every claim it granted, whatever its kind or TTL, at a
// third of its TTL. Renewing early is safe, so when a renewal falls due every claim due within
// half its renewal interval joins it: claims acquired at any times settle into about one batch per
// TTL/3, sent as one pipeline per node, split into pipelines of at most 2,000 renewals (two of them
// in flight at once) so that one per-node timeout cannot fail all of it. Holding 10,000 leases
// costs about 5 round trips per node per TTL/3, 100,000 about 50 (bench/scale measures it). A node
// renews a few hundred thousand leases a second at most (each renewal is a script run): measured
// on 2 cores, 100,000 leases took up to 2 s of every TTL/3 tick, so a TTL of 3 s is about the
// shortest that holds them there; give many leases a TTL well above that.
//
// A claim that is not renewed by [Lease.Until] is lost: [Lease.Done] closes at Until, on the
// watchdog's loss clock (a goroutine with a timer of its own), with [Lease.Err] already saying why. What a loss sets off beyond that — the tracing
// spans, the primitives' error handlers — runs afterwards on a goroutine of
// the quorum's (the notifier), so a slow handler or span exporter delays neither a Done nor another
// claim's renewal, and a handler may call [Quorum.Close]. With [WithMaxHold], renewals never
// extend a claim past acquisition + the cap: the last one asks only for the time left, so the claim
// ends on the servers when its Until does.
//
// # Hung and unreachable nodes
//
// A node whose call runs out of the per-node timeout is suspect: calls skip it (a failed vote, no
// I/O) while a background probe pings it, with pauses from 10ms growing to a tenth of the quorum's
// TTL (at most 500ms), until it answers. A node that hangs therefore costs the whole timeout once,
// on the first call that meets it, not on every call; and a node that answers again is used again
// within a tenth of the TTL plus one node timeout. (Every call waits for every node before it
// returns, and go-redis interrupts socket reads only at deadlines, not on cancellation; a shorter
// timeout would not help either, since after a timeout go-redis drops the connection and dials
// again.) A cleanup — an undo, a release,
// a queue leave — that a node cannot get now, because it is suspect or its call failed, is owed to
// it and sent once it answers a ping: the request it timed out on may still execute when it wakes,
// and the cleanup comes after that, so nothing a failed or cancelled call wrote outlives it by
// more than the time the node takes to come back.
//
// # Guarantees
//
//   - Exclusion: while a claim is valid ([Lease.Until] not passed and [Lease.Done] not closed), no
//     other claim the kind says excludes it is valid on the same name from nodes that share a
//     majority with it — as long as the caveats below do not apply.
//   - Loss is visible: if renewal fails, Done closes no later than Until, on a timer independent of
//     any network call and of any handler (the watchdog's loss clock); [Lease.Err] says why; a late reply never revives a lost
//     claim.
//   - Nothing left behind: a failed or cancelled acquire undoes what it may have set on every node
//     that granted it or did not answer, and leaves the queue; a release deletes only what holds
//     the claim's token. Nodes that cannot be reached get the cleanup when they answer again.
//   - Every goroutine a call starts is joined before it returns; the watchdog, the probes, the
//     pub/sub receivers and the notifier are joined by [Quorum.Close].
//   - Tokens are 128 random bits from crypto/rand, one per grant by the servers (a lease passed
//     between goroutines keeps its token), followed in the value the servers store by the
//     holder's host, pid and start time ([Holder]); every script checks the token before it
//     changes anything.
//   - Keys of one name share a hash tag, so the scripts work on Redis Cluster. Any non-empty name
//     works: one that would break the tag (a leading '}') is escaped.
//   - Errors name the package the caller called and the lock, say what happened once, on one line,
//     and match this package's sentinels; an acquire's four outcomes — busy, unavailable,
//     misconfigured, the caller's ctx — are told apart with errors.Is (see [ErrNotAcquired]). A
//     per-node timeout matches [ErrNodeTimeout], not context.DeadlineExceeded.
//
// # Caveats (what breaks exclusion; each is demonstrated by a test of package mutex or lease)
//
//   - A node restarted without persistence (AOF with appendfsync always) before the longest TTL
//     has passed forgets the keys it held: another client can then win a majority that includes
//     it. [WithRestartGuard] closes this gap; its doc says what it needs from the server.
//   - Clocks. Validity is counted on the client's monotonic clock; keys expire by each server's
//     wall clock. The drift allowance (TTL/100 + 2ms) covers a server clock that runs up to 1%
//     fast against the client's over a lease, plus 2ms of timer granularity (the chaos suite runs
//     every node 0.9% fast and finds no violation). A forward step of a Redis host's wall clock
//     (an NTP step, date(1)) by more than what is left of that allowance, or a clock more than 1%
//     fast, expires keys early: the node then grants a second holder while the first is still
//     valid by its own clock (shown in package mutex's tests, with a real step of the server's
//     clock). A backward step only delays expiry: a dead holder's name stays taken longer.
//     Fencing tokens survive both a step and an eviction (below): a name's fencing counter has no
//     TTL, so it neither expires nor is evicted by a volatile-* policy, and the second holder's
//     token is above the first's; a resource that checks tokens refuses the first's late writes
//     (the chaos suite's forgetful-nodes-fenced scenario and its directed tests show both).
//   - A maxmemory-policy other than noeviction can drop lock keys when memory is full (volatile-*
//     policies too: they evict keys that have a TTL, and lock keys have one). NewQuorum logs a
//     warning for each such node. With noeviction a full node drops nothing: held leases of every
//     primitive are kept, renewed and released, a release handing over to a waiter too (Redis
//     refuses a script's first write that may grow memory, not its later ones, and those scripts
//     write first with a command that frees); an acquire's first request is refused (an error
//     matching ErrUnavailable that says the node is out of memory), and a blocking acquire's later
//     rounds may still take a free name (their script begins with a delete).
//   - A node with replicas that a failover can promote (Sentinel, Cluster): replication is
//     asynchronous, so a promoted replica may not have a claim's write (a grant, a renewal), and
//     grants it to a second holder while the first still holds it. NewQuorum warns about such
//     nodes. Use independent masters without failover as the quorum's nodes, or
//     [WithReplicaAck], which counts a node's grants and renewals only once WAIT confirms its
//     replicas have them (its doc says what WAIT does and does not promise).
//   - A holder paused longer than its validity (GC, swap, a stopped VM) may still act after its
//     lease is gone. Done closes on time, but a paused process cannot look at it. Protect the
//     resource itself, for example with fencing tokens checked by the resource.
//   - (Availability, not safety.) A claim lives on the nodes that granted it. If enough of those
//     fail that they are no longer a majority, renewals fail and the claim is lost, even while a
//     different majority is up: a claim survives the failure of any minority that was down when it
//     was granted, or of any one minority during its life, not of minorities that change under it.
//
// # Operating it
//
// [Dial] makes a quorum from URLs. [Quorum.Inspect] shows who holds a name and who waits, on
// every node; [Quorum.List] the names in use; [Quorum.Break] force-releases a name;
// [Quorum.Health] each node's set-up. The command quorumsync (cmd/quorumsync) does the same from
// a shell, and runs commands under a lock. A break is an administrator's act against exclusion:
// the broken holder learns it at its next renewal (within TTL/3 and a round trip) and may act as
// the holder until then.
//
// # When not to use it
//
// When a single Redis (N = 1) is acceptable to lose — most applications — the quorum adds nothing
// but is also free. When you need exclusion that survives arbitrary pauses without help from the
// resource, no lease-based lock gives that; use a consensus system and fencing.
//
// Node clients made by hand must be created with ContextTimeoutEnabled: true (NewQuorum checks),
// so that the per-node timeout reaches their sockets. With go-redis's defaults, a refused
// connection is retried inside the timeout (DialerRetries, MaxRetries) and so costs the whole
// timeout; NewQuorum's log says which options make it fail fast. [Dial] sets both.
package lease
