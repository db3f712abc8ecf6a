package lease

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Quorum is a set of N independent Redis masters that grant leases by majority (N/2+1). N = 1 is
// the common case; N = 3 or 5 tolerates the loss of 1 or 2 nodes. Each node is a go-redis client:
// a plain client, a Sentinel failover client or a Cluster client each count as one node.
//
// Create a Quorum with [NewQuorum] and share it: packages mutex, rwmutex, semaphore and election
// take one. It holds the watchdog goroutine that renews every lease it granted, one pub/sub
// connection per node for wake-ups (and an election's announcements), and the local gates where
// the process's goroutines queue for a name. Its methods are safe for concurrent use. [Quorum.Close] ends blocked acquires, releases the leases
// still held and stops its goroutines; it does not close the clients given to NewQuorum, which
// stay the caller's (it closes those [Dial] made).
type Quorum engine.Quorum

// NewQuorum returns a quorum over nodes. It checks the arguments (no nodes, a nil node, the same
// node twice, a redis.Ring, a client whose socket I/O ignores context deadlines, bad options) and
// returns an error matching [ErrInvalidArgument] that names the bad one. It then asks every node,
// in parallel and bounded by ctx, for its identity, set-up and permissions, and loads the
// scripts, one round trip per node:
//   - a node listed twice under two addresses (same server run_id) is refused
//     ([ErrInvalidArgument]);
//   - a node that answers but refuses the credentials (NOAUTH, WRONGPASS), a command or key the
//     locks need (NOPERM: see the README for the minimal ACL), or speaks TLS to a plain-text client,
//     makes NewQuorum fail with [ErrMisconfigured], saying which node refused what;
//   - a node whose maxmemory-policy can evict lock keys, that has no persistence, or that has
//     replicas a failover could promote, is logged as a warning; a check the node's ACL does not
//     allow (INFO, CONFIG GET) is logged as skipped.
//
// A node that does not answer is not an error here — a quorum exists to tolerate that — but is
// logged with the reason (a refused connection is reported as refused).
//
// The quorum reuses the context and the argument slice of a command it sends once the command has
// returned: a hook on the clients (redis.Hook) must not keep either past its own return.
func NewQuorum(ctx context.Context, nodes []redis.UniversalClient, opts ...Option) (*Quorum, error) {
	q, err := engine.NewQuorum(ctx, nodes, opts...)
	return (*Quorum)(q), err
}

// Close ends every blocked acquire (it returns an error matching [ErrClosed]) and waits until
// they have left the servers' queues, then releases every lease still held, in parallel (their
// Err then matches [ErrLost] and [ErrClosed]), and stops the quorum's goroutines — the watchdog,
// the pub/sub connections, the probes of suspect nodes, the notifier that runs loss handlers — and
// waits for them. The cleanups owed to nodes that did not answer (a leave, an undo) get one last
// try, each within the node timeout and ctx; a node still down then never gets them, and what
// they would have removed lapses by itself (a waiter's place within its TTL). Later calls return
// [ErrClosed]. It closes the clients only if [Dial] made them.
//
// If ctx ends first, Close stops waiting for acquires to return and for releases to be answered,
// still stops and waits for its own goroutines, and returns an error matching ctx's; what was not
// released expires on the servers within its TTL. The one goroutine it does not wait for past ctx
// is the notifier while a loss handler blocks: it runs the handlers still queued and exits once
// they return. A loss handler may call Close: Close then does not wait for the handler that
// called it. A pub/sub connection closes at once unless it is reconnecting: go-redis finishes the
// dial and the handshake first, so a node that accepts connections but does not answer can hold
// Close past ctx for up to the client's DialTimeout and ReadTimeout (for as long as the node
// stays hung, with a client that has no read timeout).
func (q *Quorum) Close(ctx context.Context) error { return (*engine.Quorum)(q).Close(ctx) }
