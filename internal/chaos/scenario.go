package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scenario is a randomized run: clients in the test process and in child processes contend on a
// few names while the nemesis injects faults; then every fault heals and the clients keep going
// for the quiesce phase; then every check runs on the whole history.
type Scenario struct {
	Name      string
	Primitive string
	Nodes     int
	Lease     LeaseConfig
	// GoClients quorums in the test process, each shared by Goroutines goroutines, and Pollers
	// more of one goroutine each, a poller (see Client.Poll).
	GoClients, Goroutines, Pollers int
	// ProcClients child processes, each running ProcGoroutines goroutines over one quorum.
	ProcClients, ProcGoroutines int
	Work                        Workload
	// Faults is how long the nemesis runs; Quiesce how long the clients go on after the heal,
	// which bounds how soon after it every client must have acquired.
	Faults, Quiesce time.Duration
	Nemesis         NemesisConfig
	// DoneSlack is how late past Until a Done may close (CheckLeases).
	DoneSlack time.Duration
	// MaxFailedShare and MaxP99, when set, bound liveness under the faults: the acquires that
	// gave up (after Work.AcquireTimeout) as a share of the sections, and the 99th percentile of
	// the acquire latency while a fault was on (CheckLiveness).
	MaxFailedShare float64
	MaxP99         time.Duration
	// MaxGap, when set, bounds how long a goroutine client of the test process (never paused nor
	// killed) goes without entering a section, from the start to the end of the run
	// (CheckProgress): a deadlock shows even when the acquire's timeout breaks it.
	MaxGap time.Duration
	// Observers, for an election, are quorums in the test process (each with links of its own, so
	// that network faults hit them too) that observe every name (Election.Observe) from the start
	// (CheckObserved).
	Observers int
}

// Result is what a scenario found.
type Result struct {
	Scenario  string
	Primitive string
	Seed      uint64
	Sections  int
	Lost      int // sections whose lease was lost while held
	Abandoned int // careful sections that found their lease gone and did not write
	Failed    int64
	Faults    []Fault
	// Expected are the checks the scenario must trip (expected-violation scenarios); Allowed the
	// further checks that follow from the same fault. Violations of other checks are unexpected.
	Expected, Allowed []string
	Violations        []Violation
	// P99 is the 99th percentile of acquire latency over the acquires that started while a fault
	// was active; DuringFaults how many that was.
	P99          time.Duration
	DuringFaults int
	Wall         time.Duration
	// Margins are, for each section that held on past the end of a lost lease, how long after
	// that end the next holder of the name entered: how close the suite came to seeing a lease
	// that ended too late. A validity bug of x shows as an overlap when a margin is below x.
	Margins []time.Duration
	// LinearizeTime is how long CheckLinearizable took.
	LinearizeTime time.Duration
	// Observed is how many new leaders the observers heard (an election), and Excepted how many
	// of them CheckObserved let pass unmatched (a campaign that never returned, or an earlier
	// grant of a campaign, glimpsed while it was undone).
	Observed, Excepted int
	// Gap is the longest a goroutine client of the test process went without entering a section
	// (when the scenario bounds it: Scenario.MaxGap).
	Gap time.Duration
	// Replay is the command that runs the scenario again, in internal/chaos.
	Replay string
}

// LinearizeTimeout bounds the linearizability check of one counter's history.
const LinearizeTimeout = time.Minute

// newResult starts a result over a finished history.
func newResult(scenario, primitive string, seed uint64, sections []Section, faults []Fault) *Result {
	r := &Result{Scenario: scenario, Primitive: primitive, Seed: seed, Sections: len(sections), Faults: faults,
		Margins: margins(PerName(sections))}
	for _, s := range sections {
		if s.Lost || s.DoneAt != 0 {
			r.Lost++
		}
		if s.Abandoned {
			r.Abandoned++
		}
	}
	return r
}

// Unexpected returns the violations of checks that were neither expected nor allowed.
func (r *Result) Unexpected() []Violation {
	var out []Violation
	for _, v := range r.Violations {
		if v.Caveat == "" && !slices.Contains(r.Expected, v.Check) && !slices.Contains(r.Allowed, v.Check) {
			out = append(out, v)
		}
	}
	return out
}

// ExpectedFound counts the violations that were expected or allowed.
func (r *Result) ExpectedFound() int { return len(r.Violations) - len(r.Unexpected()) }

