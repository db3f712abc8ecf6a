package lease

import "github.com/quorumsync/quorumsync/internal/engine"

// The sentinel errors of quorumsync's primitives and leases, matched with errors.Is. An error
// returned by a primitive names that package and the lock ("mutex: not acquired \"orders:42\":
// ..."), and matches these; a primitive's own misuse errors (mutex.ErrNotLocked, ...) and package
// fence's are apart.
//
// An acquire that fails has one of four outcomes, told apart with errors.Is on every primitive,
// blocking and try:
//   - busy ([ErrNotAcquired]): enough nodes answered "taken" that no quorum was possible;
//   - unavailable ([ErrUnavailable]): too few nodes answered for a quorum; the error carries
//     their [NodeError]s;
//   - misconfigured ([ErrMisconfigured]): so many nodes refused for a reason no retry can heal
//     that the others cannot make a quorum (a node that refuses counts as a failed vote until
//     then); a blocking acquire returns it at once;
//   - the caller's ctx ended: the error matches ctx's error, and also the outcome of the last
//     round — its own, or, for a goroutine still queued in its process, that of the goroutine
//     it waited behind — or [ErrNotAcquired] when no round had run.
var (
	// ErrNotAcquired reports that the name was busy: held, reserved for a waiter, or queued for
	// by others first, on so many nodes that no quorum was possible — or, for a goroutine that
	// waited in its own process, held by another goroutine there.
	ErrNotAcquired = engine.ErrNotAcquired
	// ErrUnavailable reports an acquire that too few nodes answered for a quorum: they are down,
	// hung (the per-node timeout ran out) or unreachable. The error carries the [NodeError]s.
	ErrUnavailable = engine.ErrUnavailable
	// ErrMisconfigured reports a refusal that no retry can heal, and says which node refused
	// what: a missing permission (NOPERM, a command the ACL does not allow), rejected credentials
	// (NOAUTH, WRONGPASS), a plain-text client at a TLS port, a CROSSSLOT refusal, a semaphore's
	// capacity that differs from the one in use. (Not a TLS client at a plain-text port: the
	// server does not answer the handshake, so the node times out as a hung one does, and its
	// [NodeError] matches [ErrNodeTimeout].) Blocking acquires return it at once; a sync.Locker panics
	// with it; NewQuorum returns it for a node that answers.
	ErrMisconfigured = engine.ErrMisconfigured
	// ErrNotHeld reports that a release or renewal found the lease gone (expired, or taken by
	// another holder after it expired) on too many nodes.
	ErrNotHeld = engine.ErrNotHeld
	// ErrLost is matched by [Lease.Err] and by a release once the lease was lost: it expired
	// before it could be renewed, it was found gone on the servers, it reached its max hold time,
	// or its quorum was closed. The error also carries the cause.
	ErrLost = engine.ErrLost
	// ErrNotReleased reports a release that too few nodes answered: what is left on the others
	// expires within the TTL (and nodes that come back get the release then). The error carries
	// the node errors.
	ErrNotReleased = engine.ErrNotReleased
	// ErrReleased is returned by a second [Lease.Release], and by [Lease.Err] after a release.
	ErrReleased = engine.ErrReleased
	// ErrClosed reports a call on a closed [Quorum].
	ErrClosed = engine.ErrClosed
	// ErrInvalidArgument reports bad input; the error names the argument.
	ErrInvalidArgument = engine.ErrInvalidArgument
	// ErrNodeTimeout is matched by the [NodeError] of a node that did not answer within the
	// per-node timeout. It does not match context.DeadlineExceeded: the caller's deadline did not
	// pass.
	ErrNodeTimeout = engine.ErrNodeTimeout
)
