package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// node is one member of a quorum: its client and identity, its health, and the cleanups it is owed.
//
// Health: a call that runs out of the per-node timeout makes the node suspect. Calls then skip it
// (a failed vote, at no cost) while a background probe pings it, with growing pauses, until it
// answers: a node that hangs costs the timeout once, not on every call. (A shorter timeout would
// not do: after a timeout go-redis drops the connection, and cancelling a context does not cut a
// blocked socket read; only deadlines do.)
//
// Debts: a cleanup (the undo of a failed round, a release, a queue leave) that cannot reach the
// node, because it is suspect or its call failed, is kept and sent again once the node answers a
// ping. The request that timed out may still execute when a hung node wakes — it sits in the
// node's socket buffer — so the cleanup is owed until after that: a ping answered on a new
// connection comes after the old connection's buffered requests, which the server reads first.
type node struct {
	index  int
	client redis.UniversalClient
	addr   string
	// dial opens a raw connection the way the client does, to tell a refused connection from a
	// hung node (go-redis retries refused dials inside the timeout, so its own error is a
	// timeout); nil for clients whose dialer is not ours to call.
	dial func(ctx context.Context) (net.Conn, error)

	suspect atomic.Bool

	// tls is set when a check found that the node speaks TLS to our plain-text client (see
	// Quorum.checkTLS); tlsChecking while a check runs, tlsCheckedAt when the last began.
	tls          atomic.Pointer[refusal]
	tlsChecking  atomic.Bool
	tlsCheckedAt atomic.Int64

	mu      sync.Mutex
	lastErr error  // why the node is suspect
	debts   []Call // cleanups owed, oldest first
	probing bool   // a probe goroutine is running
}

// probePause is the longest pause between two pings of a suspect node: a tenth of the quorum's TTL
// (WithTTL; a primitive with a shorter TTL of its own gets no shorter pause), between 10ms and
// 500ms. A node that answers again is used again, and gets the cleanups it is owed, within that
// pause plus one node timeout (the ping in flight): a healed minority costs a lease at most a
// tenth of its TTL of renewals, not one whole TTL, which could turn a minority outage into a
// majority one for a client whose other nodes fail meanwhile.
func (q *Quorum) probePause() time.Duration {
	return min(max(q.cfg.ttl/10, 10*time.Millisecond), 500*time.Millisecond)
}

// maxDebts bounds the cleanups kept for one node; beyond it the oldest are dropped (what they
// would clean up expires within its TTL anyway).
const maxDebts = 4096

// newNode describes client c as node i. It refuses what cannot be a node.
func newNode(i int, c redis.UniversalClient) (*node, error) {
	arg := fmt.Sprintf("nodes[%d]", i)
	n := &node{index: i, client: c}
	switch c := c.(type) {
	case *redis.Client:
		if c == nil {
			return nil, Invalid(arg, "nil client")
		}
		o := c.Options()
		if !o.ContextTimeoutEnabled {
			return nil, Invalid(arg, "client for %s has ContextTimeoutEnabled=false, so per-node timeouts would not reach its sockets; set it to true", o.Addr)
		}
		if o.Addr != "FailoverClient" { // a Sentinel client's identity comes from run_id
			n.addr = o.Addr
			if o.Dialer != nil {
				network, addr, dialer := o.Network, o.Addr, o.Dialer
				n.dial = func(ctx context.Context) (net.Conn, error) { return dialer(ctx, network, addr) }
			}
		}
	case *redis.ClusterClient:
		if c == nil {
			return nil, Invalid(arg, "nil client")
		}
		o := c.Options()
		if !o.ContextTimeoutEnabled {
			return nil, Invalid(arg, "cluster client has ContextTimeoutEnabled=false, so per-node timeouts would not reach its sockets; set it to true")
		}
		addrs := slices.Clone(o.Addrs)
		slices.Sort(addrs)
		n.addr = "cluster:" + strings.Join(addrs, ",")
	case *redis.Ring:
		// A Ring re-shards a name when a shard looks down to one process: two processes can then
		// map the same name to different shards, and both hold it.
		return nil, Invalid(arg, "a redis.Ring cannot be a node: it moves a name to another shard when one looks down to this process, so two processes could hold it; give each shard as a node of its own")
	case nil:
		return nil, Invalid(arg, "nil client")
	}
	return n, nil
}

