// Quickstart shows a quorumsync mutex keeping a shared counter correct across workers that behave
// like separate processes, and what happens when a holder crashes.
//
// Several workers, each with its own Redis clients and its own [lease.Quorum], increment a counter
// stored in Redis with a deliberately non-atomic read-modify-write (GET, a short sleep, SET). The
// program first runs them without the lock to show that increments get lost, then under
// mutex.New(q, "quickstart:counter"): every increment inside [mutex.Mutex.Do], the final read
// under Lock/Unlock. Before they start, one more worker locks the mutex (TryLock elsewhere then
// fails with [lease.ErrNotAcquired]) and crashes without unlocking: the others get the lock only
// when its lease expires on the servers, about one TTL (1s here) later. It prints how long that
// took, then "final count: X (expected Y)", and exits with status 1 if X differs from Y.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them:
//
//	go run ./examples/quickstart
//
// To use your own servers, list independent Redis masters (one or more; 3 or 5 make a real
// quorum) in REDIS_ADDRS, comma-separated, as URLs (redis://, rediss:// for TLS, unix:// for a
// socket; see redis.ParseURL) or as plain host:port. The counter is kept on the first server under
// "quickstart:counter:value" and deleted at the end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/quickstart
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/quickstart
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
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

const (
	lockName   = "quickstart:counter"
	counterKey = "quickstart:counter:value" // on the first node
	// embeddedNodes is the quorum size without REDIS_ADDRS: N=3, majority 2.
	embeddedNodes = 3
	// rmwPause is the sleep between GET and SET: it widens the window in which, without the
	// lock, two workers read the same value and one increment is lost.
	rmwPause = time.Millisecond
)

func main() { os.Exit(mainCode()) }

