// Rwmutex shows a quorumsync reader-writer lock guarding a shared configuration: several readers,
// each its own process-like worker, read it under read locks that overlap, while one writer keeps
// reloading it under the write lock — and gets in even though readers never stop coming.
//
// Each worker has its own Redis clients and its own [lease.Quorum], as separate processes would.
// The configuration is a version number in Redis. Readers take [rwmutex.RWMutex.RDo], read it and
// hold the lock a little while; the writer takes [rwmutex.RWMutex.Do] every few hundred
// milliseconds and bumps the version. The program prints each reload: how long the writer waited,
// and how many readers held at once meanwhile. It checks that no reader ever saw the writer inside
// and the writer never saw a reader, and exits with status 1 if either happened.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them:
//
//	go run ./examples/rwmutex
//
// To use your own servers, list independent Redis masters in REDIS_ADDRS, comma-separated, as URLs
// (redis://, rediss:// for TLS, unix:// for a socket; see redis.ParseURL) or as plain host:port.
// The configuration is kept on the first server under "rwmutex-example:config" and deleted at the
// end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/rwmutex
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/rwmutex
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
	"github.com/quorumsync/quorumsync/rwmutex"
)

const (
	lockName  = "rwmutex-example:config"
	configKey = "rwmutex-example:config" // on the first node; the lock's keys have a hash tag, so no clash
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
		fmt.Fprintf(os.Stderr, "rwmutex: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}
	res, err := run(ctx, os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rwmutex:", err)
		return 1
	}
	if res.Violations > 0 {
		return 1
	}
	return 0
}

// config is what the demo runs on and how much work it does.
type config struct {
	URLs     string // Redis servers, as REDIS_ADDRS lists them; empty: start 3 in-process servers
	Readers  int
	ReadHold time.Duration // how long a reader holds the read lock
	Reloads  int           // how many times the writer reloads the configuration
	Every    time.Duration // the writer's pause between reloads
	TTL      time.Duration
	// NodeTimeout is the per-node timeout; 0: the quorum's default (a tenth of the TTL, at most
	// 250ms).
	NodeTimeout time.Duration
}

func defaultConfig() config {
	return config{Readers: 4, ReadHold: 40 * time.Millisecond, Reloads: 5, Every: 300 * time.Millisecond, TTL: 2 * time.Second}
}

// result is what one run observed.
type result struct {
	Mode        string
	Nodes       int
	Reads       int64           // read sections completed
	MostReaders int32           // readers holding at once, at most
	Waits       []time.Duration // the writer's wait for each reload
	ReadsDuring []int64         // reads completed while the writer was waiting or between its reloads
	Violations  int64           // a reader saw the writer inside, or the writer a reader
	Version     int64           // the configuration's last version
}

// worker is one process-like participant: its own clients and quorum.
type worker struct {
	clients []redis.UniversalClient
	q       *lease.Quorum
	rw      *rwmutex.RWMutex
}

func newWorker(ctx context.Context, urls []string, ttl, nodeTimeout time.Duration) (*worker, error) {
	w := &worker{}
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			w.closeClients()
			return nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		opt.ContextTimeoutEnabled = true // NewQuorum requires it, so that its per-node deadlines reach the sockets
		w.clients = append(w.clients, redis.NewClient(opt))
	}
	opts := []lease.Option{lease.WithTTL(ttl)}
	if nodeTimeout > 0 {
		opts = append(opts, lease.WithNodeTimeout(nodeTimeout))
	}
	q, err := lease.NewQuorum(ctx, w.clients, opts...)
	if err != nil {
		w.closeClients()
		return nil, err
	}
	w.q, w.rw = q, rwmutex.New(q, lockName)
	return w, nil
}

func (w *worker) close(ctx context.Context) error {
	err := w.q.Close(ctx)
	w.closeClients()
	return err
}

func (w *worker) closeClients() {
	for _, c := range w.clients {
		_ = c.Close()
	}
}

