package main

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report collects every run of a benchmark and renders the results.
type report struct {
	cfg     config
	date    time.Time
	elapsed time.Duration
	results []*runResult
}

func newReport(cfg config) *report { return &report{cfg: cfg, date: time.Now()} }

func (r *report) add(res *runResult) { r.results = append(r.results, res) }

func (r *report) violations() int64 {
	var n int64
	for _, res := range r.results {
		n += res.violations
	}
	return n
}

// cell is one (scenario, adapter): its runs indexed by round.
type cell struct {
	adapter string
	runs    map[int]*runResult
}

func (c *cell) list() []*runResult {
	out := make([]*runResult, 0, len(c.runs))
	for _, r := range c.runs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *runResult) int { return a.round - b.round })
	return out
}

// cells returns the cells of scenario s in report order, and its baseline's cell (nil if absent).
func (r *report) cells(s scenario) (cells []*cell, base *cell) {
	byName := r.cellsByAdapter(s.name)
	for _, a := range adapters {
		if c := byName[a.Name()]; c != nil {
			cells = append(cells, c)
		}
	}
	return cells, byName[s.baseline]
}

// cellsByAdapter returns the cells of the scenario named scen by adapter name.
func (r *report) cellsByAdapter(scen string) map[string]*cell {
	byName := map[string]*cell{}
	for _, res := range r.results {
		if res.scenario != scen {
			continue
		}
		c := byName[res.adapter]
		if c == nil {
			c = &cell{adapter: res.adapter, runs: map[int]*runResult{}}
			byName[res.adapter] = c
		}
		c.runs[res.round] = res
	}
	return byName
}

// figure extracts one number from a run.
type figure func(*runResult) float64

var (
	figOps       figure = (*runResult).opsPerSec
	figSecPerOp  figure = (*runResult).secPerOp
	figReads     figure = func(r *runResult) float64 { return r.roleOpsPerSec(roleRead) }
	figWrites    figure = func(r *runResult) float64 { return r.roleOpsPerSec(roleWrite) }
	figP50       figure = func(r *runResult) float64 { return float64(r.p50) }
	figP99       figure = func(r *runResult) float64 { return float64(r.p99) }
	figHoMean    figure = func(r *runResult) float64 { return r.handoffCross.fig(r.handoffCross.mean) }
	figHoP99     figure = func(r *runResult) float64 { return r.handoffCross.fig(r.handoffCross.p99) }
	figHoLocMean figure = func(r *runResult) float64 { return r.handoffLocal.fig(r.handoffLocal.mean) }
	figHoLocP99  figure = func(r *runResult) float64 { return r.handoffLocal.fig(r.handoffLocal.p99) }
	figIdle      figure = func(r *runResult) float64 { return r.idle.fig(r.idle.mean) }
	figMaxWait   figure = func(r *runResult) float64 { return float64(r.maxWait) }
	figStartLag  figure = func(r *runResult) float64 { return float64(r.startLag) }
	figAllocs    figure = (*runResult).allocsPerOp
	figBytes     figure = (*runResult).bytesPerOp
	figCmds      figure = (*runResult).cmdsPerAcq
	figFairness  figure = func(r *runResult) float64 { f, _ := r.fairness(); return f }
	figMost      figure = func(r *runResult) float64 { m, _ := r.mostFewest(); return float64(m) }
	figFewest    figure = func(r *runResult) float64 { _, f := r.mostFewest(); return float64(f) }
	figPeak      figure = func(r *runResult) float64 { return float64(r.peak) }
	figCliCPU    figure = (*runResult).clientCPUPerOp
	figSrvCPU    figure = (*runResult).serverCPUPerOp
)