// Missing returns the expected checks that found nothing.
func (r *Result) Missing() []string {
	var out []string
	for _, c := range r.Expected {
		found := false
		for _, v := range r.Violations {
			found = found || v.Check == c
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}

// Verify fails t for every unexpected violation and every expected check that found nothing,
// printing the seed and an excerpt of the history.
func (r *Result) Verify(t testing.TB) {
	t.Helper()
	for _, v := range r.Unexpected() {
		t.Errorf("UNEXPECTED violation in %s (seed %d; replay with CHAOS_SEED=%d): %s", r.Scenario, r.Seed, r.Seed, v)
	}
	for _, c := range r.Missing() {
		t.Errorf("%s: expected a %s violation and the checks found none (seed %d)", r.Scenario, c, r.Seed)
	}
	for _, v := range r.Violations {
		if v.Caveat != "" || slices.Contains(r.Expected, v.Check) || slices.Contains(r.Allowed, v.Check) {
			t.Logf("expected violation in %s, detected: %s", r.Scenario, v)
		}
	}
}

// procPool runs a scenario's child clients by slot and restarts a killed one under a new id.
type procPool struct {
	env   *Env
	cfg   ChildConfig
	mu    sync.Mutex
	slots []*procSlot
}

type procSlot struct {
	link string
	gen  int
	cur  *Proc
	all  []*Proc
}

func (pp *procPool) start(n int) {
	for i := range n {
		link := fmt.Sprintf("p%d", i)
		s := &procSlot{link: link}
		s.cur = pp.env.NewProcClient(link, link, pp.childConfig(i, 0))
		s.all = append(s.all, s.cur)
		pp.slots = append(pp.slots, s)
	}
}

func (pp *procPool) childConfig(slot, gen int) ChildConfig {
	cfg := pp.cfg
	cfg.Seed = pp.cfg.Seed + uint64(slot)*1000 + uint64(gen)
	return cfg
}

func (pp *procPool) slot(i int) *procSlot {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.slots[i]
}

func (pp *procPool) ProcSlots() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.slots)
}

func (pp *procPool) ProcID(i int) string { return pp.slot(i).cur.ID }

func (pp *procPool) PauseProc(i int) error {
	p := pp.slot(i).cur
	if p.Exited() {
		return fmt.Errorf("chaos: %s has exited", p.ID)
	}
	return p.Pause()
}

func (pp *procPool) ResumeProc(i int) error { return pp.slot(i).cur.Resume() }

func (pp *procPool) KillProc(i int) { pp.slot(i).cur.Kill() }

func (pp *procPool) RespawnProc(i int) {
	s := pp.slot(i)
	pp.mu.Lock()
	s.gen++
	gen := s.gen
	pp.mu.Unlock()
	p := pp.env.NewProcClient(s.link, fmt.Sprintf("%sr%d", s.link, gen), pp.childConfig(i, gen))
	pp.mu.Lock()
	s.cur = p
	s.all = append(s.all, p)
	pp.mu.Unlock()
}

// stop stops the current children and returns every child's sections (all generations), the
// goroutine ids of the current ones, and the children that failed or were not reaped.
func (pp *procPool) stop(t testing.TB) (sections []Section, live []string, unreaped []Violation) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for _, s := range pp.slots {
		if err := s.cur.Stop(15 * time.Second); err != nil {
			t.Errorf("chaos: %v", err)
		}
		for g := range max(pp.cfg.Goroutines, 1) {
			live = append(live, fmt.Sprintf("%s.%d", s.cur.ID, g))
		}
		for _, p := range s.all {
			ss, err := p.Sections()
			if err != nil {
				t.Errorf("chaos: journal of %s: %v", p.ID, err)
			}
			sections = append(sections, ss...)
			if !p.Reaped() {
				unreaped = append(unreaped, Violation{Check: CheckLeak, Name: p.ID, Detail: "child process not reaped"})
			}
		}
	}
	return sections, live, unreaped
}