// errSkipped is the failure recorded for a node skipped because it is suspect.
type errSkipped struct{ last error }

func (e *errSkipped) Error() string {
	if e.last == nil {
		return "skipped until it answers a ping"
	}
	return "skipped until it answers a ping; last error: " + e.last.Error()
}

func (e *errSkipped) Unwrap() error { return e.last }

func (n *node) skipped() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &errSkipped{last: n.lastErr}
}

// owe keeps a cleanup for when the node answers again, and makes sure a probe is on it. The node
// is suspect — calls skip it — until the probe has paid: a cleanup is the undo of a round, sent
// with the claim's token, and a later round of the same acquire granted on the node meanwhile
// would be released by it when it is paid (a double grant).
func (q *Quorum) owe(n *node, c Call) {
	n.mu.Lock()
	if len(n.debts) >= maxDebts {
		n.debts = slices.Delete(n.debts, 0, len(n.debts)-maxDebts+1)
	}
	n.debts = append(n.debts, c)
	n.suspect.Store(true) // under n.mu: a probe that finds no debt clears it under n.mu too
	n.mu.Unlock()
	q.startProbe(n)
}

// isTransportError reports whether err means the request may not have reached the node, or its
// reply did not come back: not an answer from the server.
func isTransportError(err error) bool {
	var re redis.Error
	return err != nil && err != redis.Nil && !errors.As(err, &re)
}

// markSuspect records that n ran out of time (err says how) and starts its probe.
func (q *Quorum) markSuspect(n *node, err error) {
	n.mu.Lock()
	n.lastErr = err
	n.mu.Unlock()
	if n.suspect.CompareAndSwap(false, true) {
		q.startProbe(n)
	}
}

// startProbe starts the node's probe unless one runs: it pings the node with growing pauses (10ms
// to probePause) until it answers, pays the cleanups owed to it, and then lets calls use it again. The
// probe belongs to the quorum: Close stops it and waits for it.
func (q *Quorum) startProbe(n *node) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	n.mu.Lock()
	if n.probing {
		n.mu.Unlock()
		return
	}
	n.probing = true
	n.mu.Unlock()
	q.probes.Add(1)
	go func() {
		defer q.probes.Done()
		q.probe(n)
	}()
}

func (q *Quorum) probe(n *node) {
	pause := min(10*time.Millisecond, q.probePause())
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			n.mu.Lock()
			n.probing = false
			n.mu.Unlock()
			return
		case <-t.C:
		}
		if err := q.ping(n); err != nil {
			if refusalOf(err) == nil && connectionDropped(err) {
				if tlsErr := q.tlsCheck(context.Background(), n); tlsErr != nil {
					err = tlsErr // calls that skip the node say why: it is misconfigured
				}
			}
			if r, ok := err.(*refusal); ok {
				n.tls.Store(r)
			}
			n.mu.Lock()
			n.lastErr = err
			n.mu.Unlock()
		} else if q.payDebts(context.Background(), n) {
			n.mu.Lock()
			// A debt owed while we paid is paid by this same probe, on its next turn.
			done := len(n.debts) == 0
			if done {
				n.probing = false
				n.lastErr = nil
				n.tls.Store(nil) // it answered in plain text
				n.suspect.Store(false)
			}
			n.mu.Unlock()
			if done {
				return
			}
		}
		pause = min(2*pause, q.probePause())
		t.Reset(pause)
	}
}

// ping asks the node whether it answers. A timeout is looked at closer: when the client's own
// dialer is refused, that is the error (go-redis retries refused dials, and its error is then a
// timeout).
func (q *Quorum) ping(n *node) error {
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.nodeTimeout)
	defer cancel()
	err := n.client.Ping(ctx).Err()
	if err == nil || !isTimeout(err) {
		return err
	}
	if derr := q.dialCheck(n); derr != nil {
		return derr
	}
	return &nodeTimeout{after: q.cfg.nodeTimeout}
}

// dialCheck dials the node once with the client's own dialer and reports why the dial failed,
// when that is what a timeout hid (a refusal, a bad certificate); nil if it connected, if the dial
// timed out too (a host that drops connection attempts, or a node that accepts but never finishes
// a TLS handshake: the node's timeout, not a context's deadline), or if there is no dialer to try.
func (q *Quorum) dialCheck(n *node) error {
	if n.dial == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.nodeTimeout)
	defer cancel()
	conn, err := n.dial(ctx)
	if err != nil {
		if isTimeout(err) {
			return nil
		}
		return err
	}
	_ = conn.Close()
	return nil
}