// med is the median of f over c's rounds, leaving out rounds where f is NaN (no such event);
// NaN when there is none.
func (c *cell) med(f figure) float64 {
	var xs []float64
	for _, r := range c.list() {
		if x := f(r); !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	return median(xs)
}

// ratio is the median over rounds of f(c)/f(base) taken within the same round, with the smallest
// and largest per-round ratio; ok is false when no round has both with a finite, positive base.
func (c *cell) ratio(base *cell, f figure) (med, lo, hi float64, ok bool) {
	return summary(slices.Collect(maps.Values(c.roundRatios(base, f))))
}

// roundRatios returns f(c)/f(base) per round, for the rounds that have both with a finite,
// positive base.
func (c *cell) roundRatios(base *cell, f figure) map[int]float64 {
	out := map[int]float64{}
	if c == nil || base == nil {
		return out
	}
	for round, r := range c.runs {
		b := base.runs[round]
		if b == nil {
			continue
		}
		num, den := f(r), f(b)
		if den <= 0 || math.IsInf(den, 0) || math.IsNaN(num) || math.IsNaN(den) {
			continue
		}
		out[round] = num / den
	}
	return out
}

// summary returns the median, smallest and largest of xs; ok is false when xs is empty.
func summary(xs []float64) (med, lo, hi float64, ok bool) {
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	return median(xs), slices.Min(xs), slices.Max(xs), true
}

// maxOver is the largest f over c's rounds.
func (c *cell) maxOver(f figure) float64 {
	var m float64
	for _, r := range c.runs {
		m = max(m, f(r))
	}
	return m
}

func (c *cell) sum(f func(*runResult) int64) int64 {
	var n int64
	for _, r := range c.runs {
		n += f(r)
	}
	return n
}

func (c *cell) worstWait() time.Duration {
	var d time.Duration
	for _, r := range c.runs {
		d = max(d, r.maxWait)
	}
	return d
}

func (c *cell) worstWaitRole(ro role) time.Duration {
	var d time.Duration
	for _, r := range c.runs {
		d = max(d, r.maxWaitRole[ro])
	}
	return d
}

func (c *cell) starved() int {
	n := 0
	for _, r := range c.runs {
		_, s := r.fairness()
		n += s
	}
	return n
}

// firstErr returns the first error a run of c recorded, for the notes.
func (c *cell) firstErr() error {
	for _, r := range c.list() {
		if r.firstErr != nil {
			return r.firstErr
		}
	}
	return nil
}

// --- Markdown ---

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# quorumsync vs peers: same-run ratios\n\n")
	fmt.Fprintf(&b, "- date: %s (run took %v)\n", r.date.UTC().Format(time.RFC3339), r.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s; nproc %d, GOMAXPROCS %d; %s %s/%s; %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, redisVersion())
	rounds := fmt.Sprintf("%d rounds", r.cfg.rounds)
	if r.cfg.runs > 1 {
		rounds = fmt.Sprintf("%d full runs of %d rounds, each on fresh servers, pooled: %d rounds", r.cfg.runs, r.cfg.rounds, r.cfg.runs*r.cfg.rounds)
	}
	fmt.Fprintf(&b, "- command: `%s` (%s × %v per adapter per scenario, adapter order shuffled every round, seed %d)\n",
		r.cfg.cmdline, rounds, r.cfg.duration, r.cfg.seed)
	fmt.Fprintf(&b, "- code: %s; %s\n", gitDescribe(), libVersions())
	fmt.Fprintf(&b, "- every lock uses TTL %v; client options: go-redis defaults + ContextTimeoutEnabled\n", ttl)
	b.WriteString("- a scenario of several clients runs each client as an OS process of its own; a single client runs in the harness's process\n\n")
	b.WriteString("Each cell: the median over rounds, then in parentheses the median over rounds of the ratio to the\n" +
		"scenario's baseline measured in the same round (ops/s also shows the smallest and largest per-round\n" +
		"ratio). Only ratios mean anything on a shared machine; absolute numbers vary from run to run.\n" +
		"Worst wait is the maximum over rounds (ratio of maxima); starved, violations and errors are sums.\n\n")

	r.writeGoals(&b)
	for _, s := range r.cfg.scenarios {
		r.writeScenario(&b, s)
	}
	r.writeCommands(&b)
	return b.String()
}

// goal is one line of the goals table: a figure of one adapter in one scenario, against a limit.
type goal struct {
	scen    string
	adapter string // whose figure; "" is quorumsync
	what    string
	f       figure
	limit   float64
	atMost  bool
	// How the figure is taken. By default, the median over rounds of the same-round ratio of the
	// adapter's f to vs's (vs "" is the scenario's baseline).
	vs string
	// abs compares the median of f itself over rounds (worst: its largest over rounds) to limit.
	abs, worst bool
	// growthOf names a second scenario: the figure is, per round, the ratio to vs in scen
	// divided by the ratio to vs in growthOf.
	growthOf string
}