// Run runs the scenario with seed and checks the history.
func (sc Scenario) Run(t *testing.T, seed uint64) *Result {
	t.Helper()
	began := time.Now()
	t.Logf("chaos: scenario %s, seed %d (replay with CHAOS_SEED=%d)", sc.Name, seed, seed)
	env := NewEnv(t, sc.Nodes, sc.Lease, seed)
	res := env.ResourceClient()
	var hist History

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var goIDs []string
	pollers := map[string]bool{} // client ids
	var clients []*Client
	var gcs []*GoClient
	for i := range sc.GoClients + sc.Pollers {
		prefix, goroutines := "g", sc.Goroutines
		if i >= sc.GoClients {
			// A poller has a quorum of its own: goroutines of one process queue at its local gate,
			// and a try would fail there while they wait.
			prefix, goroutines = "q", 1
		}
		g := env.NewGoClient(fmt.Sprintf("%s%d", prefix, i), sc.Primitive)
		gcs = append(gcs, g)
		for j := range goroutines {
			c := &Client{ID: fmt.Sprintf("%s.%d", g.ID, j), Locker: g.Locker, Res: res, Work: sc.Work,
				Rng: rand.New(rand.NewPCG(seed, uint64(i*100+j))), OnExit: hist.Add,
				OnLong: func(name string, on bool) { env.InLong(g.ID, name, on) }}
			if prefix == "q" {
				c.Poll = func() (Claim, bool) {
					name, ok := env.LongName(c.Rng)
					claim := c.pick()
					switch {
					case len(claim.Names) > 0 && ok && !slices.Contains(claim.Names, name):
						claim.Names[0] = name // a multi claim: with the name, and others
						claim.Name = strings.Join(claim.Names, "+")
					case len(claim.Names) == 0:
						claim.Name = name
					}
					if claim.Mode == Shared {
						claim.Mode = Exclusive // a writer: what a reader's lost lease must keep out
					}
					return claim, ok
				}
			}
			if c.Poll != nil {
				// A poller chases the names long sections hold, and mostly tries, which never
				// jumps the servers' queue: how long it waits is not what the liveness bounds are
				// about.
				pollers[c.ID] = true
			} else {
				goIDs = append(goIDs, c.ID)
			}
			clients = append(clients, c)
			wg.Go(func() { c.Run(ctx) })
		}
	}
	var obsMu sync.Mutex
	var observed []Observation
	for i := range sc.Observers {
		g := env.NewGoClient(fmt.Sprintf("o%d", i), sc.Primitive)
		gcs = append(gcs, g)
		o, ok := g.Locker.(Observer)
		if !ok {
			t.Fatalf("chaos: %s: a %s cannot be observed", sc.Name, sc.Primitive)
		}
		for _, name := range sc.Work.Names {
			ch := o.Observe(ctx, name)
			wg.Go(func() {
				for ld := range ch {
					obsMu.Lock()
					observed = append(observed, Observation{Observer: g.ID, Name: name, Leader: ld})
					obsMu.Unlock()
				}
			})
		}
	}
	started := Mono()
	stalls := watchStalls(ctx)
	pp := &procPool{env: env, cfg: ChildConfig{Primitive: sc.Primitive, Work: sc.Work, Goroutines: sc.ProcGoroutines, Seed: seed}}
	pp.start(sc.ProcClients)

	nem := NewNemesis(env, pp, sc.Nemesis, seed)
	nctx, nstop := context.WithTimeout(ctx, sc.Faults)
	nem.Run(nctx) // returns once every fault has healed
	nstop()
	healed := Mono()
	time.Sleep(sc.Quiesce)
	ended := Mono()
	stop()
	wg.Wait()
	procSections, procIDs, unreaped := pp.stop(t)
	for _, g := range gcs {
		g.Close()
	}

	hist.AddAll(procSections)
	sections := hist.Sections()
	// A multi claim's section holds each of its names: the checks by name see it once per name.
	named := PerName(sections)
	r := newResult(sc.Name, sc.Primitive, seed, sections, append(nem.Faults(), stalls()...))
	for _, c := range clients {
		r.Failed += c.Failed.Load()
	}
	r.Violations = append(r.Violations, CheckExclusive(named)...)
	r.Violations = append(r.Violations, CheckFencingOrder(named)...)
	r.Violations = append(r.Violations, CheckUpdates(named, env.Finals())...)
	linStart := time.Now()
	r.Violations = append(r.Violations, CheckLinearizable(named, LinearizeTimeout)...)
	r.LinearizeTime = time.Since(linStart)
	r.Violations = append(r.Violations, CheckTerms(sections)...)
	if sc.Observers > 0 {
		vs, excepted := CheckObserved(observed, sections, healed, sc.DoneSlack)
		r.Violations = append(r.Violations, vs...)
		r.Observed, r.Excepted = len(observed), excepted
	}
	if sc.MaxGap > 0 {
		r.Violations = append(r.Violations, CheckProgress(sections, goIDs, started, ended, sc.MaxGap)...)
		r.Gap = longestGap(sections, goIDs, started, ended)
	}
	r.Violations = append(r.Violations, CheckLeases(sections, sc.DoneSlack)...)
	r.Violations = append(r.Violations, CheckEntries(sections)...)
	r.Violations = Attribute(r.Violations, r.Faults, sc.Lease.TTL)
	r.Violations = append(r.Violations, CheckAcquiredAfter(sections, append(goIDs, procIDs...), healed, sc.Quiesce)...)
	r.Violations = append(r.Violations, env.KeysLeft(2*sc.Lease.TTL+time.Second)...)
	r.Violations = append(r.Violations, unreaped...)
	// The pollers' tries and waits are theirs: the bounds are about the clients that queue.
	var queued []Section
	for _, s := range sections {
		if !pollers[s.Client] {
			queued = append(queued, s)
		}
	}
	r.P99, r.DuringFaults = acquireP99(queued, r.Faults)
	r.Violations = append(r.Violations, sc.checkBounds(r, len(queued))...)
	r.Wall = time.Since(began)
	t.Logf("chaos: %s: %d sections (%d lost leases, %d abandoned writes, %d failed acquires), faults %s, p99 acquire during faults %v over %d; next holder after a lease that ended mid-section: %v; linearizability checked in %v",
		sc.Name, r.Sections, r.Lost, r.Abandoned, r.Failed, CountFaults(r.Faults), r.P99, r.DuringFaults, first(r.Margins, 8), r.LinearizeTime.Round(time.Millisecond))
	if sc.MaxGap > 0 {
		t.Logf("chaos: %s: the longest a client went without entering a section: %v (bound %v)", sc.Name, r.Gap.Round(time.Millisecond), sc.MaxGap)
	}
	if sc.Observers > 0 {
		t.Logf("chaos: %s: the observers heard %d new leaders, %d of them no recorded leadership in that term (a grant glimpsed while undone, or a campaign that did not return)", sc.Name, r.Observed, r.Excepted)
	}
	return r
}

