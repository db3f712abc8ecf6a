// Semaphore shows a quorumsync semaphore bounding how many jobs, across several processes, use a
// rate-limited resource at once.
//
// Three clients, each with its own Redis clients and its own [lease.Quorum] as separate processes
// would have, run a pool of worker goroutines each. Every job takes one permit of a semaphore of
// capacity 4 with [semaphore.Semaphore.Do], then "calls the resource": it counts itself in and out
// in Redis (INCR/DECR, so every process sees the same count) and records the highest count it saw.
// The program prints how many jobs each client ran and the highest concurrency observed, and exits
// with status 1 if it was ever above 4.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them:
//
//	go run ./examples/semaphore
//
// To use your own servers, list independent Redis masters in REDIS_ADDRS, comma-separated, as URLs
// (redis://, rediss:// for TLS, unix:// for a socket; see redis.ParseURL) or as plain host:port.
// The count is kept on the first server under "semaphore-example:in-flight" and deleted at the end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/semaphore
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/semaphore
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/quorumsynctest"
	"github.com/quorumsync/quorumsync/semaphore"
)

const (
	semName  = "semaphore-example:api"
	countKey = "semaphore-example:in-flight" // on the first node
)

func main() { os.Exit(mainCode()) }

func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.URLs = os.Getenv("REDIS_ADDRS")
	if cfg.URLs != "" && strings.Trim(cfg.URLs, ", \t") == "" {
		fmt.Fprintf(os.Stderr, "semaphore: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}
	res, err := run(ctx, os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "semaphore:", err)
		return 1
	}
	if res.Highest > cfg.Permits {
		return 1
	}
	return 0
}

// config is what the demo runs on and how much work it does.
type config struct {
	URLs    string // Redis servers, as REDIS_ADDRS lists them; empty: start 3 in-process servers
	Clients int    // process-like clients
	Workers int    // worker goroutines per client
	Jobs    int    // jobs per worker
	Permits int64  // the semaphore's capacity
	JobTime time.Duration
	TTL     time.Duration
	// NodeTimeout is the per-node timeout; 0: the quorum's default (a tenth of the TTL, at most
	// 250ms).
	NodeTimeout time.Duration
}

func defaultConfig() config {
	return config{Clients: 3, Workers: 4, Jobs: 10, Permits: 4, JobTime: 20 * time.Millisecond, TTL: 2 * time.Second}
}

// result is what one run observed.
type result struct {
	Mode    string
	Nodes   int
	Jobs    []int64 // jobs run, per client
	Highest int64   // the highest count of jobs inside the resource at once
	Elapsed time.Duration
}

type client struct {
	rdbs []redis.UniversalClient
	q    *lease.Quorum
	sem  *semaphore.Semaphore
}

func newClient(ctx context.Context, urls []string, cfg config) (*client, error) {
	c := &client{}
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			c.closeClients()
			return nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		opt.ContextTimeoutEnabled = true // NewQuorum requires it, so that its per-node deadlines reach the sockets
		c.rdbs = append(c.rdbs, redis.NewClient(opt))
	}
	opts := []lease.Option{lease.WithTTL(cfg.TTL)}
	if cfg.NodeTimeout > 0 {
		opts = append(opts, lease.WithNodeTimeout(cfg.NodeTimeout))
	}
	q, err := lease.NewQuorum(ctx, c.rdbs, opts...)
	if err != nil {
		c.closeClients()
		return nil, err
	}
	c.q, c.sem = q, semaphore.New(q, semName, cfg.Permits)
	return c, nil
}

func (c *client) close(ctx context.Context) error {
	err := c.q.Close(ctx)
	c.closeClients()
	return err
}

func (c *client) closeClients() {
	for _, r := range c.rdbs {
		_ = r.Close()
	}
}

func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS"}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	servers, err := quorumsynctest.Use(cfg.URLs, 3)
	if err != nil {
		return res, err
	}
	defer servers.Close() // runs last: after every client has closed; it stops only the servers it started
	urls := servers.URLs()
	if servers.Embedded() {
		res.Mode = "embedded"
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}
	var clients []*client
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, c := range clients {
			err = errors.Join(err, c.close(cctx))
		}
	}()
	for range cfg.Clients {
		c, err := newClient(ctx, urls, cfg)
		if err != nil {
			return res, err
		}
		clients = append(clients, c)
	}
	res.Nodes = len(clients[0].rdbs)
	count := clients[0].rdbs[0]
	if err := count.Del(ctx, countKey).Err(); err != nil {
		return res, err
	}
	defer count.Del(context.WithoutCancel(ctx), countKey)
	say("quorum: %d node(s), majority %d; %d clients × %d workers share %d permits; each job holds one for %v",
		res.Nodes, res.Nodes/2+1, cfg.Clients, cfg.Workers, cfg.Permits, cfg.JobTime)

	var highest atomic.Int64
	res.Jobs = make([]int64, cfg.Clients)
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Clients*cfg.Workers)
	start := time.Now()
	for ci, c := range clients {
		for range cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range cfg.Jobs {
					err := c.sem.Do(ctx, 1, func(ctx context.Context) error {
						// The resource: count this job in, hold it, count it out. The count lives
						// in Redis, so it is the same for every client.
						n, err := c.rdbs[0].Incr(ctx, countKey).Result()
						if err != nil {
							return err
						}
						for old := highest.Load(); n > old && !highest.CompareAndSwap(old, n); old = highest.Load() {
						}
						time.Sleep(cfg.JobTime)
						return c.rdbs[0].Decr(ctx, countKey).Err()
					})
					if err != nil {
						errs <- err
						return
					}
					atomic.AddInt64(&res.Jobs[ci], 1)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		return res, fmt.Errorf("job: %w", e)
	}
	res.Elapsed = time.Since(start)
	res.Highest = highest.Load()
	var total int64
	for i, n := range res.Jobs {
		say("client %d ran %d jobs", i+1, n)
		total += n
	}
	say("%d jobs in %v: %.0f jobs/s (%d permits held %v each allow at most %.0f jobs/s)",
		total, res.Elapsed.Round(time.Millisecond), float64(total)/res.Elapsed.Seconds(), cfg.Permits, cfg.JobTime, float64(cfg.Permits)/cfg.JobTime.Seconds())
	if res.Highest <= cfg.Permits {
		say("highest concurrency observed: %d (permits: %d)", res.Highest, cfg.Permits)
	} else {
		say("highest concurrency observed: %d, MORE than the %d permits", res.Highest, cfg.Permits)
	}
	return res, nil
}
