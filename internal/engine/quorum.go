package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/telemetry"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// Quorum is a set of N independent Redis masters that grant leases by majority (N/2+1). N = 1 is
// the common case; N = 3 or 5 tolerates the loss of 1 or 2 nodes. Each node is a go-redis client:
// a plain client, a Sentinel failover client or a Cluster client each count as one node.
//
// Create a Quorum with [NewQuorum] and share it: it holds the watchdog goroutine that renews every
// lease it granted, whatever its TTL or kind, one pub/sub connection per node for wake-ups, and the
// local gates of the process's goroutines. Its methods are safe for concurrent use. [Quorum.Close]
// ends blocked acquires, releases the leases still held and stops its goroutines; it does not
// close the clients, which stay the caller's.
type Quorum struct {
	nodes  []*node
	quorum int
	cfg    config
	wd     *watchdog.Watchdog
	subs   []*subscriber // one pub/sub connection per node, opened when first needed
	inst   *telemetry.Instrumentation
	notes  *notifier

	gmu   sync.Mutex
	gates map[string]*gate

	mu     sync.Mutex
	leases map[*Lease]struct{}
	closed bool
	// active counts the acquires under way; Close waits until they have returned (and left the
	// servers' queues). idle is closed when it drops to zero after Close.
	active int
	idle   chan struct{}

	deadlines deadlines // the Done channels of per-node call contexts

	// stop is closed by Close: it wakes blocked acquires, which return ErrClosed, and ends the
	// background probes of suspect nodes (Close waits for them).
	stop   chan struct{}
	probes sync.WaitGroup

	// woken, if not nil (tests only), is called when a wake-up reaches a waiter, before the waiter
	// acts on it; false makes the waiter ignore it, as if it had been lost.
	woken func() bool
}

// NewQuorum returns a quorum over nodes; package lease's NewQuorum documents it.
func NewQuorum(ctx context.Context, nodes []redis.UniversalClient, opts ...Option) (*Quorum, error) {
	if ctx == nil {
		return nil, Invalid("ctx", "nil")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, Invalid("option", "nil")
		}
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, Invalid("nodes", "no nodes")
	}
	q := &Quorum{
		nodes:  make([]*node, len(nodes)),
		quorum: len(nodes)/2 + 1,
		cfg:    cfg,
		gates:  make(map[string]*gate),
		leases: make(map[*Lease]struct{}),
		stop:   make(chan struct{}),
		idle:   make(chan struct{}),
	}
	seen := make(map[string]int, len(nodes))
	for i, c := range nodes {
		n, err := newNode(i, c)
		if err != nil {
			return nil, err
		}
		if n.addr != "" {
			if j, dup := seen[n.addr]; dup {
				return nil, Invalid(fmt.Sprintf("nodes[%d]", i), "same address as nodes[%d] (%s)", j, n.addr)
			}
			seen[n.addr] = i
		}
		switch c.(type) {
		case *redis.Client, *redis.ClusterClient:
		default:
			if cfg.ackReplicas > 0 {
				return nil, Invalid(fmt.Sprintf("nodes[%d]", i), "replica acknowledgement needs a *redis.Client or a *redis.ClusterClient node, not %T", c)
			}
		}
		if _, cluster := c.(*redis.ClusterClient); cluster && cfg.guard > 0 {
			return nil, Invalid(fmt.Sprintf("nodes[%d]", i), "the restart guard reads a node's uptime in the acquire's transaction, which a Cluster client cannot route; use independent nodes")
		}
		q.nodes[i] = n
	}
	if err := q.probeAll(ctx); err != nil {
		close(q.stop) // a node found hung at start-up has a probe running
		q.probes.Wait()
		return nil, err
	}
	inst, err := telemetry.New(cfg.tracing...)
	if err != nil {
		close(q.stop)
		q.probes.Wait()
		return nil, fmt.Errorf("lease: tracing: %w", err)
	}
	q.inst = inst
	q.subs = make([]*subscriber, len(q.nodes))
	for i, n := range q.nodes {
		q.subs[i] = newSubscriber(n.client, cfg.nodeTimeout)
	}
	q.wd = watchdog.New(q.renewBatch, watchdog.WithMaxBatch(maxRenewBatch), watchdog.WithDrift(drift))
	q.notes = newNotifier()
	return q, nil
}

