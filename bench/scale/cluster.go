package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// Row 4: a Redis Cluster of shards masters as the one node of a quorum (one redis.ClusterClient),
// locking and unlocking names distinct names with a few goroutines.

type clusterResult struct {
	Shards    int
	Names     int
	Workers   int
	Elapsed   time.Duration
	Calls     []int64 // per shard: server commands (script-internal ones included)
	EvalSHA   []int64 // per shard: EVALSHA calls
	Left      int
	Errors    int
	FirstErr  string
	SetupTime time.Duration
}

func (r clusterResult) ops() float64 { return float64(r.Names) / r.Elapsed.Seconds() }

func (r clusterResult) total() int64 {
	var t int64
	for _, c := range r.Calls {
		t += c
	}
	return t
}

// shares returns each shard's share of the commands, in %.
func (r clusterResult) shares() []float64 {
	t := r.total()
	out := make([]float64, len(r.Calls))
	for i, c := range r.Calls {
		if t > 0 {
			out[i] = 100 * float64(c) / float64(t)
		}
	}
	return out
}

func runCluster(ctx context.Context, shards, names, workers int) (clusterResult, error) {
	res := clusterResult{Shards: shards, Names: names, Workers: workers}
	t := time.Now()
	nodes, err := startCluster(ctx, shards)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, PoolSize: 2 * workers})
	defer cc.Close()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{cc}, lease.WithTTL(10*time.Second), lease.WithLogger(quietLogger))
	if err != nil {
		return res, err
	}
	defer q.Close(context.Background())
	res.SetupTime = time.Since(t)
	// Warm the client's slot map and every shard's connections, then count from zero.
	warm := mutex.New(q, "warm")
	if err := warm.Lock(ctx); err != nil {
		return res, err
	}
	if err := warm.Unlock(ctx); err != nil {
		return res, err
	}
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		return res, err
	}
	before := make([]map[string]int64, len(nodes))
	for i, n := range nodes {
		if before[i], err = commandStats(ctx, n); err != nil {
			return res, err
		}
	}
	var errs atomic.Int64
	var first atomic.Value
	t = time.Now()
	parallel(names, workers, func(i int) {
		m := mutex.New(q, "n:"+strconv.Itoa(i))
		err := m.Lock(ctx)
		if err == nil {
			err = m.Unlock(ctx)
		}
		if err != nil && errs.Add(1) == 1 {
			first.Store(err.Error())
		}
	})
	res.Elapsed = time.Since(t)
	res.Errors = int(errs.Load())
	if res.Errors > 0 {
		res.FirstErr, _ = first.Load().(string)
	}
	for i, n := range nodes {
		after, err := commandStats(ctx, n)
		if err != nil {
			return res, err
		}
		var calls int64
		for k, v := range after {
			if !notCounted(k) {
				calls += v - before[i][k]
			}
		}
		res.Calls = append(res.Calls, calls)
		res.EvalSHA = append(res.EvalSHA, after["evalsha"]-before[i]["evalsha"])
		left, err := countKeys(ctx, n, "quorumsync:{n:*")
		if err != nil {
			return res, err
		}
		res.Left += left
	}
	return res, nil
}
