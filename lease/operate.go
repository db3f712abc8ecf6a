package lease

import (
	"context"
	"time"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/rwkind"
	"github.com/quorumsync/quorumsync/internal/semkind"
)

// families are the kinds of claim a name can have, one per set of keys: a mutex's (and a plain
// lease's), an rwmutex's readers and writer, a semaphore's permits.
var families = []engine.Kind{engine.Exclusive, rwkind.Writers, semkind.Slots}

// State is what the servers hold for a name, under every primitive: the holders and the waiters
// any node has, with what is left of each on every node. See [Quorum.Inspect].
type State struct {
	Name    string
	Holders []Holding // oldest first
	Waiters []Holding // in queue order (the order they are served in)
	// NodeErrs says, per node in the order given to NewQuorum, why it did not answer: nil when it
	// did, else a *NodeError. A node that did not answer is missing from every TTL.
	NodeErrs []error
}

// Holding is one holder of a name, or one waiter for it. A holder that a majority of the nodes
// holds is the name's holder; one held on fewer (a grant that failed and is being undone, a node
// that restarted) shows so in TTL, which is how nodes that disagree are told apart.
type Holding struct {
	// Holder is its token, host, pid, start and label: those of the acquisition the servers
	// granted, which a grant passed between goroutines of one process keeps (see WithHandoff).
	Holder
	// Mode is what it holds or waits for: "lock" (a mutex), "read" or "write" (an rwmutex),
	// "permits" (a semaphore).
	Mode string
	// Weight is the number of permits (slots) of a semaphore's holder or waiter, the most any
	// node has (they differ while a partial release is under way); 1 otherwise.
	Weight int64
	// TTL says, per node in the order given to NewQuorum, what is left of the holder's lease
	// there (or of a waiter's place in the queue, renewed by each of its attempts); 0 where the
	// node does not have it, negative where its key has no TTL (not written by this library).
	TTL []time.Duration
	// Fence is the fencing counter of what the holder holds (the mutex's or the rwmutex writer's
	// counter, the highest of a semaphore holder's slots) as a majority of the nodes that hold it
	// agree, which for a fenced holder is its token: a node can read more (a request of the
	// grant's round that it ran late, after failed rounds had counted there) or less (the grant's
	// second round did not reach it). When no majority agrees (a grant being settled, nodes lost),
	// the highest. 0 for readers, waiters, and names never locked with fencing.
	Fence uint64
}

// Inspect returns who holds name and who waits for it, under every primitive (a mutex, an
// rwmutex's readers and writer, a semaphore's permits share no keys, so one name can have all
// three), held by any process: one read-only script per primitive and node, in one round trip per
// node. Holders come from the tokens the servers store, which carry the holder's host, pid, start
// and label (mutex.WithLabel). Each Holding's TTL gives its time left on every node.
//
// It is a snapshot: by the time it returns, a holder may have released or a waiter been served.
// Nodes that do not answer are in NodeErrs. The error matches [ErrInvalidArgument] for bad
// arguments, [ErrClosed] for a closed quorum, and [ErrUnavailable] when more than a minority of
// the nodes did not answer: a holder may then hold unseen, and the State returned is what the
// others have. It works on Cluster nodes: every key of a name shares its hash tag.
func (q *Quorum) Inspect(ctx context.Context, name string) (State, error) {
	st, err := (*engine.Quorum)(q).Inspect(ctx, name, families)
	return stateOf(st), err
}

// Break is an administrator's force-release of name: on every node it releases each holder that
// [Quorum.Inspect] finds, under every primitive, the way its own release would — what it frees
// goes to the waiters, in queue order, and those it serves wake at once. Waiters stay queued.
// With tokens (Holder.Token, as Inspect shows them), it breaks only the holders with those
// tokens: the grants an operator looked at and confirmed, not a grant made since. A grant passed
// from goroutine to goroutine of its process (see [WithHandoff]) keeps its token, host, pid,
// start and label, so the goroutine it breaks may be a later one than the label says. It returns
// the state it found, whose Holders are the ones it broke.
//
// A broken holder learns it at its next renewal (within TTL/3 and a round trip): its lease's Done
// closes and Err matches [ErrLost], with a cause that says the lease was broken. Until then it
// still believes it holds, and may act on it: breaking a lock whose holder is alive gives two
// holders for up to TTL/3. Break a lock whose holder is stuck or gone, or fence the resource
// (package fence). The mark that tells the holder why lives on the servers for 10 minutes past the
// holder's TTL; a holder cut off from the nodes longer than that learns only that it lost.
//
// A holder that acquires after the lookup is not broken. The error matches [ErrUnavailable] when
// fewer than a majority of the nodes answered the lookup (a holder may hold there unseen) or ran
// the break (the holders may then still hold). A node out of memory under maxmemory-policy
// noeviction, which refuses new keys, still runs the break and writes the mark.
func (q *Quorum) Break(ctx context.Context, name string, tokens ...string) (State, error) {
	st, err := (*engine.Quorum)(q).Break(ctx, name, families, tokens...)
	return stateOf(st), err
}

