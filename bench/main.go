// Command bench compares quorumsync (its Mutex, RWMutex and Semaphore) with its peers
// (go-redsync/redsync, bsm/redislock) and with minimal baselines (raw: SET NX PX +
// compare-and-delete; raw-pass: raw with quorumsync's local pass; raw-quorum: raw fanned out to N
// nodes; raw-sem: a sorted-set semaphore in one script) on the same real redis-server processes,
// in interleaved rounds, and reports every figure as a ratio to the baseline measured side by
// side; -runs pools several full runs, each on fresh servers, into one report. A scenario's
// clients, when it has several, are processes of their own. See README.md.
//
//	cd bench && go run .            # full run, about 8½ minutes on 2 cores
//	cd bench && go run . -runs 2    # two full runs pooled, about 17 minutes
//	cd bench && go run . -quick     # smoke run, under a minute
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is one benchmark run's settings.
type config struct {
	duration time.Duration // per round per adapter
	rounds   int
	// runs is how many full runs the report pools: each starts fresh servers and runs every round
	// again, in an order shuffled afresh; its rounds are numbered after the last run's.
	runs      int
	scenarios []scenario
	adapters  []string // explicit -adapters; nil: each scenario's defaults
	out       string   // results directory; "" writes no files
	seed      uint64
	cmdline   string
	log       io.Writer
}

func main() {
	os.Exit(run())
}

func run() int {
	// Started by a run as one of its clients (see child.go): no flags, a plan in the environment.
	if spec, ok := os.LookupEnv(childEnv); ok {
		return runChild(spec)
	}
	var (
		duration  = flag.Duration("duration", 1*time.Second, "how long each adapter runs a scenario in each round")
		rounds    = flag.Int("rounds", 5, "interleaved rounds; ratios are medians of the per-round ratios")
		runs      = flag.Int("runs", 1, "full runs pooled in one report, each on fresh servers: its medians and ranges are over the rounds of every run")
		scenList  = flag.String("scenarios", "", "comma-separated scenarios (default all): "+scenarioNames())
		adapList  = flag.String("adapters", "", "comma-separated adapters (default: those that fit each scenario; the baseline always runs): "+adapterNames())
		out       = flag.String("out", "results", "directory for results.md, ratios.png and rounds.csv")
		quick     = flag.Bool("quick", false, "smoke-test mode: 2 rounds of 100ms (explicit -duration/-rounds win)")
		seed      = flag.Uint64("seed", 0, "seed of the adapter order shuffle (default: from the clock)")
		listScens = flag.Bool("list", false, "list the scenarios and adapters, then exit")
		renew     = flag.Bool("renewals", false, "measure the renewal cost of holding 1,000 and 10,000 leases instead (about a minute)")
	)
	flag.Parse()
	if *renew {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := renewals(ctx, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		return 0
	}
	if *listScens {
		for _, s := range scenarios {
			fmt.Printf("%-19s %s\n%-19s %s\n", s.name, s.desc, "", s.shape())
		}
		fmt.Println("adapters:", adapterNames())
		return 0
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["duration"] {
			*duration = 100 * time.Millisecond
		}
		if !set["rounds"] {
			*rounds = 2
		}
	}
	cfg := config{duration: *duration, rounds: *rounds, runs: *runs, out: *out, seed: *seed, log: os.Stderr}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	cfg.cmdline = "go run . " + strings.Join(os.Args[1:], " ")
	var err error
	if cfg.scenarios, err = parseScenarios(*scenList); err == nil {
		cfg.adapters, err = parseAdapters(*adapList)
	}
	if err == nil && (cfg.rounds < 1 || cfg.runs < 1 || cfg.duration <= 0) {
		err = fmt.Errorf("-rounds and -runs must be >= 1 and -duration > 0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		flag.Usage()
		return 2
	}

	// Ctrl-C or SIGTERM cancels the run; benchmark's deferred cleanup then kills the servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := benchmark(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Print(rep.markdown())
	if cfg.out != "" {
		if err := rep.write(cfg.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s/results.md, %s/ratios.png, %s/rounds.csv\n", cfg.out, cfg.out, cfg.out)
	}
	if v := rep.violations(); v > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d MUTUAL-EXCLUSION VIOLATIONS\n", v)
		return 1
	}
	return 0
}

func adapterNames() string {
	names := make([]string, len(adapters))
	for i, a := range adapters {
		names[i] = a.Name()
	}
	return strings.Join(names, ",")
}

func parseScenarios(list string) ([]scenario, error) {
	if strings.TrimSpace(list) == "" {
		return slices.Clone(scenarios), nil
	}
	var out []scenario
	for _, name := range strings.Split(list, ",") {
		s, ok := scenarioByName(strings.TrimSpace(name))
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, scenarioNames())
		}
		out = append(out, s)
	}
	return out, nil
}