// probeAll asks each node, in one pipeline, for its identity and set-up, loads the exclusive
// kind's scripts, and runs the probe script, which tries every command the scripts run on keys
// and a channel of the key prefix. A node that answers but refuses what every lock needs (the
// credentials, a command, the key or channel pattern) makes it fail with ErrMisconfigured,
// naming every such node; a check the node's ACL does not allow (INFO, CONFIG GET) is logged as
// skipped.
func (q *Quorum) probeAll(ctx context.Context) error {
	type answer struct {
		runID    string
		policy   string
		aof      string // aof_enabled
		role     string
		replicas string // connected_slaves, or the replicas of a cluster
		skipped  []string
		refused  error // what the node refused for good, as a refusal
		err      error
		// clusterIDs are the node ids of a Cluster client's cluster: two clients of one
		// cluster are one node, not two.
		clusterIDs []string
	}
	answers := make([]answer, len(q.nodes))
	timeout := max(q.cfg.nodeTimeout, time.Second)
	keys, channel := q.probeKeys()
	q.fanoutTimeout(ctx, timeout, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		a := &answers[n.index]
		if c == nil {
			a.err = n.skipped()
			return
		}
		pipe := c.Pipeline()
		info := pipe.Info(ctx, "server", "persistence", "replication")
		policy := pipe.ConfigGet(ctx, "maxmemory-policy")
		loads := make([]*redis.StringCmd, len(exclusiveScripts))
		for i, s := range exclusiveScripts {
			// Not Script.Load(ctx, pipe): on a pipeline it would overwrite the script's hash with
			// the reply that has not arrived yet.
			loads[i] = pipe.ScriptLoad(ctx, s.src)
		}
		probe := pipe.Eval(ctx, probeScript.src, keys, channel)
		_, execErr := pipe.Exec(ctx)
		infoErr := info.Err()
		if infoErr == nil && info.Val() == "" && execErr != nil {
			// The connection failed before any command ran (a refused login, say): the
			// commands carry no error of their own.
			infoErr = execErr
		}
		var reply redis.Error
		switch err := infoErr; {
		case err == nil:
			a.runID = infoField(info.Val(), "run_id")
			a.aof = infoField(info.Val(), "aof_enabled")
			a.role = infoField(info.Val(), "role")
			a.replicas = infoField(info.Val(), "connected_slaves")
		case refusalOf(err) != nil && redis.HasErrorPrefix(err, "NOPERM"):
			if q.cfg.guard > 0 {
				a.refused = &refusal{words: "the ACL user may not run INFO, which the restart guard reads in every acquire", err: err}
				return
			}
			a.skipped = append(a.skipped, "INFO (duplicate nodes, persistence, replicas): "+err.Error())
		case refusalOf(err) != nil:
			a.refused = refusalOf(err) // the connection itself: credentials, TLS
			return
		case errors.As(err, &reply):
			// The server answered but has no INFO server (some Redis-compatible servers): no
			// run_id to compare, nothing wrong with the node.
		default:
			a.err = err
			return
		}
		switch m, err := policy.Result(); {
		case err == nil:
			a.policy = m["maxmemory-policy"]
		case redis.HasErrorPrefix(err, "NOPERM"):
			a.skipped = append(a.skipped, "CONFIG GET maxmemory-policy (eviction): "+err.Error())
		}
		for _, l := range loads {
			if r := refusalOf(l.Err()); r != nil {
				a.refused = &refusal{words: "the ACL user may not load the library's scripts (SCRIPT LOAD)", err: l.Err()}
				return
			}
		}
		switch refused, err := probe.StringSlice(); {
		case refusalOf(err) != nil:
			a.refused = refusalOf(err)
		case err == nil && len(refused) > 0:
			a.refused = &refusal{words: "the ACL user may not run what the library's scripts need", err: errors.New(strings.Join(refused, "; "))}
		}
		if cc, ok := c.(*redis.ClusterClient); ok {
			if nodes, err := cc.ClusterNodes(ctx).Result(); err == nil {
				a.replicas = strconv.Itoa(strings.Count(nodes, "slave"))
				for _, line := range strings.Split(nodes, "\n") {
					if id, _, ok := strings.Cut(line, " "); ok && id != "" {
						a.clusterIDs = append(a.clusterIDs, id)
					}
				}
			}
		}
	}))
	var refused []error
	seen := make(map[string]int, len(q.nodes))
	seenCluster := map[string]int{}
	for i, a := range answers {
		n := q.nodes[i]
		if a.err != nil && refusalOf(a.err) == nil {
			if tlsErr := q.tlsCheck(ctx, n); tlsErr != nil {
				a.refused = tlsErr
			}
		}
		if a.refused != nil {
			refused = append(refused, &NodeError{Index: n.index, Addr: n.addr, Err: a.refused})
			continue
		}
		if a.err != nil {
			q.reportStartupFailure(n, a.err)
			continue
		}
		for _, what := range a.skipped {
			q.cfg.logger.Warn("lease: start-up check skipped: the node's ACL does not allow it", "node", i, "addr", n.addr, "check", what)
		}
		q.warnSetUp(n, a.runID, a.aof, a.role, a.replicas)
		for _, id := range a.clusterIDs {
			if j, dup := seenCluster[id]; dup && j != i {
				return Invalid(fmt.Sprintf("nodes[%d]", i), "the same Redis Cluster as nodes[%d] (node %s): one cluster is one node of a quorum", j, id)
			}
			seenCluster[id] = i
		}
		if _, cluster := n.client.(*redis.ClusterClient); cluster || a.runID == "" {
			continue // a cluster answers from any of its masters; run_id says nothing there
		}
		if j, dup := seen[a.runID]; dup {
			return Invalid(fmt.Sprintf("nodes[%d]", i), "same server as nodes[%d] (run_id %s)", j, a.runID)
		}
		seen[a.runID] = i
		// volatile-* policies are no better than allkeys-*: they evict keys that have a TTL, and
		// every lock key has one.
		if a.policy != "" && a.policy != "noeviction" {
			q.cfg.logger.Warn("lease: node may evict lock keys under memory pressure, which breaks mutual exclusion; use maxmemory-policy noeviction",
				"node", i, "addr", n.addr, "maxmemory-policy", a.policy)
		}
	}
	if len(refused) > 0 {
		return &misconfigured{refused}
	}
	return nil
}