// List returns, sorted, the names that something holds or waits for (under any primitive) whose
// name matches pattern, a Redis glob ("orders:*"; "" for all). It scans each node's keys of the
// quorum's key prefix with SCAN (on a Cluster node, every master), never KEYS, so it does not
// block the servers; on a large keyspace it takes a while. A name is listed when any node that
// answered has it. Names of which only a fencing counter is left (it has no TTL) are not listed.
// When nodes did not answer, it returns the names the others have and an error naming those
// nodes, which matches [ErrUnavailable] when they were more than a minority.
func (q *Quorum) List(ctx context.Context, pattern string) ([]string, error) {
	return (*engine.Quorum)(q).List(ctx, pattern)
}

// stateOf converts the engine's state.
func stateOf(st engine.State) State {
	out := State{Name: st.Name, NodeErrs: make([]error, len(st.Nodes))}
	for i, n := range st.Nodes {
		if n.Err != nil {
			out.NodeErrs[i] = n.Err
		}
	}
	conv := func(hs []engine.Holding) []Holding {
		var r []Holding
		for _, h := range hs {
			r = append(r, Holding{Holder: Holder(h.Holder), Mode: h.Mode, Weight: h.Weight, TTL: h.TTL, Fence: h.Fence})
		}
		return r
	}
	out.Holders, out.Waiters = conv(st.Holders), conv(st.Waiters)
	return out
}

// NodeHealth is one node's health, as [Quorum.Health] finds it: what NewQuorum checks at start-up
// and logs as warnings, as data.
type NodeHealth struct {
	Addr    string        // the node's address ("" for a Sentinel or Cluster client)
	Err     error         // why it did not answer (a *NodeError), or nil
	Latency time.Duration // a PING's round trip
	Version string        // redis_version
	// Role is the node's replication role ("master", or "slave" for a replica), or "cluster"
	// for a Cluster client; Replicas the replicas connected to it (for a Cluster, in all).
	Role     string
	Replicas int
	AOF      bool          // appendonly is on
	Fsync    string        // appendfsync: "always", "everysec" or "no"
	Eviction string        // maxmemory-policy
	Uptime   time.Duration // uptime_in_seconds: whole seconds, and up to a second more than the truth
	// ACL is nil when the node's user may run every command and key the library needs (tried by
	// a script that leaves nothing behind); else an error matching [ErrMisconfigured] that names
	// what it may not.
	ACL error
	// Warnings say, in words, what in the node's set-up can break exclusion: eviction, no
	// persistence or an fsync policy that loses writes (without WithRestartGuard), replicas a
	// failover could promote, an uptime shorter than the TTL, a replica in the quorum, and checks
	// the node did not answer (INFO, CONFIG GET under a narrow ACL).
	Warnings []string
}

// Health asks every node, in parallel (one PING and one pipeline each, bounded by ctx and by the
// node timeout or one second, whichever is longer), how it is: whether it answers and how fast, its role and replicas, persistence,
// eviction policy, uptime, and whether its ACL allows what the library needs. Nodes known to be
// down are asked too. The error is non-nil only for bad arguments, an ended ctx or a closed
// quorum; a node's own trouble is in its NodeHealth.
func (q *Quorum) Health(ctx context.Context) ([]NodeHealth, error) {
	hs, err := (*engine.Quorum)(q).Health(ctx)
	out := make([]NodeHealth, len(hs))
	for i, h := range hs {
		out[i] = NodeHealth(h)
	}
	return out, err
}
