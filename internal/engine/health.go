package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeHealth is one node's answer to Quorum.Health (package lease documents the fields).
type NodeHealth struct {
	Addr     string
	Err      error
	Latency  time.Duration
	Version  string
	Role     string
	Replicas int
	AOF      bool
	Fsync    string
	Eviction string
	Uptime   time.Duration
	ACL      error
	Warnings []string
}

// Health asks every node, in parallel, one pipeline each, what NewQuorum checks at start-up, and
// returns it as data. The error is non-nil only for a nil or closed quorum, or a nil or ended ctx.
func (q *Quorum) Health(ctx context.Context) ([]NodeHealth, error) {
	if err := q.adminCheck(ctx); err != nil {
		return nil, err
	}
	out := make([]NodeHealth, len(q.nodes))
	keys, channel := q.probeKeys()
	// Not the suspect-skipping fan-out: health is asked of every node, hung ones included.
	timeout := max(q.cfg.nodeTimeout, time.Second)
	// A node's timeout is typed against the caller's deadline, not the node call's own.
	caller := ctx
	q.fanoutTimeout(ctx, timeout, taskFunc(func(ctx context.Context, n *node, _ redis.UniversalClient) {
		// A suspect node's task gets no deadline of the fan-out's: give it its own.
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		h := &out[n.index]
		h.Addr = n.addr
		c := n.client
		start := time.Now()
		if err := c.Ping(ctx).Err(); err != nil {
			if r := refusalOf(err); r != nil {
				h.ACL = &misconfigured{[]error{&NodeError{Index: n.index, Addr: n.addr, Err: r}}}
			}
			h.Err = q.nodeErrorAfter(caller, n, err, timeout)
			return
		}
		h.Latency = time.Since(start)
		pipe := c.Pipeline()
		info := pipe.Info(ctx, "server", "persistence", "replication")
		conf := pipe.ConfigGet(ctx, "*") // maxmemory-policy and appendfsync; one command for both
		probe := pipe.Eval(ctx, probeScript.src, keys, channel)
		_, _ = pipe.Exec(ctx)
		if v, err := info.Result(); err == nil {
			h.Version = infoField(v, "redis_version")
			h.Role = infoField(v, "role")
			h.Replicas, _ = strconv.Atoi(infoField(v, "connected_slaves"))
			h.AOF = infoField(v, "aof_enabled") == "1"
			if s, err := strconv.ParseInt(infoField(v, "uptime_in_seconds"), 10, 64); err == nil {
				h.Uptime = time.Duration(s) * time.Second
			}
		} else {
			h.Warnings = append(h.Warnings, "INFO not answered: "+err.Error())
		}
		if m, err := conf.Result(); err == nil {
			h.Eviction, h.Fsync = m["maxmemory-policy"], m["appendfsync"]
		} else {
			h.Warnings = append(h.Warnings, "CONFIG GET not answered: "+err.Error())
		}
		if cc, ok := c.(*redis.ClusterClient); ok {
			h.Role = "cluster"
			if nodes, err := cc.ClusterNodes(ctx).Result(); err == nil {
				h.Replicas = strings.Count(nodes, "slave")
			}
		}
		switch refused, err := probe.StringSlice(); {
		case refusalOf(err) != nil:
			h.ACL = &misconfigured{[]error{&NodeError{Index: n.index, Addr: n.addr, Err: refusalOf(err)}}}
		case err == nil && len(refused) > 0:
			h.ACL = &misconfigured{[]error{&NodeError{Index: n.index, Addr: n.addr, Err: &refusal{words: "the ACL user may not run what the library's scripts need",
				err: errors.New(strings.Join(refused, "; "))}}}}
		case err != nil:
			h.Warnings = append(h.Warnings, "the permission probe failed: "+err.Error())
		}
		h.Warnings = append(h.Warnings, q.setUpWarnings(n, *h)...)
	}))
	return out, nil
}

// setUpWarnings says, in words, what in a node's set-up can break exclusion (DESIGN §7).
func (q *Quorum) setUpWarnings(n *node, h NodeHealth) []string {
	var w []string
	if h.Eviction != "" && h.Eviction != "noeviction" {
		w = append(w, fmt.Sprintf("maxmemory-policy %s may evict lock keys under memory pressure; use noeviction", h.Eviction))
	}
	if h.Version != "" && !h.AOF && q.cfg.guard == 0 {
		w = append(w, "no AOF persistence: a restart forgets the locks held (enable appendonly, or use lease.WithRestartGuard)")
	}
	if h.AOF && h.Fsync != "" && h.Fsync != "always" && q.cfg.guard == 0 {
		w = append(w, fmt.Sprintf("appendfsync %s: a crash loses the last writes, locks among them (use appendfsync always, or lease.WithRestartGuard)", h.Fsync))
	}
	_, sentinel := n.client.(*redis.Client)
	// A Cluster node's replicas are counted over every shard, while WAIT counts one shard's: the
	// comparison is made for plain and Sentinel nodes only.
	_, cluster := n.client.(*redis.ClusterClient)
	if q.cfg.ackReplicas > 0 && h.Version != "" && !cluster {
		if h.Replicas < q.cfg.ackReplicas {
			w = append(w, fmt.Sprintf("%d replicas, fewer than the %d lease.WithReplicaAck asks for: grants and renewals fail", h.Replicas, q.cfg.ackReplicas))
		} else if h.Replicas > q.cfg.ackReplicas {
			w = append(w, fmt.Sprintf("%d replicas, more than the %d lease.WithReplicaAck waits for: a failover can promote one that missed a lock's write", h.Replicas, q.cfg.ackReplicas))
		}
	} else if sentinel = sentinel && n.addr == ""; q.cfg.ackReplicas == 0 && (sentinel || h.Replicas > 0) {
		w = append(w, fmt.Sprintf("%d replicas: a failover can promote one that has not received a lock's write yet", h.Replicas))
	}
	// uptime_in_seconds is whole seconds and can read 1 a tenth of a second after the start: the
	// server may have been up a second less than it says.
	if h.Version != "" && h.Uptime < q.cfg.ttl+time.Second && !h.AOF {
		w = append(w, fmt.Sprintf("up for less than the TTL (%v): a lock held before a restart may have been forgotten", q.cfg.ttl))
	}
	if h.Role == "slave" {
		w = append(w, "the node is a replica: it refuses writes")
	}
	return w
}
