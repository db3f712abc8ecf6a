// Multilock shows mutex.NewMulti moving money between accounts from many goroutines in several
// processes: each transfer locks its two accounts with one Multi, all or nothing, and no order of
// names deadlocks.
//
// Five accounts hold 100 each, as balances in Redis. A transfer picks two accounts at random and
// lists them in random order, "to" as often first as "from", so that two transfers often ask for
// the same pair in opposite orders. It then moves a random amount with a deliberately non-atomic
// read-modify-write of both balances (MGET, a short sleep, MSET), and adds the amount to each
// account's ledger with an atomic INCRBY, so that every balance can be checked at the end.
//
// The program shows three things:
//
//  1. Locking the two accounts one at a time, in the order a transfer lists them, deadlocks: two
//     transfers, 1→2 and 2→1, each take their first account and wait for the other, until their
//     timeout.
//  2. Without locks, transfers in three processes, four goroutines each, lose updates: balances
//     drift from their ledgers, and the total (almost always) from 500.
//  3. With mutex.NewMulti(q, []string{from, to}), the same processes run every transfer; every
//     balance matches its ledger and the total is unchanged. It prints, per process, how many
//     transfers it made, how many of them listed "to" first, and the longest wait for a pair; then
//     every balance and "total: 500 (unchanged)". It exits with status 1 if any balance is off.
//
// Each process is the program itself, started again with MULTILOCK_EXAMPLE_PROCESS set, with its
// own clients and [lease.Quorum]; its goroutines share them, as a real service's would.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them:
//
//	go run ./examples/multilock
//
// To use your own servers, list independent Redis masters in REDIS_ADDRS, comma-separated, as URLs
// (redis://, rediss:// for TLS, unix:// for a socket; see redis.ParseURL) or as plain host:port.
// The balances and ledgers are kept on the first server under "multilock-example:*" and deleted at
// the end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/multilock
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/multilock
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

const (
	// processEnv is set in a transfer process: its job, as JSON.
	processEnv = "MULTILOCK_EXAMPLE_PROCESS"
	// rmwPause is the sleep between reading the balances and writing them: it widens the window in
	// which, without locks, two transfers read the same balance and one update is lost.
	rmwPause  = time.Millisecond
	maxAmount = 20
)

// lockName, balanceKey and ledgerKey name account i's lock and, on the first node, its balance
// and its ledger (the sum of the amounts moved in and out, kept with atomic INCRBY). The lock's
// keys on the servers carry a hash tag of their own, so they never clash with these.
func lockName(i int) string   { return fmt.Sprintf("multilock-example:account:%d", i) }
func balanceKey(i int) string { return fmt.Sprintf("multilock-example:balance:%d", i) }
func ledgerKey(i int) string  { return fmt.Sprintf("multilock-example:ledger:%d", i) }

func main() {
	if job := os.Getenv(processEnv); job != "" {
		os.Exit(transferProcess(job, os.Stdout))
	}
	os.Exit(mainCode())
}

// mainCode is main without os.Exit, so that its deferred calls run.
func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.URLs = os.Getenv("REDIS_ADDRS")
	if cfg.URLs != "" && strings.Trim(cfg.URLs, ", \t") == "" {
		fmt.Fprintf(os.Stderr, "multilock: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}
	res, err := run(ctx, os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "multilock:", err)
		return 1
	}
	if res.Locked.Total != res.Expected || res.Locked.Off > 0 {
		return 1
	}
	return 0
}

// config is what the demo runs on and how much work it does.
type config struct {
	URLs      string // Redis servers, as REDIS_ADDRS lists them; empty: start 3 in-process servers
	Accounts  int
	Initial   int64 // each account's opening balance
	Processes int   // transfer processes
	Workers   int   // goroutines per process
	Transfers int   // transfers per goroutine, under the Multi
	Unlocked  int   // transfers per goroutine in the run without locks
	TTL       time.Duration
	// NodeTimeout is the per-node timeout; 0: the quorum's default (a tenth of the TTL, at most
	// 250ms).
	NodeTimeout time.Duration
	// NaiveWait is how long each of the two one-lock-at-a-time transfers waits for its second
	// account before it gives up.
	NaiveWait time.Duration
}