func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS"}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	servers, err := quorumsynctest.Use(cfg.URLs, 3)
	if err != nil {
		return res, err
	}
	defer servers.Close() // runs last: after every worker has closed; it stops only the servers it started
	urls := servers.URLs()
	if servers.Embedded() {
		res.Mode = "embedded"
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}
	var all []*worker
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, w := range all {
			err = errors.Join(err, w.close(cctx))
		}
	}()
	newW := func() (*worker, error) {
		w, err := newWorker(ctx, urls, cfg.TTL, cfg.NodeTimeout)
		if err == nil {
			all = append(all, w)
		}
		return w, err
	}
	writer, err := newW()
	if err != nil {
		return res, err
	}
	res.Nodes = len(writer.clients)
	store := writer.clients[0]
	if err := store.Set(ctx, configKey, 1, 0).Err(); err != nil {
		return res, err
	}
	defer store.Del(context.WithoutCancel(ctx), configKey)
	say("quorum: %d node(s), majority %d; %d readers holding %v each, back to back, and 1 writer",
		res.Nodes, res.Nodes/2+1, cfg.Readers, cfg.ReadHold)

	var readersIn, writersIn atomic.Int32
	var reads atomic.Int64
	var most atomic.Int32
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Readers)
	for i := range cfg.Readers {
		r, err := newW()
		if err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Staggered starts: the read locks overlap, so the lock is never free of readers.
			time.Sleep(time.Duration(i) * cfg.ReadHold / time.Duration(cfg.Readers))
			for readCtx.Err() == nil {
				err := r.rw.RDo(readCtx, func(ctx context.Context) error {
					n := readersIn.Add(1)
					defer readersIn.Add(-1)
					for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
					}
					if writersIn.Load() != 0 {
						atomic.AddInt64(&res.Violations, 1)
					}
					if _, err := r.clients[0].Get(ctx, configKey).Int64(); err != nil {
						return err
					}
					select {
					case <-time.After(cfg.ReadHold):
					case <-ctx.Done():
					}
					return nil
				})
				if err != nil && readCtx.Err() == nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(2 * cfg.ReadHold) // the readers are flowing
	start := time.Now()
	last := reads.Load()
	for range cfg.Reloads {
		waitFrom := time.Now()
		var waited time.Duration
		err := writer.rw.Do(ctx, func(ctx context.Context) error {
			waited = time.Since(waitFrom)
			writersIn.Add(1)
			defer writersIn.Add(-1)
			if n := readersIn.Load(); n != 0 {
				atomic.AddInt64(&res.Violations, 1)
			}
			v, err := store.Incr(ctx, configKey).Result()
			res.Version = v
			return err
		})
		if err != nil {
			return res, fmt.Errorf("reload: %w", err)
		}
		now, mostSince := reads.Load(), most.Swap(0)
		res.Waits = append(res.Waits, waited)
		res.ReadsDuring = append(res.ReadsDuring, now-last)
		res.MostReaders = max(res.MostReaders, mostSince)
		say("t=%-6v writer reloaded the configuration to v%d after waiting %v; before that, %d reads, up to %d readers at once",
			time.Since(start).Round(time.Millisecond), res.Version, waited.Round(time.Millisecond), now-last, mostSince)
		last = now
		time.Sleep(cfg.Every)
	}
	stopReading()
	wg.Wait()
	close(errs)
	for e := range errs {
		return res, fmt.Errorf("reader: %w", e)
	}
	res.Reads = reads.Load()
	res.MostReaders = max(res.MostReaders, most.Load())
	longest := time.Duration(0)
	for _, w := range res.Waits {
		longest = max(longest, w)
	}
	say("readers: %d read sections, up to %d holding at once", res.Reads, res.MostReaders)
	say("writer: %d reloads, the longest wait %v, while readers kept coming (each holds %v)", len(res.Waits), longest.Round(time.Millisecond), cfg.ReadHold)
	if res.Violations == 0 {
		say("exclusion: no reader ever saw the writer inside, and the writer never saw a reader")
	} else {
		say("exclusion VIOLATED %d times", res.Violations)
	}
	return res, nil
}
