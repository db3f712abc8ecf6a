package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/tracing"
	"github.com/quorumsync/quorumsync/watchdog"
)

// Quorum is a set of N independent Redis masters that grant leases by majority (N/2+1). N = 1 is
// the common case; N = 3 or 5 tolerates the loss of 1 or 2 nodes. Each node is a go-redis
// UniversalClient: a plain client, a Sentinel failover client or a Cluster client each count as
// one node.
//
// Create a Quorum with [NewQuorum] and share it: it holds the watchdog goroutine that renews every
// lease it granted, and its methods are safe for concurrent use. [Quorum.Close] releases the leases
// still held and stops the watchdog; it does not close the clients, which stay the caller's.
type Quorum struct {
	nodes  []*node
	quorum int
	cfg    config
	wd     *watchdog.Watchdog
	subs   []*subscriber // one pub/sub connection per node, opened when first needed
	inst   *tracing.Instrumentation
	// liveness is how long a node's waiter queue keeps a waiter that makes no new attempt. A
	// waiter retries at least every TTL/2, so a live waiter never drops out; a crashed one holds
	// up the queue for at most this long.
	liveness time.Duration
	// The script arguments that never change, boxed once: the scripts take ...any, and boxing
	// them per call would allocate each time.
	ttlArg, livenessArg any

	gmu   sync.Mutex
	gates map[string]*gate

	mu     sync.Mutex
	leases map[*Lease]struct{}
	closed bool

	// stop is closed by Close: it ends the background probes of suspect nodes (Close waits for
	// them) and wakes blocked acquires, which return ErrClosed.
	stop   chan struct{}
	probes sync.WaitGroup
}

type node struct {
	client redis.UniversalClient
	addr   string
	// suspect is set when a call to the node ran out of time. Calls skip a suspect node (it counts
	// as a failed vote, at no cost) while a background probe pings it until it answers: a node
	// that hangs costs the per-node timeout once, not on every call. (A shorter timeout would not
	// do: after a timeout go-redis drops the connection, and dialing again is bounded by the
	// client's own dial and read timeouts, not by ours.)
	suspect atomic.Bool
}

// errSuspect is the failure recorded for a node skipped because it is suspect.
var errSuspect = errors.New("skipped: its last call timed out; waiting for it to answer a ping")

// NewQuorum returns a quorum over nodes. It checks the arguments (no nodes, a nil node, the same
// node twice, a client whose socket I/O ignores context deadlines, bad options) and returns an error
// matching [ErrInvalidArgument] that names the bad one. It then asks every node, in parallel and
// bounded by ctx, for its identity and eviction policy and loads the scripts: a node listed twice
// under two addresses (same server run_id) is refused, and a node whose maxmemory-policy can
// evict lock keys is logged as a warning. A node that does not answer is not an error here — a
// quorum exists to tolerate that — but is logged.
func NewQuorum(ctx context.Context, nodes []redis.UniversalClient, opts ...Option) (*Quorum, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, invalid("option", "nil")
		}
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, invalid("nodes", "no nodes")
	}
	q := &Quorum{
		nodes:  make([]*node, len(nodes)),
		quorum: len(nodes)/2 + 1,
		cfg:    cfg,
		gates:  make(map[string]*gate),
		leases: make(map[*Lease]struct{}),
		stop:   make(chan struct{}),
	}
	seen := make(map[string]int, len(nodes))
	for i, c := range nodes {
		arg := fmt.Sprintf("nodes[%d]", i)
		if c == nil || isNilClient(c) {
			return nil, invalid(arg, "nil client")
		}
		addr, ctxTimeouts, known := describe(c)
		if known && !ctxTimeouts {
			return nil, invalid(arg, "client for %s has ContextTimeoutEnabled=false, so per-node timeouts would not reach its sockets; set it to true", addr)
		}
		if addr != "" {
			if j, dup := seen[addr]; dup {
				return nil, invalid(arg, "same address as nodes[%d] (%s)", j, addr)
			}
			seen[addr] = i
		}
		q.nodes[i] = &node{client: c, addr: addr}
	}
	if err := q.probe(ctx); err != nil {
		close(q.stop) // a node found hung at start-up may have a probe running
		q.probes.Wait()
		return nil, err
	}
	inst, err := tracing.New(cfg.tracing...)
	if err != nil {
		return nil, fmt.Errorf("lease: tracing: %w", err)
	}
	q.inst = inst
	q.liveness = cfg.ttl
	q.ttlArg = cfg.ttl.Milliseconds()
	q.livenessArg = q.liveness.Milliseconds()
	q.subs = make([]*subscriber, len(q.nodes))
	for i, n := range q.nodes {
		q.subs[i] = newSubscriber(n.client, cfg.nodeTimeout)
	}
	q.wd = watchdog.New(q.renewBatch)
	return q, nil
}