// payDebts sends the cleanups owed to n, oldest first, and reports whether all went through. One
// that fails at the transport stays owed, with those after it.
func (q *Quorum) payDebts(parent context.Context, n *node) bool {
	for {
		n.mu.Lock()
		if len(n.debts) == 0 {
			n.mu.Unlock()
			return true
		}
		c := n.debts[0]
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(parent, q.cfg.nodeTimeout)
		err := run(ctx, n.client, c, nil).Err()
		cancel()
		if isTransportError(err) {
			return false
		}
		n.mu.Lock()
		n.debts = n.debts[1:]
		if len(n.debts) == 0 {
			n.debts = nil
		}
		n.mu.Unlock()
	}
}

// owes reports how many cleanups n is owed (for tests).
func (n *node) owes() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.debts)
}

// run sends one call to one node. A script goes as EVALSHA with its arguments laid out here, the
// keys boxed once (Call.KeyArgs) where the kind has them, rather than through go-redis's Script,
// which boxes every key on every call; a node that lost its script cache gets EVAL.
//
// buf, if not nil, is room for the command's arguments that the caller owns and may reuse once run
// returns (go-redis is done with them then: the command was written, and its reply read or given
// up on).
func run(ctx context.Context, c caller, call Call, buf []any) *redis.Cmd {
	if call.Script == nil {
		return c.Do(ctx, call.Args...)
	}
	cmd := c.Do(ctx, evalShaArgs(call, buf)...)
	// (HasErrorPrefix allocates on every call, nil error or not: errors.As takes its target's
	// address.)
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return call.Script.Eval(ctx, c, call.Keys, call.Args...)
	}
	return cmd
}

// evalShaArgs lays out a script call as one EVALSHA command, with the keys boxed once per name
// (Call.KeyArgs) when the caller has them, in buf when it has room.
func evalShaArgs(call Call, buf []any) []any {
	args := buf[:0]
	if n := 3 + len(call.Keys) + len(call.Args); cap(buf) < n {
		args = make([]any, 0, n)
	}
	args = append(args, argEvalSha, hashArg(call.Script), len(call.Keys))
	if call.KeyArgs != nil {
		args = append(args, call.KeyArgs...)
	} else {
		for _, k := range call.Keys {
			args = append(args, k)
		}
	}
	return append(args, call.Args...)
}

var argEvalSha any = "evalsha"

// textArg is a string handed to go-redis by pointer, so that boxing it as a command argument
// allocates nothing (a string put in an interface is copied to the heap): the keys a prepared
// request keeps, the token a lease keeps. go-redis writes it with MarshalBinary, which lends the
// string's own bytes (the writer only copies them out), and a hook that formats a command's
// arguments, redisotel's say, shows it through String (a *string would show as an address).
// What it points to must never change.
//
// A call's first key stays a plain string: go-redis routes a Cluster command by the text of its
// first key, and gets any other type's text with fmt.Sprint.
type textArg string

func (t *textArg) MarshalBinary() ([]byte, error) {
	return unsafe.Slice(unsafe.StringData(string(*t)), len(*t)), nil
}

func (t *textArg) String() string { return string(*t) }

// hashes holds each script's hash boxed once.
var hashes sync.Map // *redis.Script -> any

func hashArg(s *redis.Script) any {
	if h, ok := hashes.Load(s); ok {
		return h
	}
	h, _ := hashes.LoadOrStore(s, any(s.Hash()))
	return h
}

// queue adds one call to a pipeline, by EVALSHA for a script.
func queue(ctx context.Context, p redis.Pipeliner, call Call) *redis.Cmd {
	if call.Script == nil {
		return p.Do(ctx, call.Args...)
	}
	return p.Do(ctx, evalShaArgs(call, nil)...)
}

