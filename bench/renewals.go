package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// The renewal-cost measurement (go run . -renewals): how many round trips per node it costs to
// keep many leases alive. It holds 1,000 and then 10,000 leases, acquired at an even pace over 3s
// with a TTL of 3s, on 1 and 3 nodes, and counts the pipelines each node client sends during 6s of
// steady state (6 renewal intervals of TTL/3 = 1s) after the acquisitions.

const (
	renewTTL     = 3 * time.Second
	renewSpread  = 3 * time.Second
	renewObserve = 6 * time.Second
)

// pipeCounter is a go-redis hook that counts the pipelines a client sends and the commands in them.
type pipeCounter struct {
	pipelines, commands atomic.Int64
}

func (*pipeCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*pipeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (p *pipeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p.pipelines.Add(1)
		p.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

type renewalResult struct {
	nodes, leases     int
	pipelinesPerTick  float64 // per node per TTL/3
	commandsPerPipe   float64
	lost              int
	acquireSpread     time.Duration
	pipelinesObserved int64
}

// renewals runs the measurement and writes its table to w.
func renewals(ctx context.Context, w io.Writer) error {
	srv, err := startServers(ctx, 3)
	if err != nil {
		return err
	}
	defer srv.kill()
	var results []renewalResult
	for _, nodes := range []int{1, 3} {
		for _, n := range []int{1000, 10000} {
			r, err := measureRenewals(ctx, srv.addrs(nodes), n)
			if err != nil {
				return fmt.Errorf("renewals, %d leases on %d nodes: %w", n, nodes, err)
			}
			results = append(results, r)
			fmt.Fprintf(w, "held %d leases on %d node(s): %.1f pipelines per node per TTL/3, %.0f renewals each, %d lost\n",
				r.leases, r.nodes, r.pipelinesPerTick, r.commandsPerPipe, r.lost)
		}
	}
	fmt.Fprintf(w, "\n| nodes | leases held (acquired over %v, TTL %v) | pipelines per node per TTL/3 | renewals per pipeline | leases lost |\n|---|---|---|---|---|\n", renewSpread, renewTTL)
	for _, r := range results {
		fmt.Fprintf(w, "| %d | %d | %.1f | %.0f | %d |\n", r.nodes, r.leases, r.pipelinesPerTick, r.commandsPerPipe, r.lost)
	}
	return nil
}

func measureRenewals(ctx context.Context, addrs []string, n int) (renewalResult, error) {
	res := renewalResult{nodes: len(addrs), leases: n}
	clients := make([]redis.UniversalClient, len(addrs))
	counters := make([]*pipeCounter, len(addrs))
	for i, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true})
		counters[i] = &pipeCounter{}
		c.AddHook(counters[i])
		clients[i] = c
		defer c.Close()
	}
	q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(renewTTL))
	if err != nil {
		return res, err
	}
	defer q.Close(context.Background())

	held := make([]*lease.Lease, n)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * renewSpread / time.Duration(n))))
				l, err := mutex.New(q, fmt.Sprintf("renewals:%d:%d", n, i)).Obtain(ctx)
				if err != nil {
					errs <- err
					return
				}
				held[i] = l
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return res, err
	}
	res.acquireSpread = time.Since(start)
	// Let the acquisitions' first renewals pass, then count.
	time.Sleep(renewTTL / 3)
	base := make([]int64, len(counters))
	baseCmds := make([]int64, len(counters))
	for i, c := range counters {
		base[i], baseCmds[i] = c.pipelines.Load(), c.commands.Load()
	}
	select {
	case <-time.After(renewObserve):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	var pipes, cmds int64
	for i, c := range counters {
		pipes += c.pipelines.Load() - base[i]
		cmds += c.commands.Load() - baseCmds[i]
	}
	res.pipelinesObserved = pipes
	ticks := float64(renewObserve) / float64(renewTTL/3)
	res.pipelinesPerTick = float64(pipes) / float64(len(addrs)) / ticks
	if pipes > 0 {
		res.commandsPerPipe = float64(cmds) / float64(pipes)
	}
	for _, l := range held {
		if l.Err() != nil {
			res.lost++
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range held {
		_ = l.Release(rctx)
	}
	return res, nil
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}