// goals are the targets the library is measured against, each with the scenarios it applies to.
func goals() []goal {
	var gs []goal
	add := func(scens []string, g goal) {
		for _, s := range scens {
			g.scen = s
			gs = append(gs, g)
		}
	}
	uncont1 := []string{"same-key", "distinct-keys"}
	par := []string{"parallel-16", "parallel-16-c4"}
	add(uncont1, goal{what: "ops/s ≥ 1.0× raw", f: figOps, limit: 1})
	add([]string{"same-key"}, goal{what: "p50 acquire ≤ 1.02× raw", f: figP50, limit: 1.02, atMost: true})
	add(par, goal{what: "ops/s ≥ 0.95× raw", f: figOps, limit: 0.95})
	add([]string{"quorum-3", "quorum-3-c4", "quorum-5", "quorum-5-c4"},
		goal{what: "ops/s ≥ 1.0× raw-quorum", f: figOps, limit: 1.0})
	add(uncont1, goal{what: "allocs/op ≤ 1.2× raw", f: figAllocs, limit: 1.2, atMost: true})
	add(uncont1, goal{what: "bytes/op ≤ 1.5× raw", f: figBytes, limit: 1.5, atMost: true})
	add(par, goal{what: "allocs/op ≤ 1.2× raw (informative)", f: figAllocs, limit: 1.2, atMost: true})
	add(par, goal{what: "bytes/op ≤ 1.5× raw (informative)", f: figBytes, limit: 1.5, atMost: true})
	add([]string{"quorum-3"}, goal{what: "allocs/op ≤ 1.5× raw-quorum (informative)", f: figAllocs, limit: 1.5, atMost: true})
	cont := []string{"contend-8-h0-c1", "contend-8-h0", "contend-32-h0-c1", "contend-32-h0"}
	add(cont, goal{what: "ops/s ≥ 0.9× raw", f: figOps, limit: 0.9})
	add(cont, goal{what: "most/fewest per goroutine ≤ 3", f: figFairness, limit: 3, atMost: true, abs: true})
	p42 := []string{"contend-4p2-h1ms"}
	add(p42, goal{what: "ops/s ≥ 1.0× raw", f: figOps, limit: 1})
	add(p42, goal{what: "handoff to another process: mean ≤ raw's", f: figHoMean, limit: 1, atMost: true})
	add(p42, goal{what: "lock idle between holders: mean ≤ raw's", f: figIdle, limit: 1, atMost: true})
	add(p42, goal{what: "most/fewest per goroutine ≤ 1.2", f: figFairness, limit: 1.2, atMost: true, abs: true})
	add(p42, goal{what: "worst wait ≤ 0.2× raw's (per round)", f: figMaxWait, limit: 0.2, atMost: true})
	// Nearly every acquisition here waits: what a waiting acquisition costs the servers.
	add(p42, goal{what: "server commands per acquisition ≤ 1.2× raw's", f: figCmds, limit: 1.2, atMost: true})
	// Like with like: against raw-pass, the poller that passes locally as quorumsync does. The
	// limit is the scenario's goal against raw where it has one; elsewhere as fast, informative.
	for _, scen := range []string{"contend-8-h0-c1", "contend-8-h0", "contend-8-h1ms", "contend-4p2-h1ms", "contend-32-h0-c1",
		"contend-32-h0", "contend-32-h1ms", "handoff-1x8", "handoff-4x2", "handoff-8"} {
		g := goal{what: "ops/s ≥ 1.0× raw-pass (informative)", f: figOps, limit: 1, vs: "raw-pass"}
		switch {
		case slices.Contains(cont, scen):
			g.what, g.limit = "ops/s ≥ 0.9× raw-pass", 0.9
		case slices.Contains(p42, scen):
			g.what = "ops/s ≥ 1.0× raw-pass"
		}
		add([]string{scen}, g)
	}
	// Against two 1ms pollers: quorumsync's own scripts (what the wake-ups buy) and the raw lock.
	for _, scen := range []string{"handoff-1x8", "handoff-4x2", "handoff-8"} {
		for _, poller := range []string{"quorumsync-poll1ms", "raw"} {
			g := goal{what: "handoff to another client: mean ≤ 0.5× " + poller + "'s", f: figHoMean, limit: 0.5, atMost: true, vs: poller}
			if scen == "handoff-1x8" {
				g.what, g.f = "in-process handoff: mean ≤ 0.5× "+poller+"'s", figHoLocMean
			}
			add([]string{scen}, g)
		}
	}
	add([]string{"rw-uncontended"}, goal{adapter: "quorumsync-rwmutex", what: "time per RLock+RUnlock ≤ 1.1× Mutex Lock+Unlock",
		f: figSecPerOp, limit: 1.1, atMost: true, vs: "quorumsync"})
	add([]string{"rw-readers-16"}, goal{adapter: "quorumsync-rwmutex", what: "readers' ops/s ≥ 4× Mutex's",
		f: figOps, limit: 4, vs: "quorumsync"})
	add([]string{"sem-uncontended-8", "sem-uncontended-256"}, goal{adapter: "quorumsync-semaphore",
		what: "time per Acquire(1)+Release(1) ≤ 1.2× Mutex Lock+Unlock", f: figSecPerOp, limit: 1.2, atMost: true, vs: "quorumsync"})
	add([]string{"sem-uncontended-256"}, goal{adapter: "quorumsync-semaphore", growthOf: "sem-uncontended-8",
		what: "no growth C=8→256: (time/op vs Mutex at 256) / (at 8) ≤ 1.1×", f: figSecPerOp, limit: 1.1, atMost: true, vs: "quorumsync"})
	add([]string{"sem-uncontended-256"}, goal{adapter: "quorumsync-semaphore", growthOf: "sem-uncontended-8",
		what: "no growth C=8→256: (cmds/acq vs Mutex at 256) / (at 8) ≤ 1.05×", f: figCmds, limit: 1.05, atMost: true, vs: "quorumsync"})
	add([]string{"sem-contend-4"}, goal{adapter: "quorumsync-semaphore", what: "peak permits held ≤ 4 (worst round)",
		f: figPeak, limit: 4, atMost: true, abs: true, worst: true})
	return gs
}