// StallThreshold is how long past its 10ms sleep the stall monitor must wake for a stall of the
// test process to be recorded.
const StallThreshold = 100 * time.Millisecond

// watchStalls records, until ctx ends, every moment the test process did not run a goroutine that
// sleeps 10ms at a time for StallThreshold longer than that; the returned func gives them (after
// ctx ended). A client of the test process then looks at its lease late through no fault of the
// library, as a paused process's client does: Attribute marks it so.
func watchStalls(ctx context.Context) func() []Fault {
	var mu sync.Mutex
	var out []Fault
	done := make(chan struct{})
	go func() {
		defer close(done)
		const tick = 10 * time.Millisecond
		for ctx.Err() == nil {
			t0 := Mono()
			time.Sleep(tick)
			if now := Mono(); now-t0 > int64(tick+StallThreshold) {
				mu.Lock()
				out = append(out, Fault{Kind: ProcessStall, Client: "test process", Start: t0 + int64(tick), End: now})
				mu.Unlock()
			}
		}
	}()
	return func() []Fault {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// checkBounds holds the scenario's liveness bounds against r; sections is how many sections the
// clients that queue entered (pollers aside).
func (sc Scenario) checkBounds(r *Result, sections int) []Violation {
	var out []Violation
	if sc.MaxFailedShare > 0 && float64(r.Failed) > sc.MaxFailedShare*float64(max(sections, 1)) {
		out = append(out, Violation{Check: CheckLiveness, Name: sc.Name,
			Detail: fmt.Sprintf("%d acquires gave up after %v, %.1f%% of %d sections; bound %.1f%%", r.Failed, sc.Work.AcquireTimeout,
				100*float64(r.Failed)/float64(max(sections, 1)), sections, 100*sc.MaxFailedShare)})
	}
	if sc.MaxP99 > 0 && r.P99 > sc.MaxP99 {
		out = append(out, Violation{Check: CheckLiveness, Name: sc.Name,
			Detail: fmt.Sprintf("p99 acquire latency during faults %v over %d acquires; bound %v", r.P99.Round(time.Millisecond), r.DuringFaults, sc.MaxP99)})
	}
	return out
}

// margins returns, for every section still inside when its lease's validity ended, how long after
// that end the next section of the name that it excludes entered, smallest first.
func margins(sections []Section) []time.Duration {
	byName := map[string][]Section{}
	for _, s := range sections {
		byName[s.Name] = append(byName[s.Name], s)
	}
	var out []time.Duration
	for _, ss := range byName {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Enter < ss[j].Enter })
		for i, s := range ss {
			if s.Mode == Weighted || s.Exit != 0 && s.Exit <= s.Until {
				continue // permits share a name: the next one need not wait for this one
			}
			for _, next := range ss[i+1:] {
				// The next holder that s excludes: anyone after an exclusive claim, a writer after a
				// reader, any permit after a permit.
				if s.Mode == Shared && next.Mode == Shared {
					continue
				}
				if next.Enter > s.Until-int64(time.Second) && next.Client != s.Client {
					if next.Enter >= s.Until {
						out = append(out, time.Duration(next.Enter-s.Until))
					}
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// acquireP99 returns the 99th percentile of acquire latency over the sections whose acquire
// started while a fault with a duration was active (instant faults have no window), and how many
// there were. Acquires that timed out are not in it (Result.Failed counts them).
func acquireP99(sections []Section, faults []Fault) (time.Duration, int) {
	var windows [][2]int64
	for _, f := range faults {
		if f.End > f.Start {
			windows = append(windows, [2]int64{f.Start, f.End})
		}
	}
	var lat []int64
	for _, s := range sections {
		for _, w := range windows {
			if s.AcquireStart >= w[0] && s.AcquireStart <= w[1] {
				lat = append(lat, s.Enter-s.AcquireStart)
				break
			}
		}
	}
	if len(lat) == 0 {
		return 0, 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return time.Duration(lat[(len(lat)*99)/100]), len(lat)
}