// describe returns a client's address (a stable identity for duplicate detection, "" when unknown)
// and whether it honours context deadlines on its sockets; known is false for client types it
// cannot inspect.
func describe(c redis.UniversalClient) (addr string, ctxTimeouts, known bool) {
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		addr = o.Addr
		if addr == "FailoverClient" {
			addr = "" // a Sentinel client; its identity comes from run_id
		}
		return addr, o.ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		o := c.Options()
		addrs := slices.Clone(o.Addrs)
		slices.Sort(addrs)
		return "cluster:" + strings.Join(addrs, ","), o.ContextTimeoutEnabled, true
	case *redis.Ring:
		o := c.Options()
		addrs := make([]string, 0, len(o.Addrs))
		for _, a := range o.Addrs {
			addrs = append(addrs, a)
		}
		slices.Sort(addrs)
		return "ring:" + strings.Join(addrs, ","), o.ContextTimeoutEnabled, true
	}
	return "", false, false
}

// isNilClient catches a typed nil pointer inside the interface.
func isNilClient(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c == nil
	case *redis.ClusterClient:
		return c == nil
	case *redis.Ring:
		return c == nil
	}
	return false
}

// probe asks each node for its run_id and eviction policy and loads the scripts, in one pipeline
// per node.
func (q *Quorum) probe(ctx context.Context) error {
	type answer struct {
		runID  string
		policy string
		err    error
	}
	answers := make([]answer, len(q.nodes))
	q.fanoutTimeout(ctx, max(q.cfg.nodeTimeout, time.Second), func(ctx context.Context, i int, c redis.UniversalClient) {
		if c == nil {
			answers[i].err = errSuspect
			return
		}
		pipe := c.Pipeline()
		info := pipe.Info(ctx, "server")
		policy := pipe.ConfigGet(ctx, "maxmemory-policy")
		for _, src := range sources {
			// Not Script.Load(ctx, pipe): on a pipeline it would overwrite the script's hash with
			// the reply that has not arrived yet.
			pipe.ScriptLoad(ctx, src)
		}
		_, _ = pipe.Exec(ctx)
		a := &answers[i]
		var reply redis.Error
		switch err := info.Err(); {
		case err == nil:
			a.runID = infoField(info.Val(), "run_id")
		case errors.As(err, &reply):
			// The server answered but has no INFO server (some Redis-compatible servers): no
			// run_id to compare, nothing wrong with the node.
		default:
			a.err = err
		}
		if m, err := policy.Result(); err == nil {
			a.policy = m["maxmemory-policy"]
		}
	})
	seen := make(map[string]int, len(q.nodes))
	for i, a := range answers {
		if a.err != nil {
			q.cfg.logger.Warn("lease: node did not answer at start-up", "node", i, "addr", q.nodes[i].addr, "err", a.err)
			continue
		}
		if _, cluster := q.nodes[i].client.(*redis.ClusterClient); cluster || a.runID == "" {
			continue // a cluster answers from any of its masters; run_id says nothing there
		}
		if j, dup := seen[a.runID]; dup {
			return invalid(fmt.Sprintf("nodes[%d]", i), "same server as nodes[%d] (run_id %s)", j, a.runID)
		}
		seen[a.runID] = i
		// volatile-* policies are no better than allkeys-*: they evict keys that have a TTL, and
		// every lock key has one.
		if a.policy != "" && a.policy != "noeviction" {
			q.cfg.logger.Warn("lease: node may evict lock keys under memory pressure, which breaks mutual exclusion; use maxmemory-policy noeviction",
				"node", i, "addr", q.nodes[i].addr, "maxmemory-policy", a.policy)
		}
	}
	return nil
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Size returns the number of nodes.
func (q *Quorum) Size() int { return len(q.nodes) }

// Majority returns how many nodes must agree: Size()/2 + 1.
func (q *Quorum) Majority() int { return q.quorum }

// TTL returns the lease TTL.
func (q *Quorum) TTL() time.Duration { return q.cfg.ttl }

// Close releases every lease still held (their Err then matches [ErrLost] and [ErrClosed]), stops
// the watchdog and waits for it. Later calls return [ErrClosed]. It does not close the clients.
func (q *Quorum) Close(ctx context.Context) error {
	if q == nil {
		return invalid("quorum", "nil")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	held := make([]*Lease, 0, len(q.leases))
	for l := range q.leases {
		held = append(held, l)
	}
	q.mu.Unlock()
	// Blocked acquires return ErrClosed now, not after the releases below.
	close(q.stop)

	var errs []error
	for _, l := range held {
		// A lease lost before Close is old news; a release that could not reach the nodes is not.
		var ne *NodeError
		if err := l.release(ctx, ErrClosed); err != nil && (!errors.Is(err, ErrLost) || errors.As(err, &ne)) {
			errs = append(errs, err)
		}
	}
	q.wd.Close()
	for _, s := range q.subs {
		s.close()
	}
	q.probes.Wait()
	return errors.Join(errs...)
}

func (q *Quorum) track(l *Lease) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.leases[l] = struct{}{}
	return true
}

func (q *Quorum) untrack(l *Lease) {
	q.mu.Lock()
	delete(q.leases, l)
	q.mu.Unlock()
}

func (q *Quorum) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// fanout calls f for every node in parallel, each under the per-node timeout, and returns only
// after every call has returned: no goroutine outlives it. f writes its result at index i of a
// slice the caller owns. For a suspect node f gets a nil client: it must record the failure
// errSuspect for node i, without I/O.
func (q *Quorum) fanout(ctx context.Context, f func(ctx context.Context, i int, c redis.UniversalClient)) {
	q.fanoutTimeout(ctx, q.cfg.nodeTimeout, f)
}

func (q *Quorum) fanoutTimeout(ctx context.Context, timeout time.Duration, f func(ctx context.Context, i int, c redis.UniversalClient)) {
	call := func(i int) {
		n := q.nodes[i]
		if n.suspect.Load() {
			f(ctx, i, nil)
			return
		}
		nctx, cancel := context.WithTimeout(ctx, timeout)
		f(nctx, i, n.client)
		// Out of time while the caller was not: the node is hung (or far too slow). The clock,
		// not nctx.Err(): the socket deadline can fire a moment before the ctx's own timer.
		if nodeOutOfTime(ctx, nctx) && n.suspect.CompareAndSwap(false, true) {
			q.startProbe(n)
		}
		cancel()
	}
	if len(q.nodes) == 1 {
		// One node: no goroutine to start and join.
		call(0)
		return
	}
	var wg sync.WaitGroup
	wg.Add(len(q.nodes) - 1)
	for i := 1; i < len(q.nodes); i++ {
		go func() {
			defer wg.Done()
			call(i)
		}()
	}
	// The caller's goroutine takes the first node itself: one goroutine fewer to start and wake.
	call(0)
	wg.Wait()
}

// nodeOutOfTime reports whether a node call ran into its own timeout (nctx's deadline), rather
// than the caller's (ctx's).
func nodeOutOfTime(ctx, nctx context.Context) bool {
	deadline, _ := nctx.Deadline()
	if parent, ok := ctx.Deadline(); ok && !parent.After(deadline) {
		return false // the caller's deadline came first
	}
	return ctx.Err() == nil && !time.Now().Before(deadline)
}

// startProbe pings a suspect node, with growing pauses (10ms to 1s), until it answers; then calls
// use it again. The probe belongs to the quorum: Close stops it and waits for it.
func (q *Quorum) startProbe(n *node) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		n.suspect.Store(false)
		return
	}
	q.probes.Add(1)
	go func() {
		defer q.probes.Done()
		pause := 10 * time.Millisecond
		t := time.NewTimer(pause)
		defer t.Stop()
		for {
			select {
			case <-q.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), q.cfg.nodeTimeout)
			err := n.client.Ping(ctx).Err()
			cancel()
			if err == nil {
				n.suspect.Store(false)
				return
			}
			pause = min(2*pause, time.Second)
			t.Reset(pause)
		}
	}()
}

func (q *Quorum) nodeError(i int, err error) error {
	return &NodeError{Index: i, Addr: q.nodes[i].addr, Err: err}
}