// measure evaluates g: the median over rounds, the smallest and largest per-round value, the
// value the verdict uses, and whether the runs it needs exist.
func (r *report) measure(g goal) (med, lo, hi, judged float64, ok bool) {
	s, found := scenarioByName(g.scen)
	if !found {
		return 0, 0, 0, 0, false
	}
	byName := r.cellsByAdapter(s.name)
	adapter := cmp.Or(g.adapter, "quorumsync")
	c := byName[adapter]
	if c == nil {
		return 0, 0, 0, 0, false
	}
	switch {
	case g.abs:
		var xs []float64
		for _, run := range c.list() {
			xs = append(xs, g.f(run))
		}
		med, lo, hi, ok = summary(xs)
		judged = med
		if g.worst {
			judged = hi
			if !g.atMost {
				judged = lo
			}
		}
		return med, lo, hi, judged, ok
	case g.growthOf != "":
		vs := cmp.Or(g.vs, s.baseline)
		num := c.roundRatios(byName[vs], g.f)
		other := r.cellsByAdapter(g.growthOf)
		den := other[adapter].roundRatios(other[vs], g.f)
		var xs []float64
		for round, n := range num {
			if d, ok := den[round]; ok && d > 0 {
				xs = append(xs, n/d)
			}
		}
		med, lo, hi, ok = summary(xs)
		return med, lo, hi, med, ok
	default:
		med, lo, hi, ok = c.ratio(byName[cmp.Or(g.vs, s.baseline)], g.f)
		return med, lo, hi, med, ok
	}
}