func parseAdapters(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if _, ok := adapterByName(name); !ok {
			return nil, fmt.Errorf("unknown adapter %q (have %s)", name, adapterNames())
		}
		out = append(out, name)
	}
	return out, nil
}

// singleNodeOnly are the adapters that cannot fan out to several nodes.
var singleNodeOnly = map[string]bool{"raw": true, "raw-pass": true, "redislock": true, "raw-sem": true}

// adaptersFor returns the adapters that run scenario s: its defaults, or the explicit list cut to
// those that support s's node count; the baseline always, for the ratios.
func adaptersFor(s scenario, explicit []string) []string {
	var names []string
	if explicit == nil {
		names = slices.Clone(s.adapters)
	} else {
		for _, a := range explicit {
			if s.nodes == 1 || !singleNodeOnly[a] {
				names = append(names, a)
			}
		}
	}
	if !slices.Contains(names, s.baseline) {
		names = append(names, s.baseline)
	}
	// Report order: the order of the adapters list.
	var out []string
	for _, a := range adapters {
		if slices.Contains(names, a.Name()) {
			out = append(out, a.Name())
		}
	}
	return out
}

// benchmark makes cfg.runs full runs (see benchmarkRun) into one report.
func benchmark(ctx context.Context, cfg config) (*report, error) {
	rep := newReport(cfg)
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))
	perRound := 0
	for _, s := range cfg.scenarios {
		perRound += len(adaptersFor(s, cfg.adapters))
	}
	p := progress{began: time.Now(), total: max(cfg.runs, 1) * cfg.rounds * perRound}
	for run := range max(cfg.runs, 1) {
		if err := benchmarkRun(ctx, cfg, rep, rng, run*cfg.rounds, &p); err != nil {
			return nil, err
		}
	}
	rep.elapsed = time.Since(p.began)
	return rep, nil
}

// progress counts the (round, scenario, adapter) runs done, for the log's ETA.
type progress struct {
	began       time.Time
	done, total int
}

// benchmarkRun starts the servers, runs every (round, scenario, adapter) into rep — rounds
// numbered from first+1 — with the adapters of each scenario in a fresh random order per round,
// and kills the servers before it returns, also when ctx is cancelled or a run panics.
func benchmarkRun(ctx context.Context, cfg config, rep *report, rng *rand.Rand, first int, p *progress) error {
	nodes := 1
	for _, s := range cfg.scenarios {
		nodes = max(nodes, s.nodes)
	}
	srv, err := startServers(ctx, nodes)
	if err != nil {
		return err
	}
	// Deferred calls run on a panic of this goroutine too; panics in the benchmark's goroutines
	// come back as errors (see parallel), and the servers' Pdeathsig covers the rest.
	defer srv.kill()

	for round := first + 1; round <= first+cfg.rounds; round++ {
		for _, s := range cfg.scenarios {
			names := adaptersFor(s, cfg.adapters)
			rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			for _, name := range names {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted: %w", context.Cause(ctx))
				}
				ad, _ := adapterByName(name)
				res, err := runOne(ctx, srv, s, ad, round, cfg.duration)
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted: %w", context.Cause(ctx))
					}
					return fmt.Errorf("round %d, %s, %s: %w", round, s.name, name, err)
				}
				rep.add(res)
				p.done++
				if cfg.log != nil {
					eta := time.Duration(float64(time.Since(p.began)) / float64(p.done) * float64(p.total-p.done)).Round(time.Second)
					fmt.Fprintf(cfg.log, "[%3d/%d eta %v] round %d %-19s %-20s %9.0f ops/s p50 %-9v viol %d errs %d/%d\n",
						p.done, p.total, eta, round, s.name, name, res.opsPerSec(), res.p50.Round(time.Microsecond),
						res.violations, res.lockErrs, res.unlockErrs)
				}
			}
		}
	}
	return nil
}