func defaultConfig() config {
	return config{
		Accounts: 5, Initial: 100, Processes: 3, Workers: 4, Transfers: 15, Unlocked: 10,
		TTL: 2 * time.Second, NaiveWait: time.Second,
	}
}

// result is what one run observed.
type result struct {
	Mode     string
	Nodes    int
	Expected int64 // the total: Accounts × Initial

	// NaiveErrs are the errors of the two one-lock-at-a-time transfers' second Lock: both give up.
	NaiveErrs [2]error
	// MultiBoth is how long the same two transfers took with a Multi each.
	MultiBoth time.Duration

	Unlocked, Locked tally
}

// tally is the end of one run of the transfer processes.
type tally struct {
	PerProcess []stats
	Balances   []int64 // per account, at the end
	Ledgers    []int64 // per account: the opening balance plus what its ledger says moved
	Off        int     // accounts whose balance differs from their ledger
	Total      int64
}

// elapsed is the longest any process took over its transfers.
func (t tally) elapsed() time.Duration {
	var d time.Duration
	for _, st := range t.PerProcess {
		d = max(d, st.Elapsed)
	}
	return d
}

// job is what a transfer process is told to do.
type job struct {
	URLs        []string
	Accounts    int
	Workers     int
	Transfers   int
	Locked      bool // false: no locks at all
	TTL         time.Duration
	NodeTimeout time.Duration
}

// process is one participant's connections: its own clients, and a quorum over them.
type process struct {
	clients []redis.UniversalClient
	q       *lease.Quorum
}

func connect(ctx context.Context, urls []string, ttl, nodeTimeout time.Duration) (*process, error) {
	p := &process{}
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			p.closeClients()
			return nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		opt.ContextTimeoutEnabled = true // NewQuorum requires it, so that its per-node deadlines reach the sockets
		p.clients = append(p.clients, redis.NewClient(opt))
	}
	opts := []lease.Option{lease.WithTTL(ttl)}
	if nodeTimeout > 0 {
		opts = append(opts, lease.WithNodeTimeout(nodeTimeout))
	}
	q, err := lease.NewQuorum(ctx, p.clients, opts...)
	if err != nil {
		p.closeClients()
		return nil, err
	}
	p.q = q
	return p, nil
}

func (p *process) close(ctx context.Context) error {
	err := p.q.Close(ctx)
	p.closeClients()
	return err
}

func (p *process) closeClients() {
	for _, c := range p.clients {
		_ = c.Close()
	}
}

// stats is what one transfer process did.
type stats struct {
	Pid         int
	Transfers   int
	ToFirst     int           // transfers that listed their "to" account first
	LongestWait time.Duration // the longest a transfer waited for its two accounts
	Elapsed     time.Duration // from its first transfer to its last
}

