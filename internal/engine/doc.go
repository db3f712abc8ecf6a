// Package engine is the quorum engine under package lease and the primitives: the nodes and their
// health, the parallel fan-out, the vote tally, the validity rule, the undo of a failed round,
// renewal, loss, the servers' waiter queue and the local admission of a process's goroutines. A
// [Kind] says what a claim means on the servers; packages mutex, rwmutex and semaphore each define
// theirs (mutex uses [Exclusive]).
//
// What applications call is package lease, whose Quorum and Lease are this package's types under
// another name (a conversion, not a wrapper: no cost). Everything else here — kinds, calls,
// replies, requests, the per-package sentinels — is for the primitives of this module only, and
// package lease's doc is the spec of what the engine promises.
package engine
