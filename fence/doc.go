// Package fence protects a resource of your own in Redis with the fencing tokens of quorumsync's
// locks, so that a holder paused past its lease (a GC pause, a stopped VM) cannot write after the
// holder that took the lock from it.
//
// A lease only promises exclusion while it is valid, and a paused process cannot look at its
// lease: it can wake and write after its lease ran out and another holder got the lock. A fencing
// token closes that gap where the resource is: take the lock WithFencing (mutex, rwmutex writers,
// semaphore slots), and write with the token (lease.Lease.Fence). Tokens strictly increase across
// holders, in the order they acquired the lock, even over a quorum of N nodes. The resource
// remembers the highest token that wrote it, behind a fence key of its own, and refuses a write
// with a lower one ([ErrStale]): the late writer's lock is gone, and its write would overwrite a
// later holder's.
//
//	m := mutex.New(q, "orders:42", mutex.WithFencing())
//	l, err := m.Obtain(ctx)
//	if err != nil { ... }
//	defer l.Release(ctx)
//	token, _ := l.Fence()
//	err = fence.Set(ctx, rdb, "{orders:42}:fence", token, "{orders:42}:state", "paid", 0)
//	if errors.Is(err, fence.ErrStale) { ... } // the lock was lost; another holder has written
//
// [Set] is a fenced SET; [NewScript] puts a script of yours behind the same check, atomically
// (the check and your writes are one script).
//
// # What it guarantees
//
//   - A write with a token lower than the highest that has written the resource is refused and
//     writes nothing; the check and the write are one script, so no write can slip between them.
//   - A write with the same token as the highest passes: one holder may write many times.
//
// # Caveats
//
//   - It protects only writes that go through it, to the Redis server that holds the fence key.
//     A resource elsewhere (a database, a file, a remote API) needs the same check there.
//   - The fence key lives on the resource's server: it must survive restarts as the data does.
//   - On Redis Cluster, the fence key and the data keys must share a hash tag.
package fence