func (r *report) writeGoals(b *strings.Builder) {
	var rows []string
	for _, g := range goals() {
		med, lo, hi, judged, ok := r.measure(g)
		if !ok {
			continue
		}
		pass := judged >= g.limit
		if g.atMost {
			pass = judged <= g.limit
		}
		verdict := "**MISS**"
		if pass {
			verdict = "pass"
		}
		unit := "×"
		if g.abs {
			unit = ""
		}
		num := func(x float64) string {
			if math.IsInf(x, 1) {
				return "∞"
			}
			return fmtRatio(x)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s%s [%s–%s] | %s |", g.scen, cmp.Or(g.adapter, "quorumsync"), g.what,
			num(med), unit, num(lo), num(hi), verdict))
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Goals (quorumsync, same-run ratios)\n\n" +
		"Ratios are medians over rounds of ratios taken within one round; [the smallest–largest per round].\n" +
		"A goal against another adapter than the baseline names it. Violations must be 0 everywhere.\n\n" +
		"| scenario | adapter | goal | measured [per-round range] | |\n|---|---|---|---|---|\n")
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
	v := r.violations()
	verdict := "pass"
	if v > 0 {
		verdict = "**MISS**"
	}
	fmt.Fprintf(b, "| every scenario | every adapter | exclusion violations = 0 | %d | %s |\n\n", v, verdict)
}