// runGuarded sends an acquire call inside MULTI with INFO server, so that the node's uptime is read
// atomically with the acquire (the restart guard, [WithRestartGuard]). It returns the call's
// command and the least time the node can have been up when it ran the call (0 when the uptime
// could not be read, which counts as young: the vote is ignored). A node that lost its script
// cache gets the script and the transaction again.
func runGuarded(ctx context.Context, c caller, call Call) (*redis.Cmd, time.Duration) {
	for attempt := 0; ; attempt++ {
		var info *redis.StringCmd
		var cmd *redis.Cmd
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			info = p.Info(ctx, "server")
			cmd = queue(ctx, p, call)
			return nil
		})
		if err != nil && attempt == 0 && call.Script != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			if lerr := call.Script.Load(ctx, c).Err(); lerr == nil {
				continue
			}
		}
		// TxPipelined always runs the function, so cmd is set, whether or not the transaction
		// went out.
		if err != nil && cmd.Err() == nil {
			cmd.SetErr(err)
		}
		secs, perr := strconv.ParseInt(infoField(info.Val(), "uptime_in_seconds"), 10, 64)
		if perr != nil {
			return cmd, 0
		}
		return cmd, surelyUp(secs)
	}
}

// surelyUp returns the least time a node that reports uptime_in_seconds:secs can have been up.
// Redis computes the figure as the difference of two wall-clock times truncated to the second (its
// cached time now, and its time at start), so it can read 1 a few milliseconds after the start:
// the true uptime is more than secs−1 seconds and less than secs+1. Only the lower bound is sure.
func surelyUp(secs int64) time.Duration {
	if secs <= 1 {
		return 0
	}
	return time.Duration(secs-1) * time.Second
}

// probeKeys are the keys and the channel the probe script uses: under the key prefix, in the hash
// tag "{~probe}", which no name maps to (a name starting with '~' gets another in front).
func (q *Quorum) probeKeys() (keys []string, channel string) {
	base := q.cfg.prefix + "{~probe}"
	return []string{base, base + ":z", base + ":h", base + ":c"}, base + ":wake"
}

// explain runs the probe script on c to name the commands a vague refusal (one from inside a
// script) was about, and returns the refusal in those words; r itself when the probe cannot tell.
func (q *Quorum) explain(ctx context.Context, c redis.UniversalClient, r *refusal) *refusal {
	keys, channel := q.probeKeys()
	refused, err := probeScript.Run(ctx, c, keys, channel).StringSlice()
	if err != nil || len(refused) == 0 {
		return r
	}
	return &refusal{words: "the ACL user may not run what the library's scripts need: " + strings.Join(refused, "; "), err: r.err}
}

// checkTLS starts, in the background, a check of whether n speaks TLS to our plain-text client
// (see tlsCheck), unless one runs or one began less than a second ago; calls whose connection the
// node drops read the result (n.tls). The check belongs to the quorum: Close waits for it.
func (q *Quorum) checkTLS(n *node) {
	now := time.Now().UnixNano()
	if now-n.tlsCheckedAt.Load() < int64(time.Second) || !n.tlsChecking.CompareAndSwap(false, true) {
		return
	}
	n.tlsCheckedAt.Store(now)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		n.tlsChecking.Store(false)
		return
	}
	q.probes.Add(1)
	go func() {
		defer q.probes.Done()
		defer n.tlsChecking.Store(false)
		// Bounded by tlsCheck's own timeouts (a dial and a handshake), which Close waits out.
		if err := q.tlsCheck(context.Background(), n); err != nil {
			n.tls.Store(err.(*refusal))
		} else {
			n.tls.Store(nil)
		}
	}()
}

