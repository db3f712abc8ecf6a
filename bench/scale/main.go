// Command scale measures how quorumsync's cost grows: held leases per process, waiters on one name
// across processes, contending processes against a raw lock, and a Redis Cluster as one node. It
// starts its own redis-server processes and prints a Markdown report (see README.md).
//
//	cd bench && go run ./scale          # ~4 minutes on 2 cores; writes results/scale.md
//	cd bench && go run ./scale -quick   # smoke run, under a minute
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is one run's sizes and timings.
type config struct {
	Rows []int

	Held           []int
	HeldTTL        time.Duration
	Settle, Ticks  int // renewal ticks to wait after acquiring, then to measure
	Waiters        []int
	WaitHold       time.Duration
	WaitTTL        func(waiters int) time.Duration
	WaitWarm       func(waiters int) time.Duration
	WaitWindow     func(waiters int) time.Duration
	WaitMax        time.Duration
	Contend        []int
	ContendG       int
	Rounds         int
	ContendWarm    time.Duration
	ContendWindow  time.Duration
	Shards         []int
	Names, Workers int
}

func defaultConfig() config {
	big := func(small, large time.Duration) func(int) time.Duration {
		return func(n int) time.Duration {
			if n >= 1000 {
				return large
			}
			return small
		}
	}
	return config{
		Rows: []int{1, 2, 3, 4},
		Held: []int{1000, 10000, 100000}, HeldTTL: 10 * time.Second, Settle: 1, Ticks: 3,
		Waiters: []int{1, 10, 100, 1000}, WaitHold: time.Millisecond,
		WaitTTL: big(30*time.Second, 30*time.Second), WaitWarm: big(time.Second, 3*time.Second),
		WaitWindow: big(4*time.Second, 10*time.Second), WaitMax: 90 * time.Second,
		Contend: []int{1, 4, 16, 32}, ContendG: 2, Rounds: 5, ContendWarm: 300 * time.Millisecond, ContendWindow: 2 * time.Second,
		Shards: []int{1, 2, 3}, Names: 10000, Workers: 8,
	}
}

func quickConfig() config {
	c := defaultConfig()
	c.Held, c.HeldTTL, c.Settle, c.Ticks = []int{100, 1000}, 3*time.Second, 1, 2
	c.Waiters = []int{1, 4, 16}
	c.WaitWarm = func(int) time.Duration { return 500 * time.Millisecond }
	c.WaitWindow = func(int) time.Duration { return 1500 * time.Millisecond }
	c.Contend, c.Rounds, c.ContendWarm, c.ContendWindow = []int{1, 4}, 1, 200*time.Millisecond, time.Second
	c.Shards, c.Names = []int{1, 3}, 2000
	return c
}

// results is everything one run measured.
type results struct {
	Held    []heldResult
	Waiters []waitersResult
	Contend []contendResult
	Cluster []clusterResult
}

func main() {
	if js := os.Getenv(childEnv); js != "" {
		os.Exit(childMain(js))
	}
	quick := flag.Bool("quick", false, "smoke run: smaller sizes, shorter windows (under a minute)")
	out := flag.String("out", "results", `directory for scale.md ("" prints only)`)
	rows := flag.String("rows", "1,2,3,4", "row groups to run: 1 held leases, 2 waiters, 3 contending processes, 4 cluster")
	held := flag.String("held", "", "row 1's sizes, a comma list (default 1000,10000,100000; -quick 100,1000)")
	heldTTL := flag.Duration("held-ttl", 0, "row 1's TTL (default 10s; -quick 3s)")
	waiters := flag.String("waiters", "", "row 2's sizes, a comma list (default 1,10,100,1000; -quick 1,4,16)")
	waitTTL := flag.Duration("wait-ttl", 0, "row 2's TTL (default 30s)")
	waitWindow := flag.Duration("wait-window", 0, "row 2's shortest window at every size (default 4s, 10s at 1,000 waiters and more; -quick 1.5s); it lasts until every waiter has acquired, at most 90s")
	contend := flag.String("contend", "", "row 3's sizes in processes, a comma list (default 1,4,16,32; -quick 1,4)")
	rounds := flag.Int("rounds", 0, "row 3's rounds (default 5; -quick 1)")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile to this file")
	flag.Parse()
	cfg := defaultConfig()
	if *quick {
		cfg = quickConfig()
	}
	if *held != "" {
		cfg.Held = nil
		for _, f := range strings.Split(*held, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "scale: bad -held %q\n", *held)
				os.Exit(2)
			}
			cfg.Held = append(cfg.Held, n)
		}
	}
	if *waiters != "" {
		cfg.Waiters = nil
		for _, f := range strings.Split(*waiters, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "scale: bad -waiters %q\n", *waiters)
				os.Exit(2)
			}
			cfg.Waiters = append(cfg.Waiters, n)
		}
	}
	if *waitTTL > 0 {
		cfg.WaitTTL = func(int) time.Duration { return *waitTTL }
	}
	if *waitWindow > 0 {
		cfg.WaitWindow = func(int) time.Duration { return *waitWindow }
	}
	if *contend != "" {
		cfg.Contend = nil
		for _, f := range strings.Split(*contend, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "scale: bad -contend %q\n", *contend)
				os.Exit(2)
			}
			cfg.Contend = append(cfg.Contend, n)
		}
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *heldTTL > 0 {
		cfg.HeldTTL = *heldTTL
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Rows = nil
	for _, f := range strings.Split(*rows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4 {
			fmt.Fprintf(os.Stderr, "scale: bad -rows %q\n", *rows)
			os.Exit(2)
		}
		cfg.Rows = append(cfg.Rows, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, cfg, *out)
	pprof.StopCPUProfile()
	os.Exit(code)
}

func run(ctx context.Context, cfg config, out string) int {
	defer killAll()
	if err := checkTools(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	began := time.Now()
	res, err := measure(ctx, cfg, func(s string) { fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(began).Seconds(), s) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale: FAILED:", err)
		return 1
	}
	md := report(cfg, res, time.Since(began))
	fmt.Print(md)
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			return 1
		}
		path := filepath.Join(out, "scale.md")
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "scale: wrote", path)
	}
	if bad := invariants(res); len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "scale: FAILED invariants:\n  "+strings.Join(bad, "\n  "))
		return 1
	}
	return 0
}