func (r *report) writeScenario(b *strings.Builder, s scenario) {
	cells, base := r.cells(s)
	if len(cells) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n%s. %s.\n\n", s.name, s.desc, s.shape())
	mixed := s.load.mixed()
	cross := s.turns() && s.clients > 1
	local := s.turns() && s.goroutines > s.clients
	head := []string{"adapter", "ops/s"}
	if mixed {
		head = append(head, "reads/s", "writes/s")
	}
	head = append(head, "p50 acquire", "p99 acquire")
	if cross {
		head = append(head, "handoff mean (other client)", "handoff p99", "handoffs (early)")
	}
	if local {
		head = append(head, "handoff mean (same client)", "handoff p99", "handoffs (early)")
	}
	if s.turns() {
		head = append(head, "idle between holders (mean)")
	}
	head = append(head, "worst wait")
	if mixed {
		head = append(head, "readers' worst wait", "writers' worst wait")
	}
	head = append(head, "most/fewest per goroutine", "starved")
	if s.load.shares() {
		head = append(head, "peak inside")
	}
	head = append(head, "allocs/op", "bytes/op", "client CPU/op", "server CPU/op", "cmds/acq", "violations", "lock errs", "unlock errs")
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|" + strings.Repeat("---|", len(head)) + "\n")
	for _, c := range cells {
		isBase := c.adapter == s.baseline
		rat := func(f figure) string {
			if isBase {
				return ""
			}
			if m, _, _, ok := c.ratio(base, f); ok {
				return fmt.Sprintf(" (%s×)", fmtRatio(m))
			}
			return ""
		}
		maxRat := func(d, bd time.Duration) string {
			s := fmtDur(float64(d))
			if !isBase && bd > 0 {
				s += fmt.Sprintf(" (%s×)", fmtRatio(float64(d)/float64(bd)))
			}
			return s
		}
		row := []string{c.adapter}
		ops := fmtInt(c.med(figOps))
		if m, lo, hi, ok := c.ratio(base, figOps); ok && !isBase {
			ops += fmt.Sprintf(" (%s× [%s–%s])", fmtRatio(m), fmtRatio(lo), fmtRatio(hi))
		}
		if isBase {
			ops += " (baseline)"
		}
		row = append(row, ops)
		if mixed {
			row = append(row, fmtInt(c.med(figReads))+rat(figReads), fmtInt(c.med(figWrites))+rat(figWrites))
		}
		row = append(row, fmtDur(c.med(figP50))+rat(figP50), fmtDur(c.med(figP99))+rat(figP99))
		if cross {
			hos := c.sum(func(r *runResult) int64 { return r.handoffCross.n })
			early := c.sum(func(r *runResult) int64 { return r.handoffCross.early })
			row = append(row, fmtDur(c.med(figHoMean))+rat(figHoMean), fmtDur(c.med(figHoP99))+rat(figHoP99),
				fmt.Sprintf("%d (%d)", hos, early))
		}
		if local {
			hos := c.sum(func(r *runResult) int64 { return r.handoffLocal.n })
			early := c.sum(func(r *runResult) int64 { return r.handoffLocal.early })
			row = append(row, fmtDur(c.med(figHoLocMean))+rat(figHoLocMean), fmtDur(c.med(figHoLocP99))+rat(figHoLocP99),
				fmt.Sprintf("%d (%d)", hos, early))
		}
		if s.turns() {
			row = append(row, fmtDur(c.med(figIdle))+rat(figIdle))
		}
		var bw, bwr, bww time.Duration
		if base != nil {
			bw, bwr, bww = base.worstWait(), base.worstWaitRole(roleRead), base.worstWaitRole(roleWrite)
		}
		row = append(row, maxRat(c.worstWait(), bw))
		if mixed {
			row = append(row, maxRat(c.worstWaitRole(roleRead), bwr), maxRat(c.worstWaitRole(roleWrite), bww))
		}
		fair := "—"
		if s.goroutines > 1 {
			f := c.med(figFairness)
			fs := "∞"
			if !math.IsInf(f, 0) {
				fs = fmt.Sprintf("%.2f", f)
			}
			fair = fmt.Sprintf("%s / %s (%s)", fmtInt(c.med(figMost)), fmtInt(c.med(figFewest)), fs)
		}
		viol := c.sum(func(r *runResult) int64 { return r.violations })
		violS := strconv.FormatInt(viol, 10)
		if viol > 0 {
			violS = "**" + violS + "**"
		}
		row = append(row, fair, strconv.Itoa(c.starved()))
		if s.load.shares() {
			row = append(row, fmtInt(c.maxOver(figPeak)))
		}
		row = append(row,
			fmt.Sprintf("%.1f", c.med(figAllocs))+rat(figAllocs),
			fmtInt(c.med(figBytes))+rat(figBytes),
			fmtDur(c.med(figCliCPU))+rat(figCliCPU),
			fmtDur(c.med(figSrvCPU))+rat(figSrvCPU),
			fmt.Sprintf("%.2f", c.med(figCmds))+rat(figCmds),
			violS,
			strconv.FormatInt(c.sum(func(r *runResult) int64 { return r.lockErrs }), 10),
			strconv.FormatInt(c.sum(func(r *runResult) int64 { return r.unlockErrs }), 10))
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	var notes []string
	for _, c := range cells {
		if err := c.firstErr(); err != nil {
			notes = append(notes, fmt.Sprintf("- %s, first error: `%s`", c.adapter, oneLine(err.Error())))
		}
		// Client processes woken at one instant on a machine with fewer cores than processes
		// may not all get a core at once; say so when it took more than 1% of a round.
		if lag := c.maxOver(figStartLag); lag > float64(r.cfg.duration/100) {
			notes = append(notes, fmt.Sprintf("- %s: its last client began %s after the common start instant, in the worst round (start_lag_us in rounds.csv)",
				c.adapter, fmtDur(lag)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	b.WriteString("\n")
}

// writeCommands breaks the commands per acquisition down by command, summed over the nodes and
// rounds (commands run by Lua scripts included).
func (r *report) writeCommands(b *strings.Builder) {
	b.WriteString("## Redis commands per acquisition, by command\n\n" +
		"Summed over nodes and rounds, divided by acquisitions; commands run inside Lua scripts are counted\n" +
		"(Redis 7 counts them in INFO commandstats). Connection set-up (HELLO, CLIENT SETINFO) and the\n" +
		"harness's own INFO/CONFIG are left out.\n\n| scenario | adapter | commands per acquisition |\n|---|---|---|\n")
	for _, s := range r.cfg.scenarios {
		cells, _ := r.cells(s)
		for _, c := range cells {
			tot := map[string]int64{}
			var acq int64
			for _, res := range c.runs {
				acq += res.acquisitions
				for k, v := range res.cmds {
					if !notCounted[k] {
						tot[k] += v
					}
				}
			}
			if acq == 0 {
				continue
			}
			names := make([]string, 0, len(tot))
			for k := range tot {
				names = append(names, k)
			}
			slices.Sort(names)
			parts := make([]string, len(names))
			for i, k := range names {
				parts[i] = fmt.Sprintf("%s %.2f", k, float64(tot[k])/float64(acq))
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", s.name, c.adapter, strings.Join(parts, ", "))
		}
	}
	b.WriteString("\n")
}

// write saves results.md, ratios.png and rounds.csv in dir.
func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	if t := r.summary(); t != "" {
		if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(t), 0o644); err != nil {
			return err
		}
	}
	if err := r.chart(filepath.Join(dir, "ratios.png")); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return r.csv(filepath.Join(dir, "rounds.csv"))
}

// csv writes one line per run, for anyone who wants to look past the medians.
func (r *report) csv(path string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"round", "scenario", "adapter", "elapsed_s", "acquisitions", "ops_per_s", "reads", "writes",
		"p50_us", "p99_us", "max_wait_us", "read_max_wait_us", "write_max_wait_us",
		"handoffs_cross", "handoffs_cross_early", "handoff_cross_mean_us", "handoff_cross_p99_us",
		"handoffs_local", "handoffs_local_early", "handoff_local_mean_us", "handoff_local_p99_us",
		"idles", "idle_mean_us", "idle_p99_us",
		"most", "fewest", "fairness", "starved", "peak_inside", "allocs_per_op", "bytes_per_op",
		"cmds_per_acq", "client_cpu_us_per_op", "server_cpu_us_per_op", "violations", "lock_errs", "unlock_errs",
		"processes", "start_lag_us"})
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, res := range r.results {
		fair, starved := res.fairness()
		most, fewest := res.mostFewest()
		hc, hl := res.handoffCross, res.handoffLocal
		_ = w.Write([]string{
			strconv.Itoa(res.round), res.scenario, res.adapter,
			strconv.FormatFloat(res.elapsed.Seconds(), 'f', 3, 64),
			i64(res.acquisitions),
			strconv.FormatFloat(res.opsPerSec(), 'f', 1, 64),
			i64(res.byRole[roleRead]), i64(res.byRole[roleWrite]),
			us(res.p50), us(res.p99), us(res.maxWait), us(res.maxWaitRole[roleRead]), us(res.maxWaitRole[roleWrite]),
			i64(hc.n), i64(hc.early), us(hc.mean), us(hc.p99),
			i64(hl.n), i64(hl.early), us(hl.mean), us(hl.p99),
			i64(res.idle.n), us(res.idle.mean), us(res.idle.p99),
			i64(most), i64(fewest), strconv.FormatFloat(fair, 'f', 3, 64), strconv.Itoa(starved), i64(res.peak),
			strconv.FormatFloat(res.allocsPerOp(), 'f', 2, 64),
			strconv.FormatFloat(res.bytesPerOp(), 'f', 0, 64),
			strconv.FormatFloat(res.cmdsPerAcq(), 'f', 3, 64),
			strconv.FormatFloat(res.clientCPUPerOp()/1e3, 'f', 2, 64),
			strconv.FormatFloat(res.serverCPUPerOp()/1e3, 'f', 2, 64),
			strconv.FormatInt(res.violations, 10), strconv.FormatInt(res.lockErrs, 10), strconv.FormatInt(res.unlockErrs, 10),
			strconv.Itoa(res.processes), us(res.startLag),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// --- formatting and environment ---

func fmtRatio(x float64) string {
	switch {
	case math.IsInf(x, 0) || math.IsNaN(x):
		return "—"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func fmtInt(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// fmtDur prints ns with three significant digits; NaN (nothing measured) as "—".
func fmtDur(ns float64) string {
	if math.IsNaN(ns) {
		return "—"
	}
	if ns <= 0 {
		return "0"
	}
	unit, div := "ns", 1.0
	switch {
	case ns >= 1e9:
		unit, div = "s", 1e9
	case ns >= 1e6:
		unit, div = "ms", 1e6
	case ns >= 1e3:
		unit, div = "µs", 1e3
	}
	v := ns / div
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	default:
		return fmt.Sprintf("%.2f%s", v, unit)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

// gitDescribe names the library's commit, marked dirty when the working tree has changes.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "git commit unknown"
	}
	return "library at git " + strings.TrimSpace(string(out))
}

// libVersions lists the versions of the peers and of go-redis this binary was built with.
func libVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "module versions unknown"
	}
	want := []string{"github.com/go-redsync/redsync/v4", "github.com/bsm/redislock", "github.com/redis/go-redis/v9"}
	var parts []string
	for _, d := range bi.Deps {
		if slices.Contains(want, d.Path) {
			parts = append(parts, d.Path+" "+d.Version)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