// misconfigured is NewQuorum's error when nodes that answered refused what every lock needs.
type misconfigured struct{ nodes []error }

func (e *misconfigured) Error() string {
	return ErrMisconfigured.Error() + ": " + joined(e.nodes).Error()
}

func (e *misconfigured) Unwrap() []error { return append([]error{ErrMisconfigured}, e.nodes...) }

// tlsCheck tells whether a node that a plain-text client could not talk to speaks TLS (a Redis
// with only a TLS port resets a plain-text connection, which reads as EOF): it tries a TLS
// handshake, without verifying the certificate, on a connection of its own. A server that
// completes it, or answers it with a TLS alert, speaks TLS. It returns the refusal, or nil.
func (q *Quorum) tlsCheck(ctx context.Context, n *node) error {
	c, ok := n.client.(*redis.Client)
	if !ok || n.addr == "" || c.Options().TLSConfig != nil || c.Options().Network == "unix" {
		return nil
	}
	timeout := max(q.cfg.nodeTimeout, 200*time.Millisecond)
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", n.addr)
	if err != nil {
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	host, _, _ := net.SplitHostPort(n.addr)
	// Only to learn whether the server speaks TLS; nothing is sent over this connection.
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec
	var alert tls.AlertError
	if err := tc.HandshakeContext(ctx); err != nil && !errors.As(err, &alert) {
		return nil
	}
	return &refusal{words: "the server speaks TLS and the client plain text: give the client a TLSConfig (or use a rediss:// URL)",
		err: errors.New("a TLS handshake with the server succeeded where plain text failed")}
}

// warnSetUp logs what in a node's set-up can break exclusion (DESIGN §7): no persistence without the
// restart guard (a restart forgets the locks held), and replicas that a failover could promote
// before they had a lock's write (replication is asynchronous).
func (q *Quorum) warnSetUp(n *node, runID, aof, role, replicas string) {
	_, sentinel := n.client.(*redis.Client)
	sentinel = sentinel && n.addr == "" // a FailoverClient has no address of its own
	if aof == "0" && q.cfg.guard == 0 && warnOnce(n.addr, runID, "aof") {
		q.cfg.logger.Warn("lease: node has no AOF persistence: if it restarts before the longest TTL has passed it forgets the locks it held, and another client can take one that is held; enable appendonly with appendfsync always, or use lease.WithRestartGuard",
			"node", n.index, "addr", n.addr)
	}
	_, cluster := n.client.(*redis.ClusterClient)
	if q.cfg.ackReplicas > 0 && cluster {
		return // its replicas are counted over every shard, WAIT's over one: nothing to compare
	}
	if have, err := strconv.Atoi(replicas); q.cfg.ackReplicas > 0 && err == nil {
		switch {
		case have < q.cfg.ackReplicas && warnOnce(n.addr, runID, "too few replicas"):
			q.cfg.logger.Warn("lease: node has fewer replicas than lease.WithReplicaAck asks for: its grants and renewals fail until enough are connected",
				"node", n.index, "addr", n.addr, "replicas", have, "asked", q.cfg.ackReplicas)
		case have > q.cfg.ackReplicas && warnOnce(n.addr, runID, "replicas beyond the ack"):
			q.cfg.logger.Warn("lease: node has more replicas than lease.WithReplicaAck waits for: a failover can promote one that has not received a lock's write; ask for all of them",
				"node", n.index, "addr", n.addr, "replicas", have, "asked", q.cfg.ackReplicas)
		}
		return
	}
	if (sentinel || (replicas != "" && replicas != "0")) && warnOnce(n.addr, runID, "replicas") {
		q.cfg.logger.Warn("lease: node has replicas that a failover (Sentinel, Cluster) can promote before they received a lock's write (replication is asynchronous): the promoted node may grant a lock that is held; use independent masters without failover for the quorum",
			"node", n.index, "addr", n.addr, "role", role, "replicas", replicas)
	}
}

// warned remembers the set-up warnings given, by server: its address and its run_id (INFO
// server), so that a process that makes many quorums over the same nodes (a test suite, a pool)
// hears each once, and hears it again from another server at that address (the node restarted, or
// a new one took its port). A node without an address of its own (Sentinel) is warned about every
// time.
var warned sync.Map

func warnOnce(addr, runID, what string) bool {
	if addr == "" {
		return true
	}
	_, seen := warned.LoadOrStore(addr+" "+runID+" "+what, true)
	return !seen
}

// reportStartupFailure logs a node that did not answer at start-up, with the real reason: a
// timeout is checked with a raw dial, so a refused connection is reported as refused. When the
// client's retries hid the refusal, the log says which options make it fail fast.
func (q *Quorum) reportStartupFailure(n *node, err error) {
	attrs := []any{"node", n.index, "addr", n.addr}
	if isTimeout(err) {
		if derr := q.dialCheck(n); derr != nil {
			err = derr
			n.mu.Lock()
			n.lastErr = derr // what a call that skips the node will say
			n.mu.Unlock()
			if c, ok := n.client.(*redis.Client); ok {
				if o := c.Options(); o.DialerRetries > 1 || o.MaxRetries >= 0 {
					attrs = append(attrs, "hint", fmt.Sprintf(
						"go-redis retries refused dials (DialerRetries=%d, %v apart) and failed commands (MaxRetries=%d) inside the per-node timeout, so every call to this node costs the whole timeout and fails as a timeout; set DialerRetries: 1 and MaxRetries: -1 on the node clients to see the refusal at once",
						o.DialerRetries, o.DialerRetryTimeout, o.MaxRetries))
				}
			}
		}
	}
	q.cfg.logger.Warn("lease: node did not answer at start-up", append(attrs, "err", err)...)
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

// TTL returns the quorum's default lease TTL.
func (q *Quorum) TTL() time.Duration { return q.cfg.ttl }

// NodeTimeout returns the per-node timeout.
func (q *Quorum) NodeTimeout() time.Duration { return q.cfg.nodeTimeout }

// Report hands err to the quorum's error handler (see [WithErrorHandler]), at once, on the
// caller's goroutine. Packages built on lease use it for the errors their callers cannot receive.
func (q *Quorum) Report(err error) {
	if err == nil {
		return
	}
	if q == nil {
		slog.Default().Error("quorumsync", "err", err)
		return
	}
	if q.cfg.onError != nil {
		q.cfg.onError(err)
		return
	}
	q.cfg.logger.Error("quorumsync", "err", err)
}

// Close ends every blocked acquire (it returns [ErrClosed]) and waits until they have left the
// servers' queues, then releases every lease still held, in parallel (their Err then matches
// [ErrLost] and [ErrClosed]), and stops the quorum's goroutines — the watchdog, the pub/sub
// connections, the probes of suspect nodes, the notifier that runs loss handlers — and waits for
// them. Later calls return [ErrClosed]. It closes the clients only if lease.Dial made them.
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
func (q *Quorum) Close(ctx context.Context) error {
	if q == nil || q.wd == nil {
		return Invalid("quorum", "nil")
	}
	if ctx == nil {
		return Invalid("ctx", "nil")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	if q.active == 0 {
		close(q.idle)
	}
	q.mu.Unlock()
	// Blocked acquires return ErrClosed now; each leaves the servers' queues before it returns.
	close(q.stop)
	var errs []error
	select {
	case <-q.idle:
	case <-ctx.Done():
	}

	q.mu.Lock()
	held := make([]*Lease, 0, len(q.leases))
	for l := range q.leases {
		held = append(held, l)
	}
	q.mu.Unlock()
	results := make(chan error, len(held))
	var wg sync.WaitGroup
	for _, l := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- l.release(ctx, ErrClosed)
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		// A lease lost before Close is old news, and one its holder released meanwhile is not
		// Close's business; a release that could not reach the nodes is.
		var ne *NodeError
		if err != nil && !errors.Is(err, ErrReleased) && !errors.Is(err, ErrClosed) && (!errors.Is(err, ErrLost) || errors.As(err, &ne)) {
			errs = append(errs, err)
		}
	}
	q.wd.Close()
	// In parallel: a connection that is reconnecting to a hung node holds its close up to the
	// client's timeouts (see the doc), and one such node should cost that once, not once per node.
	var subs sync.WaitGroup
	for _, s := range q.subs {
		subs.Go(s.close)
	}
	subs.Wait()
	q.probes.Wait()
	// The probes paid what was owed to the nodes that answered again; the cleanups still owed
	// (a leave of an acquire Close just ended, an undo) get one last try each, within the node
	// timeout and ctx, while the clients are still open. A node still down never gets them: what
	// they would have removed lapses by itself.
	var owed sync.WaitGroup
	for _, n := range q.nodes {
		if n.owes() > 0 && ctx.Err() == nil {
			owed.Add(1)
			go func() {
				defer owed.Done()
				q.payDebts(ctx, n)
			}()
		}
	}
	owed.Wait()
	q.notes.close(ctx)
	if q.cfg.owned {
		for _, n := range q.nodes {
			_ = n.client.Close()
		}
	}
	if err := ctxErr(ctx); err != nil {
		errs = append(errs, fmt.Errorf("lease: close stopped waiting: %w", err))
	}
	if len(errs) > 0 {
		return Join(errs...)
	}
	return nil
}

// enter counts an acquire under way; it reports false once the quorum is closed.
func (q *Quorum) enter() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.active++
	return true
}

func (q *Quorum) leave() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active--; q.active == 0 && q.closed {
		close(q.idle)
	}
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

// retrack replaces a passed lease by its next handle in the set of held leases.
func (q *Quorum) retrack(old, next *Lease) {
	q.mu.Lock()
	delete(q.leases, old)
	q.leases[next] = struct{}{}
	q.mu.Unlock()
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

// nodeTask is the part of a fan-out that runs for each node: it writes its result at the node's
// index of a slice its owner keeps. For a suspect node it gets a nil client: it must record the
// failure (n.skipped()) without I/O.
type nodeTask interface {
	do(ctx context.Context, n *node, c redis.UniversalClient)
}

// taskFunc adapts a function to a nodeTask.
type taskFunc func(ctx context.Context, n *node, c redis.UniversalClient)

func (f taskFunc) do(ctx context.Context, n *node, c redis.UniversalClient) { f(ctx, n, c) }

// fanout runs t for every node in parallel, each under the per-node timeout, and returns only after
// every call has returned: no goroutine outlives it.
func (q *Quorum) fanout(ctx context.Context, t nodeTask) {
	q.fanoutTimeout(ctx, q.cfg.nodeTimeout, t)
}

func (q *Quorum) fanoutTimeout(ctx context.Context, timeout time.Duration, t nodeTask) {
	if len(q.nodes) == 1 {
		// One node: no goroutine to start and join.
		q.callNode(ctx, timeout, q.nodes[0], t)
		return
	}
	var wg sync.WaitGroup
	wg.Add(len(q.nodes) - 1)
	for _, n := range q.nodes[1:] {
		go func() {
			defer wg.Done()
			q.callNode(ctx, timeout, n, t)
		}()
	}
	// The caller's goroutine takes the first node itself: one goroutine fewer to start and wake.
	q.callNode(ctx, timeout, q.nodes[0], t)
	wg.Wait()
}

// callNode is one node's part of a fan-out.
func (q *Quorum) callNode(ctx context.Context, timeout time.Duration, n *node, t nodeTask) {
	if n.suspect.Load() {
		t.do(ctx, n, nil)
		return
	}
	deadline := time.Now().Add(timeout)
	var nctx context.Context
	if ct, ok := t.(*callTask); ok {
		nctx = ct.nodeContext(q, ctx, n, deadline)
	} else {
		nctx = q.deadlines.context(ctx, deadline)
	}
	t.do(nctx, n, n.client)
	// Out of time while the caller was not: the node is hung (or far too slow). The clock, not
	// the ctx's Err: the socket deadline can fire a moment before any timer.
	if nodeOutOfTime(ctx, deadline) {
		q.markSuspect(n, &nodeTimeout{after: timeout})
	}
}

// nodeOutOfTime reports whether a node call ran into its own timeout (deadline), rather than the
// caller's (ctx's).
func nodeOutOfTime(ctx context.Context, deadline time.Time) bool {
	if parent, ok := ctx.Deadline(); ok && !parent.After(deadline) {
		return false // the caller's deadline came first
	}
	return ctx.Err() == nil && !time.Now().Before(deadline)
}

// ctxErr is ctx.Err(), but also DeadlineExceeded once ctx's deadline has passed by the clock: a
// socket deadline taken from ctx fires a moment before ctx's own timer does.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// nodeError types the failure of node n in a call made under ctx: a call that ran into the
// per-node timeout (not the caller's deadline) becomes ErrNodeTimeout, so that it does not read as
// the caller's context.DeadlineExceeded.
func (q *Quorum) nodeError(ctx context.Context, n *node, err error) *NodeError {
	return q.nodeErrorAfter(ctx, n, err, q.cfg.nodeTimeout)
}

// nodeErrorAfter is nodeError for a call whose own timeout was timeout, not the per-node one.
func (q *Quorum) nodeErrorAfter(ctx context.Context, n *node, err error, timeout time.Duration) *NodeError {
	if isTimeout(err) && ctxErr(ctx) == nil {
		if _, skipped := err.(*errSkipped); !skipped {
			err = &nodeTimeout{after: timeout}
		}
	}
	return &NodeError{Index: n.index, Addr: n.addr, Err: err}
}