// transferProcess is a transfer process: it runs its job's goroutines and prints "done" and its
// stats, as JSON, or "error <why>".
func transferProcess(spec string, out io.Writer) int {
	var j job
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := connect(ctx, j.URLs, j.TTL, j.NodeTimeout)
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	var (
		mu sync.Mutex
		st = stats{Pid: os.Getpid()}
	)
	errs := make([]error, j.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range j.Workers {
		wg.Go(func() {
			for range j.Transfers {
				toFirst, waited, err := transfer(ctx, p, j.Accounts, j.Locked)
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				st.Transfers++
				if toFirst {
					st.ToFirst++
				}
				st.LongestWait = max(st.LongestWait, waited)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := errors.Join(errors.Join(errs...), p.close(cctx)); err != nil {
		fmt.Fprintln(out, "error", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	line, _ := json.Marshal(st)
	fmt.Fprintf(out, "done %s\n", line)
	return 0
}

// transfer moves a random amount between two random accounts, under one Multi of both when
// locked. It reports whether it listed "to" first, and how long it waited for the Multi.
func transfer(ctx context.Context, p *process, accounts int, locked bool) (toFirst bool, waited time.Duration, err error) {
	from := rand.IntN(accounts)
	to := (from + 1 + rand.IntN(accounts-1)) % accounts
	if !locked {
		return false, 0, move(ctx, p.clients[0], from, to)
	}
	// The names in the order this transfer happens to list them: "from" first or "to" first. The
	// Multi takes them in its own order (sorted), which is why two transfers listing the same pair
	// in opposite orders cannot deadlock.
	names := []string{lockName(from), lockName(to)}
	if toFirst = rand.IntN(2) == 0; toFirst {
		names[0], names[1] = names[1], names[0]
	}
	asked := time.Now()
	var moveErr error
	err = mutex.NewMulti(p.q, names).Do(ctx, func(ctx context.Context) error {
		waited = time.Since(asked)
		// ctx ends if either lease is lost: move then stops instead of writing unprotected.
		moveErr = move(ctx, p.clients[0], from, to)
		return moveErr
	})
	if moveErr == nil && errors.Is(err, lease.ErrNotReleased) && !errors.Is(err, lease.ErrLost) {
		// The transfer ran under both locks; only the unlock reached too few nodes (slow ones),
		// and what it left there expires within the TTL.
		err = nil
	}
	return toFirst, waited, err
}

// move moves up to maxAmount from one account to another the slow, non-atomic way: it reads both
// balances, pauses, and writes both back. Then it records the amount in both ledgers, atomically.
func move(ctx context.Context, c redis.UniversalClient, from, to int) error {
	balances, err := c.MGet(ctx, balanceKey(from), balanceKey(to)).Result()
	if err != nil {
		return fmt.Errorf("read balances: %w", err)
	}
	var b [2]int64
	for i, v := range balances {
		s, _ := v.(string)
		if b[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("read balances: %v: %w", balances, err)
		}
	}
	amount := min(1+rand.Int64N(maxAmount), max(b[0], 0))
	t := time.NewTimer(rmwPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if err := c.MSet(ctx, balanceKey(from), b[0]-amount, balanceKey(to), b[1]+amount).Err(); err != nil {
		return fmt.Errorf("write balances: %w", err)
	}
	pipe := c.Pipeline()
	pipe.IncrBy(ctx, ledgerKey(from), -amount)
	pipe.IncrBy(ctx, ledgerKey(to), amount)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// run runs the demo on cfg.URLs (or on embedded servers), narrating to out.
func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS", Expected: int64(cfg.Accounts) * cfg.Initial}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	if cfg.Accounts < 2 || cfg.Processes < 1 || cfg.Workers < 1 {
		return res, fmt.Errorf("need at least 2 accounts, 1 process and 1 worker, got %d, %d and %d", cfg.Accounts, cfg.Processes, cfg.Workers)
	}
	servers, err := quorumsynctest.Use(cfg.URLs, 3)
	if err != nil {
		return res, err
	}
	defer servers.Close() // deferred first, so it runs last; it stops only the servers it started
	urls := servers.URLs()
	if servers.Embedded() {
		res.Mode = "embedded"
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}
	var ps []*process
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, p := range ps {
			err = errors.Join(err, p.close(cctx))
		}
	}()
	for range 2 { // the two naive transfers need a process each
		p, err := connect(ctx, urls, cfg.TTL, cfg.NodeTimeout)
		if err != nil {
			return res, err
		}
		ps = append(ps, p)
	}
	store := ps[0].clients[0]
	res.Nodes = len(ps[0].clients)
	var keys []string
	for i := range cfg.Accounts {
		keys = append(keys, balanceKey(i), ledgerKey(i))
	}
	defer store.Del(context.WithoutCancel(ctx), keys...)
	say("quorum: %d node(s), majority %d, lease TTL %v; %d accounts of %d each, total %d",
		res.Nodes, res.Nodes/2+1, cfg.TTL, cfg.Accounts, cfg.Initial, res.Expected)

	// 1. One lock at a time, in the order each transfer lists its accounts: a deadlock.
	if err := naive(ctx, say, res, ps, cfg.NaiveWait); err != nil {
		return res, err
	}

	// 2. The transfer processes, without locks, then with one Multi per transfer.
	spawn := func(locked bool, transfers int) (tally, error) {
		if err := open(ctx, store, cfg); err != nil {
			return tally{}, err
		}
		j := job{URLs: urls, Accounts: cfg.Accounts, Workers: cfg.Workers, Transfers: transfers,
			Locked: locked, TTL: cfg.TTL, NodeTimeout: cfg.NodeTimeout}
		t, err := runProcesses(ctx, cfg.Processes, j)
		if err != nil {
			return t, err
		}
		return t, count(ctx, store, cfg, &t)
	}
	say("transfers: %d processes × %d goroutines; each moves up to %d between two random accounts, listed in random order, with MGET, %v sleep, MSET",
		cfg.Processes, cfg.Workers, maxAmount, rmwPause)
	if res.Unlocked, err = spawn(false, cfg.Unlocked); err != nil {
		return res, fmt.Errorf("without locks: %w", err)
	}
	say("without locks: %d transfers: %d of %d balances differ from their ledgers (lost updates); total %d, was %d",
		transfers(res.Unlocked.PerProcess), res.Unlocked.Off, cfg.Accounts, res.Unlocked.Total, res.Expected)
	if res.Locked, err = spawn(true, cfg.Transfers); err != nil {
		return res, fmt.Errorf("with a Multi: %w", err)
	}
	l := res.Locked
	say("with a Multi per transfer: %d transfers in %v", transfers(l.PerProcess), l.elapsed().Round(time.Millisecond))
	for i, st := range l.PerProcess {
		say("  process %d (pid %d): %d transfers, %d of them listing \"to\" first; the longest wait for a pair: %v",
			i+1, st.Pid, st.Transfers, st.ToFirst, st.LongestWait.Round(time.Millisecond))
	}
	for i := range cfg.Accounts {
		mark := "matches its ledger"
		if l.Balances[i] != l.Ledgers[i] {
			mark = fmt.Sprintf("OFF: its ledger says %d", l.Ledgers[i])
		}
		say("  account %d: %d (%s)", i+1, l.Balances[i], mark)
	}
	if l.Total == res.Expected && l.Off == 0 {
		say("total: %d (unchanged)", l.Total)
	} else {
		say("total: %d, CHANGED from %d; %d balance(s) off", l.Total, res.Expected, l.Off)
	}
	return res, nil
}

// naive runs two transfers, 1→2 and 2→1, in two process-like quorums, each locking its two
// accounts one at a time in the order it lists them: each takes its first, both wait for their
// second, and neither gets it before wait runs out. Then it runs the same two with a Multi each.
func naive(ctx context.Context, say func(string, ...any), res *result, ps []*process, wait time.Duration) error {
	pairs := [2][2]int{{0, 1}, {1, 0}}
	var firsts [2]*mutex.Mutex
	for i, pair := range pairs {
		firsts[i] = mutex.New(ps[i].q, lockName(pair[0]))
		if err := firsts[i].Lock(ctx); err != nil {
			return fmt.Errorf("naive transfer %d: lock: %w", i+1, err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, pair := range pairs {
		wg.Go(func() {
			second := mutex.New(ps[i].q, lockName(pair[1]))
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if res.NaiveErrs[i] = second.Lock(wctx); res.NaiveErrs[i] == nil {
				_ = second.Unlock(ctx)
			}
		})
	}
	wg.Wait()
	waited := time.Since(start)
	for _, m := range firsts {
		if err := m.Unlock(ctx); err != nil {
			return fmt.Errorf("naive transfer: unlock: %w", err)
		}
	}
	if res.NaiveErrs[0] == nil || res.NaiveErrs[1] == nil {
		return fmt.Errorf("naive transfers: second locks returned %v and %v; want both to time out", res.NaiveErrs[0], res.NaiveErrs[1])
	}
	say("one lock at a time: transfer 1→2 holds account 1 and waits for 2; transfer 2→1 holds 2 and waits for 1: deadlock, both gave up after %v (errors.Is(err, lease.ErrNotAcquired): %v)",
		waited.Round(time.Millisecond), errors.Is(res.NaiveErrs[0], lease.ErrNotAcquired) && errors.Is(res.NaiveErrs[1], lease.ErrNotAcquired))

	start = time.Now()
	errs := make([]error, len(pairs))
	for i, pair := range pairs {
		wg.Go(func() {
			m := mutex.NewMulti(ps[i].q, []string{lockName(pair[0]), lockName(pair[1])})
			errs[i] = m.Do(ctx, func(context.Context) error {
				time.Sleep(20 * time.Millisecond) // long enough for the other to ask meanwhile
				return nil
			})
		})
	}
	wg.Wait()
	res.MultiBoth = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the two transfers with a Multi: %w", err)
	}
	say("one Multi each, names in the same opposite orders: both done in %v", res.MultiBoth.Round(time.Millisecond))
	return nil
}

// open sets every account to its opening balance and clears its ledger.
func open(ctx context.Context, c redis.UniversalClient, cfg config) error {
	pipe := c.TxPipeline()
	for i := range cfg.Accounts {
		pipe.Set(ctx, balanceKey(i), cfg.Initial, 0)
		pipe.Set(ctx, ledgerKey(i), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("open the accounts: %w", err)
	}
	return nil
}

// count reads the balances and ledgers into t.
func count(ctx context.Context, c redis.UniversalClient, cfg config, t *tally) error {
	t.Balances, t.Ledgers, t.Off, t.Total = nil, nil, 0, 0
	for i := range cfg.Accounts {
		b, err := c.Get(ctx, balanceKey(i)).Int64()
		if err != nil {
			return fmt.Errorf("account %d: %w", i+1, err)
		}
		l, err := c.Get(ctx, ledgerKey(i)).Int64()
		if err != nil {
			return fmt.Errorf("account %d's ledger: %w", i+1, err)
		}
		t.Balances = append(t.Balances, b)
		t.Ledgers = append(t.Ledgers, cfg.Initial+l)
		t.Total += b
		if b != cfg.Initial+l {
			t.Off++
		}
	}
	return nil
}

// runProcesses starts n transfer processes doing j, waits for them, and returns what each did.
func runProcesses(ctx context.Context, n int, j job) (tally, error) {
	t := tally{PerProcess: make([]stats, n)}
	spec, err := json.Marshal(j)
	if err != nil {
		return t, err
	}
	self, err := os.Executable()
	if err != nil {
		return t, err
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cmd := exec.CommandContext(ctx, self, "-test.run=^$") // the flag is for the test binary; main ignores it
		cmd.Env = append(os.Environ(), processEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			return t, err
		}
		if err := cmd.Start(); err != nil {
			wg.Wait()
			return t, err
		}
		wg.Go(func() {
			var last string
			for lines := bufio.NewScanner(pipe); lines.Scan(); {
				last = lines.Text()
			}
			werr := cmd.Wait()
			done, ok := strings.CutPrefix(last, "done ")
			switch {
			case ok:
				errs[i] = json.Unmarshal([]byte(done), &t.PerProcess[i])
			case strings.HasPrefix(last, "error "):
				errs[i] = fmt.Errorf("process %d: %s", i+1, strings.TrimPrefix(last, "error "))
			default:
				errs[i] = fmt.Errorf("process %d: ended with %v, having printed %q", i+1, werr, last)
			}
		})
	}
	wg.Wait()
	return t, errors.Join(errs...)
}

// transfers sums the transfers of every process.
func transfers(ps []stats) (n int) {
	for _, st := range ps {
		n += st.Transfers
	}
	return n
}