// caller is what a node's calls are sent through: the node's client, or one connection of it (a
// call whose writes a WAIT must cover, see runAcked).
type caller interface {
	redis.Scripter
	Do(ctx context.Context, args ...any) *redis.Cmd
	Pipeline() redis.Pipeliner
	TxPipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// ackClient returns the client of c that serves key: the Cluster shard's master for a Cluster
// node, else c itself. A WAIT covers the writes of its own connection on one server, so a call
// and its WAIT go to that client, on one connection.
func ackClient(ctx context.Context, c redis.UniversalClient, key string) (*redis.Client, error) {
	switch cc := c.(type) {
	case *redis.ClusterClient:
		return cc.MasterForKey(ctx, key)
	case *redis.Client:
		return cc, nil
	}
	return nil, fmt.Errorf("replica acknowledgement needs a *redis.Client or a *redis.ClusterClient node, not %T", c)
}

// waitCall is the WAIT that follows the calls of an acknowledged write.
func (q *Quorum) waitCall() Call {
	return Call{Args: []any{"wait", q.cfg.ackReplicas, max(q.cfg.ackTimeout.Milliseconds(), 1)}}
}

// runAcked runs call, about the claim whose key is key, on one connection of the client that
// serves key, then WAIT for the configured replicas on that connection (in the same pipeline, or
// after the transaction of a guarded call), and returns the call's command, the number of
// replicas that confirmed its writes, and, guarded, the node's uptime (see runGuarded). The key is
// the claim's, not the call's: a plain command (the fast SET NX) names its key among its
// arguments, not in Keys.
func (q *Quorum) runAcked(ctx context.Context, c redis.UniversalClient, key string, call Call, guarded bool) (cmd *redis.Cmd, acked int64, up time.Duration) {
	rc, err := ackClient(ctx, c, key)
	if err != nil {
		cmd = redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd, 0, 0
	}
	conn := rc.Conn()
	if guarded { // never a Cluster node: NewQuorum refuses the guard there
		defer conn.Close()
		cmd, up = runGuarded(ctx, conn, call)
		if err := cmd.Err(); err != nil && isTransportError(err) {
			return cmd, 0, up
		}
		wait := run(ctx, conn, q.waitCall(), nil)
		acked, _ = wait.Int64() // a failed WAIT confirms nothing
		return cmd, acked, up
	}
	_ = conn.Close()
	cmds, acked, err := q.ackedPipeline(ctx, c, rc, key, []Call{call})
	if err != nil {
		cmd = redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd, 0, 0
	}
	return cmds[0], acked, 0
}

// ackedPipeline sends calls, which all touch key's server, then WAIT, in one pipeline on one
// connection of rc, the client that serves key on node c, and returns their commands and the
// replicas the WAIT counted (0 if it failed). When the server answers MOVED — a Cluster shard
// failed over, and the node's client has not noticed — it has the Cluster client reload its slots
// and sends them once more to the key's new master.
func (q *Quorum) ackedPipeline(ctx context.Context, c redis.UniversalClient, rc *redis.Client, key string, calls []Call) ([]*redis.Cmd, int64, error) {
	all := append(slices.Clip(calls), q.waitCall())
	for attempt := 0; ; attempt++ {
		conn := rc.Conn()
		cmds, err := pipelined(ctx, conn, all)
		_ = conn.Close()
		if attempt == 0 && moved(cmds, err) {
			if next := freshMaster(ctx, c, key, rc); next != nil {
				rc = next
				continue
			}
		}
		if err != nil {
			return nil, 0, err
		}
		if werr := cmds[len(calls)].Err(); werr != nil && refusalOf(werr) != nil {
			return nil, 0, werr // WAIT refused for good (an ACL without it): misconfigured, not a lagging replica
		}
		acked, _ := cmds[len(calls)].Int64() // a failed WAIT confirms nothing
		return cmds[:len(calls)], acked, nil
	}
}

// moved reports whether a pipeline's replies (or its error) say its server no longer serves the
// keys: MOVED, or READONLY from a master demoted to a replica.
func moved(cmds []*redis.Cmd, err error) bool {
	is := func(err error) bool {
		return redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "READONLY")
	}
	if is(err) {
		return true
	}
	for _, c := range cmds {
		if c != nil && is(c.Err()) {
			return true
		}
	}
	return false
}

// freshMaster has Cluster node c reload its view of the slots and returns key's master once it is
// another client than old, or nil when c is not a Cluster client or ctx ends first.
func freshMaster(ctx context.Context, c redis.UniversalClient, key string, old *redis.Client) *redis.Client {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	cc.ReloadState(ctx)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if rc, err := cc.MasterForKey(ctx, key); err == nil && rc != old {
			return rc
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// notReplicated is the vote of a node whose grant or renewal WAIT did not confirm on enough of its
// replicas in time (WithReplicaAck): a failed vote, undone like one.
type notReplicated struct {
	acked, want int64
	timeout     time.Duration
}

func (e *notReplicated) Error() string {
	return fmt.Sprintf("the write reached %d of the %d replicas asked for (lease.WithReplicaAck) within %v", e.acked, e.want, e.timeout)
}