// measure runs the selected row groups.
func measure(ctx context.Context, cfg config, progress func(string)) (results, error) {
	var res results
	if slices.Contains(cfg.Rows, 1) {
		for _, n := range cfg.Held {
			r, err := runHeld(ctx, n, cfg.HeldTTL, cfg.Settle, cfg.Ticks)
			if err != nil {
				return res, fmt.Errorf("row 1, %d leases: %w", n, err)
			}
			progress(fmt.Sprintf("row 1: %d leases: %.1f round trips/tick, %.0f B/lease client, %.0f B/name Redis, acquired in %v",
				n, r.TripsPerTick(), r.ClientBytes, r.RedisBytes, r.Acquire.Round(time.Millisecond)))
			res.Held = append(res.Held, r)
		}
	}
	if slices.Contains(cfg.Rows, 2) {
		p, err := startRedis(ctx)
		if err != nil {
			return res, err
		}
		for _, n := range cfg.Waiters {
			pl := waitersPlan{Waiters: n, TTL: cfg.WaitTTL(n), Hold: cfg.WaitHold, Warm: cfg.WaitWarm(n), Window: cfg.WaitWindow(n), MaxWin: cfg.WaitMax}
			r, err := runWaiters(ctx, p, pl)
			if err != nil {
				p.stop()
				return res, fmt.Errorf("row 2, %d waiters: %w", n, err)
			}
			progress(fmt.Sprintf("row 2: %d waiters: %d acquisitions in %v, %.2f round trips and %.2f commands per handoff, p99 wake %v",
				n, r.Acqs, r.Span.Round(time.Millisecond), r.per(r.Trips, r.Acqs), r.per(r.Commands, r.Acqs), r.Wake99.Round(time.Microsecond)))
			progress(fmt.Sprintf("row 2: %d waiters: set-up %v; acquisitions per 500ms from the start: %v", n, r.Setup.Round(time.Millisecond), r.Timeline))
			res.Waiters = append(res.Waiters, r)
		}
		p.stop()
	}
	if slices.Contains(cfg.Rows, 3) {
		pl := contendPlan{Goroutines: cfg.ContendG, Hold: time.Millisecond, Warm: cfg.ContendWarm, Window: cfg.ContendWindow}
		r, err := runContendRows(ctx, cfg.Contend, cfg.Rounds, pl, progress)
		if err != nil {
			return res, fmt.Errorf("row 3: %w", err)
		}
		res.Contend = r
	}
	if slices.Contains(cfg.Rows, 4) {
		for _, s := range cfg.Shards {
			r, err := runCluster(ctx, s, cfg.Names, cfg.Workers)
			if err != nil {
				return res, fmt.Errorf("row 4, %d shards: %w", s, err)
			}
			var shares []string
			for _, sh := range r.shares() {
				shares = append(shares, fmt.Sprintf("%.1f%%", sh))
			}
			progress(fmt.Sprintf("row 4: %d shards: %.0f lock+unlock/s, shares %s", s, r.ops(), strings.Join(shares, " / ")))
			res.Cluster = append(res.Cluster, r)
		}
	}
	return res, ctx.Err()
}

// invariants lists what must hold in any run, whatever the figures: every lease held and released,
// nothing left behind, no two holders at once, every waiter served.
func invariants(res results) []string {
	var bad []string
	for _, r := range res.Held {
		if r.Lost > 0 || r.Errors > 0 || r.Left > 0 {
			bad = append(bad, fmt.Sprintf("row 1, %d leases: %d lost, %d release errors (%s), %d keys left", r.Leases, r.Lost, r.Errors, r.FirstErr, r.Left))
		}
	}
	for _, r := range res.Waiters {
		if r.Violations > 0 || r.Overlaps > 0 || r.Ever < r.Waiters || r.Left > 0 {
			bad = append(bad, fmt.Sprintf("row 2, %d waiters: %d violations, %d overlaps (largest %v), %d of %d waiters acquired, %d keys left",
				r.Waiters, r.Violations, r.Overlaps, time.Duration(r.OverlapNs), r.Ever, r.Waiters, r.Left))
		}
	}
	for _, c := range res.Contend {
		for lib, runs := range c.Runs {
			for _, r := range runs {
				if r.Violations > 0 || r.Overlaps > 0 || r.Left > 0 || r.Acqs == 0 {
					bad = append(bad, fmt.Sprintf("row 3, %d processes, %s: %d violations, %d overlaps (largest %v), %d keys left, %d acquisitions",
						c.Procs, lib, r.Violations, r.Overlaps, time.Duration(r.OverlapNs), r.Left, r.Acqs))
				}
			}
		}
	}
	for _, r := range res.Cluster {
		if r.Errors > 0 || r.Left > 0 {
			bad = append(bad, fmt.Sprintf("row 4, %d shards: %d errors (%s), %d keys left", r.Shards, r.Errors, r.FirstErr, r.Left))
		}
	}
	return bad
}
