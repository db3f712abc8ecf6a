// Package election elects one leader among many processes through Redis, with terms that
// strictly increase from leader to leader: the "one active instance" of a scheduler, a compactor
// or a consumer that must not run twice. It is shaped like etcd's concurrency.Election:
// [Election.Campaign] blocks until the caller leads, [Election.Resign] steps down,
// [Election.Leader] says who leads, and [Election.Observe] follows every new leader.
//
//	e := election.New(q, "scheduler")
//	if err := e.Campaign(ctx, "10.0.0.7:8080"); err != nil { ... }
//	defer e.Resign(ctx)
//	select {
//	case <-e.Done(): // lost the leadership: stop leading
//	case <-work(ctx, e.Term()):
//	}
//
// # Guarantees
//
//   - At most one leader at a time across every process that uses the same nodes and name, while
//     the caveats of package lease do not apply: the leadership is a fenced mutex of the name,
//     held on a majority of the nodes and renewed by the quorum's watchdog at TTL/3.
//   - Terms strictly increase from one leader to the next, even over N nodes and across restarts
//     of the candidates: a term is the fencing token of the leader's lease (see mutex.WithFencing),
//     so a resource that remembers the highest term it has seen refuses a deposed leader (package
//     fence does this in Redis).
//   - Candidates waiting in line are served in the order they queued on the servers, as a
//     mutex's waiters are (package lease, Waiting); after a leader dies, a candidate that starts
//     campaigning just as its lease expires can win before the queued ones retry.
//     [Election.Resign] hands over at once: its release hands the name to the next candidate in
//     line and wakes it (with one node it grants it outright; with more, the candidate still
//     makes its acquire and fencing rounds). A leader that dies is replaced once its lease
//     expires, within one TTL of its last renewal, and a waiting candidate notices within a few
//     milliseconds of the expiry (waiters re-check when the holder's TTL runs out); the tests
//     bound the whole replacement by the TTL plus a second.
//   - A leader learns it lost: [Election.Done] closes no later than its lease's Until, and
//     [Election.Err] says why. A lost leader is never revived; it may Campaign again.
//   - [Election.Campaign] announces the new leader, with its value and term, on every node over
//     pub/sub before it returns (an announcement no node took goes to the error handler).
//     [Election.Observe] delivers the leader at the time it was called, then every new leader in
//     the order of the terms. It does not poll while nothing changes: it reads the servers when
//     it (re)subscribes or a connection fails, and then every second until a read succeeds.
//   - [Election.Leader] reads the leader's term where its fencing round put it: the counter a
//     majority of the nodes that hold the leader agree on (a node can read more, or less: see
//     lease.Holding.Fence). When they do not agree yet, it says so (lease.ErrUnavailable) rather
//     than guess.
//   - Errors name this package and the election ("election: not acquired \"scheduler\": ...") and
//     match package lease's sentinels; misuse returns typed errors ([ErrCampaigning],
//     [ErrNotLeader], lease.ErrInvalidArgument for a nil quorum, an empty name, a nil ctx, a value
//     over 128 bytes), never panics.
//
// # Caveats
//
// Everything in package lease's caveats applies: a node restarted without persistence, a clock
// jump on a Redis host, an eviction policy that drops keys, and a leader paused past its validity
// can each let two leaders act at once. A leader paused (GC, a stopped VM) past its lease still
// believes it leads when it wakes, until it looks at Done or its lease's Valid: pass the term to
// whatever the leader writes, and have the resource refuse an older term. [Election.Leader]
// and [Election.Observe] report what a majority of the nodes hold: for a moment they can show a
// candidate whose grant is being undone (it never returned from Campaign), and Observe skips a
// leader that came and went while it was cut off from every node (the terms show the gap).
// Observe does not report that a leader ended with no successor yet; Leader does.
//
// The election of a name is the mutex of that name: a mutex.Mutex of the same name takes part in
// it, as a leader without a value. Give elections names of their own.
//
// # When not to use it
//
// When the work can run on every instance at once, idempotently, it needs no leader. When
// exactly-once matters, a leader is not enough: a deposed leader can still act until it notices,
// which is what terms are for.
package election
