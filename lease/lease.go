package lease

import (
	"context"
	"time"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Lease is a claim held on a majority of a [Quorum]'s nodes: the handle a primitive's Obtain
// returns (mutex.Mutex.Obtain, rwmutex.RWMutex.ObtainRead, semaphore.Semaphore.Obtain). It is
// valid until [Lease.Until], which the quorum's watchdog keeps moving forward by renewing the
// lease at TTL/3. If renewal fails for long enough, the lease is lost: [Lease.Done] closes no later
// than the last Until, and [Lease.Err] says why. A lost lease is never revived.
//
// A Lease is safe for concurrent use. Ownership is not tied to a goroutine: any goroutine may
// release it. Its methods are safe on a nil *Lease, which reads as a lease not held: Done is
// closed, Err matches [ErrNotHeld], Until is the zero time, and Release returns an error matching
// [ErrNotHeld].
type Lease engine.Lease

func (l *Lease) e() *engine.Lease { return (*engine.Lease)(l) }

// Name returns the name the lease holds.
func (l *Lease) Name() string { return l.e().Name() }

// Holder returns who holds the lease: its token, this process, and when the acquisition the
// servers granted began (for a lease passed between goroutines, its first holder's). The token
// is unique to the servers' grant but not ordered: a lease passed from goroutine to goroutine
// keeps it (see [WithHandoff]); use a fencing token to tell holders apart.
func (l *Lease) Holder() Holder {
	if l == nil {
		return Holder{}
	}
	return Holder(l.e().Holder())
}

// Units returns the slots a semaphore's lease holds, in increasing order (the order of
// [Lease.Fences]); nil for a mutex's or an rwmutex's lease.
func (l *Lease) Units() []int64 { return l.e().Units() }

// Fence returns the lease's fencing token: a number that strictly increases across the holders of
// the name in the order they acquired it, even over N nodes, for the resource to check (see
// package fence). It returns an error matching [ErrInvalidArgument] when the lease was acquired
// without fencing, and for a semaphore's lease, which has a token per slot ([Lease.Fences]).
func (l *Lease) Fence() (uint64, error) { return l.e().Fence() }

// Fences returns the fencing tokens of a semaphore's lease, one per slot in the order of
// [Lease.Units] (each slot's tokens increase across its holders); for a lease of one unit, its one
// token. It returns an error matching [ErrInvalidArgument] when the lease was acquired without
// fencing.
func (l *Lease) Fences() ([]uint64, error) { return l.e().Fences() }

// Valid reports whether the lease is valid now, by the monotonic clock: not ended (Err is nil)
// and Until not passed. Done and a ctx cancelled with the lease close on timers; a holder that
// wakes from a pause (GC, swap, a stopped VM) can find them still open for a few milliseconds
// after Until has passed, and Valid already false. It promises only what it says at the instant
// it reads the clock: a pause right after it can outlast the lease all the same, which is why a
// resource that must not be written by a holder that lost its lease checks a fencing token
// ([Lease.Fence]). It cannot see a loss on the servers that no renewal has reported yet (a node
// restarted without persistence, an eviction).
func (l *Lease) Valid() bool { return l.e().Valid() }

// Until returns the end of the lease's validity as last renewed, on the local monotonic clock.
// Past it, nothing guarantees exclusion.
func (l *Lease) Until() time.Time { return l.e().Until() }

// Done returns a channel that is closed when the lease ends: lost, released, or its quorum closed.
func (l *Lease) Done() <-chan struct{} { return l.e().Done() }

// Err returns nil while the lease is held. After [Lease.Release] it returns an error matching
// [ErrReleased]. After a loss it returns an error matching [ErrLost] whose cause says why: the
// lease expired before it could be renewed (watchdog.ErrExpired), was found gone on the servers
// ([ErrNotHeld]), reached its max hold time (watchdog.ErrMaxHold), or its quorum was closed
// ([ErrClosed]). The text names the package that acquired it ("mutex: lost ...").
func (l *Lease) Err() error { return l.e().Err() }

// Release stops renewing the lease, then gives it up on every node where it still holds the
// lease's token, and wakes the waiters it frees the name for, or passes it to a goroutine of this
// process that waits for it (see [WithHandoff]). It returns nil when the lease was held and is
// now released; otherwise:
//   - [ErrReleased]: Release was called before (or [ErrClosed]: the quorum was closed, which
//     released it);
//   - an error matching [ErrLost]: the lease had been lost before Release (what is left of it
//     is deleted all the same);
//   - an error matching [ErrNotHeld]: a majority no longer held the token, so the lease had
//     expired (a nil *Lease returns it too);
//   - an error matching [ErrNotReleased], with the node errors: too few nodes answered; what is
//     left expires within the TTL, and nodes that come back get the release then.
//
// Release does not honour ctx's cancellation, so that a cancelled ctx cannot leave a key behind;
// each node is still bounded by the per-node timeout. A nil ctx is refused ([ErrInvalidArgument])
// and leaves the lease as it was.
func (l *Lease) Release(ctx context.Context) error { return l.e().Release(ctx) }

// Holder says who holds (or waits for) a claim: the token of the acquisition, the process that
// made it, and when it began. The servers store the same in the value of the claim (a lock key,
// a queue member), so a tool can tell who holds a name.
type Holder struct {
	Token string    // 128 random bits from crypto/rand, hex-encoded, unique to the servers' grant
	Host  string    // os.Hostname of the process, with characters outside [A-Za-z0-9._-] replaced by '_'
	PID   int       // its process id
	Since time.Time // when the acquisition began (wall clock, millisecond precision)
	Label string    // the label the acquisition was made with (mutex.WithLabel, ...), or ""
}

// NodeError is the failure of one node in a call to all of them. The errors of several nodes are
// joined; use errors.As to get at each. Its fields: Index, the position of the node in the slice
// given to [NewQuorum]; Addr, its address when known; Err, what the node or its connection said.
// A node that did not answer within the per-node timeout matches [ErrNodeTimeout], never
// context.DeadlineExceeded (the caller's deadline did not pass).
type NodeError = engine.NodeError