// mainCode is main without os.Exit, so that its deferred calls run.
func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	cfg := defaultConfig()
	cfg.URLs = os.Getenv("REDIS_ADDRS")
	if cfg.URLs != "" && strings.Trim(cfg.URLs, ", \t") == "" {
		fmt.Fprintf(os.Stderr, "quickstart: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}
	res, err := run(ctx, os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		return 1
	}
	if res.Final != res.Expected {
		return 1
	}
	return 0
}

// config is what the demo runs on and how much work it does.
type config struct {
	URLs       string // Redis servers, as REDIS_ADDRS lists them; empty: start embeddedNodes in-process servers
	Workers    int    // workers that increment the counter (the crashing one comes on top)
	Increments int    // increments per worker
	TTL        time.Duration
}

func defaultConfig() config {
	return config{Workers: 4, Increments: 25, TTL: time.Second}
}

// result is what one run observed.
type result struct {
	Mode     string // "embedded" or "REDIS_ADDRS"
	Nodes    int
	Majority int

	// WithoutLock is what the counter reached when the same increments ran without the lock.
	WithoutLock int64
	// TryLockErr is TryLock's error while the crashed worker held the lock.
	TryLockErr error

	// CrashedAt is when the crashed worker, holding the lock, lost its connections.
	CrashedAt time.Time
	// CrashValidUntil is the end of the crashed worker's lease validity, on this process's clock.
	CrashValidUntil time.Time
	// FirstLockAfterCrash is when another worker first held the lock after the crash.
	FirstLockAfterCrash time.Time
	// CrashLeaseErr is the crashed lease's Err as its own watchdog saw it: lost, expired.
	CrashLeaseErr error

	// UnlockUnreachable counts the unlocks, after a successful increment, that could not reach a
	// majority of the nodes in time.
	UnlockUnreachable int
	// FirstWait is, per worker, how long it waited for the lock in its first increment (the crashed
	// holder's leftover time, then the others ahead of it); LongestWait is the longest wait of the
	// increments after that.
	FirstWait, LongestWait []time.Duration

	Final, Expected int64
}

// Blocked is how long the crashed holder kept the other workers out.
func (r *result) Blocked() time.Duration { return r.FirstLockAfterCrash.Sub(r.CrashedAt) }

// run runs the demo on cfg.URLs (or on embedded servers), narrating to out. It returns an error
// when something failed along the way; a wrong final count is not an error but shows in the
// result.
func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS", Expected: int64(cfg.Workers * cfg.Increments)}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	if cfg.Workers < 1 || cfg.Increments < 1 {
		return res, fmt.Errorf("need at least one worker and one increment, got %d and %d", cfg.Workers, cfg.Increments)
	}

	servers, err := quorumsynctest.Use(cfg.URLs, embeddedNodes)
	if err != nil {
		return res, err
	}
	// Deferred first, so it runs last: after every worker has closed its quorum and clients.
	// (It stops only the servers it started, never yours.)
	defer servers.Close()
	urls := servers.URLs()
	if servers.Embedded() {
		res.Mode = "embedded"
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}

	var all []*worker
	defer func() {
		// Close even when ctx has ended, so nothing is left running; bounded all the same.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, w := range all {
			err = errors.Join(err, w.close(cctx))
		}
	}()
	workers := make([]*worker, cfg.Workers)
	for i := range workers {
		w, err := newWorker(ctx, fmt.Sprintf("worker %d", i+1), urls, cfg.TTL)
		if err != nil {
			return res, err
		}
		workers[i] = w
		all = append(all, w)
	}
	// The crashing worker's lease will be lost, which a Mutex reports to its error handler (by
	// default a log line at level Error). Here that loss is the point of the demo: it is read from
	// the lease below instead.
	crasher, err := newWorker(ctx, "crasher", urls, cfg.TTL, mutex.WithErrorHandler(func(error) {}))
	if err != nil {
		return res, err
	}
	all = append(all, crasher)
	first := workers[0]
	res.Nodes = len(first.clients)
	res.Majority = res.Nodes/2 + 1
	say("quorum: %d node(s), majority %d, lease TTL %v, renewed every %v while its holder lives",
		res.Nodes, res.Majority, cfg.TTL, ms(cfg.TTL/3))
	say("workers: %d, plus 1 that will crash; each has its own clients and quorum, like separate processes", cfg.Workers)

	// 1. Without the lock, the read-modify-write loses increments.
	if err := first.clients[0].Set(ctx, counterKey, 0, 0).Err(); err != nil {
		return res, fmt.Errorf("reset counter: %w", err)
	}
	err = forEach(workers, func(_ int, w *worker) error {
		for range cfg.Increments {
			if err := increment(ctx, w.clients[0]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("without the lock: %w", err)
	}
	if res.WithoutLock, err = first.clients[0].Get(ctx, counterKey).Int64(); err != nil {
		return res, fmt.Errorf("read counter: %w", err)
	}
	say("without the lock: %d x %d increments left the counter at %d of %d (lost updates)",
		cfg.Workers, cfg.Increments, res.WithoutLock, res.Expected)
	if err := first.clients[0].Set(ctx, counterKey, 0, 0).Err(); err != nil {
		return res, fmt.Errorf("reset counter: %w", err)
	}

	// 2. A worker takes the lock; elsewhere TryLock fails at once.
	crashLease, err := crasher.m.Obtain(ctx)
	if err != nil {
		return res, fmt.Errorf("crasher: lock: %w", err)
	}
	res.CrashValidUntil = crashLease.Until()
	say("crasher: locked %q, lease valid for %v", lockName, ms(time.Until(res.CrashValidUntil)))
	res.TryLockErr = first.m.TryLock(ctx)
	switch {
	case res.TryLockErr == nil:
		_ = first.m.Unlock(ctx)
		return res, fmt.Errorf("%s: TryLock succeeded while the crasher held the lock", first.name)
	case !errors.Is(res.TryLockErr, lease.ErrNotAcquired):
		return res, fmt.Errorf("%s: TryLock: %w", first.name, res.TryLockErr)
	}
	say("%s: TryLock while the crasher holds it: %v (errors.Is(err, lease.ErrNotAcquired): true)", first.name, res.TryLockErr)

	// 3. It dies holding the lock.
	crasher.crash()
	res.CrashedAt = time.Now()
	say("crasher: crashed without unlocking: its connections are cut, so nothing renews or releases its lease")

	// 4. The others increment under the lock; they get it once the crashed lease expires.
	say("workers: %d increments each, every one inside m.Do (GET, %v sleep, SET)", cfg.Increments, rmwPause)
	var (
		mu          sync.Mutex
		firstLock   time.Time
		unreachable atomic.Int64
	)
	res.FirstWait = make([]time.Duration, len(workers))
	res.LongestWait = make([]time.Duration, len(workers))
	err = forEach(workers, func(i int, w *worker) error {
		for k := range cfg.Increments {
			var fnErr error
			asked := time.Now()
			err := w.m.Do(ctx, func(ctx context.Context) error {
				got := time.Now()
				if k == 0 {
					res.FirstWait[i] = got.Sub(asked)
				} else {
					res.LongestWait[i] = max(res.LongestWait[i], got.Sub(asked))
				}
				mu.Lock()
				if firstLock.IsZero() {
					firstLock = got
				}
				mu.Unlock()
				// ctx ends if the lease is lost: the increment then stops instead of writing
				// unprotected. (A SET already on the wire may still land; fencing tokens guard
				// a resource against that.)
				fnErr = increment(ctx, w.clients[0])
				return fnErr
			})
			switch {
			case err == nil:
			case fnErr == nil && unlockUnreachable(err):
				unreachable.Add(1)
			default:
				return fmt.Errorf("%s: %w", w.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if res.UnlockUnreachable = int(unreachable.Load()); res.UnlockUnreachable > 0 {
		say("workers: %d unlock(s) could not reach a majority (slow nodes); their keys expired within the TTL",
			res.UnlockUnreachable)
	}
	res.FirstLockAfterCrash = firstLock
	say("workers: blocked %v by the crashed holder, until its lease expired on the servers",
		ms(res.Blocked()))
	if after := firstLock.Sub(res.CrashValidUntil); after > 0 {
		say("workers: the first lock came %v after the crashed lease's validity ended, never before", ms(after))
	} else {
		return res, fmt.Errorf("exclusion broken: a worker got the lock %v before the crashed lease's validity ended", -after)
	}

	// The crashed worker's own watchdog, still running in this process, gave its lease up at the
	// end of its validity.
	select {
	case <-crashLease.Done():
		res.CrashLeaseErr = crashLease.Err()
	case <-ctx.Done():
		return res, ctx.Err()
	}
	say("crasher: its own watchdog gave the lease up: %v", res.CrashLeaseErr)
	for i, w := range workers {
		say("%s: %d increments; waited %v for its first lock, then at most %v", w.name, cfg.Increments,
			ms(res.FirstWait[i]), ms(res.LongestWait[i]))
	}
	// Closing the crashed worker's quorum tries to release its lease through closed clients; the
	// errors that come out of that are expected, and close ignores them.
	_ = crasher.close(ctx)

	// 5. Read the result under the lock, then leave the servers as we found them.
	if err := first.m.Lock(ctx); err != nil {
		return res, fmt.Errorf("%s: lock: %w", first.name, err)
	}
	res.Final, err = first.clients[0].Get(ctx, counterKey).Int64()
	err = errors.Join(err, first.clients[0].Del(ctx, counterKey).Err())
	if uerr := first.m.Unlock(ctx); uerr != nil && !unlockUnreachable(uerr) {
		err = errors.Join(err, uerr)
	}
	if err != nil {
		return res, fmt.Errorf("%s: read counter: %w", first.name, err)
	}
	say("%s: read the counter under Lock/Unlock", first.name)
	say("final count: %d (expected %d)", res.Final, res.Expected)
	return res, nil
}

// unlockUnreachable reports whether err, from Unlock or from a Do whose function succeeded, says
// only that the release could not reach a majority of the nodes (they were slow or down). The
// work under the lock was done while the lock was held, and the keys left behind expire within
// the TTL, so a program can go on. A lease lost while held (ErrLost) or found gone on the servers
// (ErrNotHeld) is another matter: the work may have run unprotected.
func unlockUnreachable(err error) bool {
	var ne *lease.NodeError
	return errors.As(err, &ne) && !errors.Is(err, lease.ErrLost) && !errors.Is(err, lease.ErrNotHeld)
}

// increment adds one to the counter the slow, non-atomic way: without the lock, two workers can
// read the same value and one of the two increments is lost.
func increment(ctx context.Context, c *redis.Client) error {
	n, err := c.Get(ctx, counterKey).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("get counter: %w", err)
	}
	t := time.NewTimer(rmwPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if err := c.Set(ctx, counterKey, n+1, 0).Err(); err != nil {
		return fmt.Errorf("set counter: %w", err)
	}
	return nil
}

// ms formats d rounded to the millisecond, for the narrative.
func ms(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}

// forEach runs f for every worker in its own goroutine and waits for all of them.
func forEach(workers []*worker, f func(i int, w *worker) error) error {
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { errs[i] = f(i, w) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// worker is what a separate process would have: its own clients, quorum and mutex.
type worker struct {
	name    string
	clients []*redis.Client
	q       *lease.Quorum
	m       *mutex.Mutex
	crashed bool // set by crash
	closed  bool // set by close
}

func newWorker(ctx context.Context, name string, urls []string, ttl time.Duration, opts ...mutex.Option) (*worker, error) {
	w := &worker{name: name}
	nodes := make([]redis.UniversalClient, len(urls))
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			_ = w.closeClients()
			return nil, fmt.Errorf("%s: server %d: %w", name, i+1, err)
		}
		// NewQuorum refuses clients without this. The quorum bounds every request to a node with
		// a ctx deadline far below the TTL, so that one hung node cannot eat a lease's validity;
		// go-redis applies ctx deadlines to its sockets only with this set, and would otherwise
		// wait out its own read timeout (3s by default, longer than the TTL).
		opt.ContextTimeoutEnabled = true
		c := redis.NewClient(opt)
		w.clients = append(w.clients, c)
		nodes[i] = c
	}
	q, err := lease.NewQuorum(ctx, nodes, lease.WithTTL(ttl))
	if err != nil {
		_ = w.closeClients()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	w.q = q
	w.m = mutex.New(q, lockName, opts...)
	return w, nil
}

// crash simulates the death of the worker's process: its connections drop at once, so its
// watchdog's renewals fail and nothing releases its keys. (Its watchdog goroutine lives on, since
// this process does; it gives the lease up at the end of its validity, and close stops it.)
func (w *worker) crash() {
	w.crashed = true
	_ = w.closeClients()
}

// close closes the worker's quorum, then its clients; later calls do nothing. For a crashed worker
// both fail, as expected (its clients are gone and its lease cannot be released), and the errors
// are dropped.
func (w *worker) close(ctx context.Context) error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := errors.Join(w.q.Close(ctx), w.closeClients())
	if err != nil && !w.crashed {
		return fmt.Errorf("%s: close: %w", w.name, err)
	}
	return nil
}

func (w *worker) closeClients() error {
	var errs []error
	for _, c := range w.clients {
		if err := c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
