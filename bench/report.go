package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
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
	byName := map[string]*cell{}
	for _, res := range r.results {
		if res.scenario != s.name {
			continue
		}
		c := byName[res.adapter]
		if c == nil {
			c = &cell{adapter: res.adapter, runs: map[int]*runResult{}}
			byName[res.adapter] = c
		}
		c.runs[res.round] = res
	}
	for _, a := range adapters {
		if c := byName[a.Name()]; c != nil {
			cells = append(cells, c)
		}
	}
	return cells, byName[s.baseline]
}

// figure extracts one number from a run.
type figure func(*runResult) float64

var (
	figOps      figure = (*runResult).opsPerSec
	figP50      figure = func(r *runResult) float64 { return float64(r.p50) }
	figP99      figure = func(r *runResult) float64 { return float64(r.p99) }
	figHoMean   figure = func(r *runResult) float64 { return float64(r.handoffMean) }
	figHoP99    figure = func(r *runResult) float64 { return float64(r.handoffP9) }
	figAllocs   figure = (*runResult).allocsPerOp
	figCmds     figure = (*runResult).cmdsPerAcq
	figFairness figure = func(r *runResult) float64 { f, _ := r.fairness(); return f }
	figCliCPU   figure = (*runResult).clientCPUPerOp
	figSrvCPU   figure = (*runResult).serverCPUPerOp
)

// med is the median of f over c's rounds.
func (c *cell) med(f figure) float64 {
	var xs []float64
	for _, r := range c.list() {
		xs = append(xs, f(r))
	}
	return median(xs)
}

// ratio is the median over rounds of f(c)/f(base) taken within the same round, with the smallest
// and largest per-round ratio; ok is false when no round has both with a finite, positive base.
func (c *cell) ratio(base *cell, f figure) (med, lo, hi float64, ok bool) {
	if base == nil {
		return 0, 0, 0, false
	}
	var xs []float64
	for round, r := range c.runs {
		b := base.runs[round]
		if b == nil {
			continue
		}
		num, den := f(r), f(b)
		if den <= 0 || math.IsInf(den, 0) || math.IsNaN(num) || math.IsNaN(den) {
			continue
		}
		xs = append(xs, num/den)
	}
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	return median(xs), slices.Min(xs), slices.Max(xs), true
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
	fmt.Fprintf(&b, "- command: `%s` (%d rounds × %v per adapter per scenario, adapter order shuffled every round, seed %d)\n",
		r.cfg.cmdline, r.cfg.rounds, r.cfg.duration, r.cfg.seed)
	fmt.Fprintf(&b, "- code: %s; %s\n", gitDescribe(), libVersions())
	fmt.Fprintf(&b, "- every lock uses TTL %v; client options: go-redis defaults + ContextTimeoutEnabled\n\n", ttl)
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

func (r *report) writeGoals(b *strings.Builder) {
	type goal struct {
		what, scen string
		f          figure
		limit      float64
		atMost     bool
	}
	goals := []goal{
		{"ops/s ≥ 0.9× raw", "same-key", figOps, 0.9, false},
		{"ops/s ≥ 0.9× raw", "distinct-keys", figOps, 0.9, false},
		{"ops/s ≥ 0.9× raw", "parallel-16", figOps, 0.9, false},
		{"ops/s ≥ 1.0× raw-quorum", "quorum-3", figOps, 1.0, false},
		{"ops/s ≥ 1.0× raw-quorum", "quorum-5", figOps, 1.0, false},
		{"allocs/op ≤ 1.3× raw", "same-key", figAllocs, 1.3, true},
		{"allocs/op ≤ 1.3× raw", "distinct-keys", figAllocs, 1.3, true},
		{"allocs/op ≤ 1.3× raw", "parallel-16", figAllocs, 1.3, true},
		{"allocs/op ≤ 1.3× raw-quorum (informative)", "quorum-3", figAllocs, 1.3, true},
	}
	var rows []string
	for _, g := range goals {
		s, ok := scenarioByName(g.scen)
		if !ok {
			continue
		}
		cells, base := r.cells(s)
		for _, c := range cells {
			if c.adapter != "quorumsync" {
				continue
			}
			m, lo, hi, ok := c.ratio(base, g.f)
			if !ok {
				continue
			}
			pass := m >= g.limit
			if g.atMost {
				pass = m <= g.limit
			}
			verdict := "**MISS**"
			if pass {
				verdict = "pass"
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %.2f× [%.2f–%.2f] | %s |", g.scen, g.what, m, lo, hi, verdict))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Goals (quorumsync, same-run ratios)\n\n| scenario | goal | measured [per-round range] | |\n|---|---|---|---|\n")
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
	b.WriteString("\n")
}

func (r *report) writeScenario(b *strings.Builder, s scenario) {
	cells, base := r.cells(s)
	if len(cells) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n%s. %s.\n\n", s.name, s.desc, s.shape())
	head := []string{"adapter", "ops/s", "p50 acquire", "p99 acquire"}
	if s.handoff {
		head = append(head, "handoff mean", "handoff p99", "handoffs (early)")
	}
	head = append(head, "worst wait", "fairness max/min", "starved", "allocs/op", "client CPU/op", "server CPU/op", "cmds/acq", "violations", "lock errs", "unlock errs")
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
		row := []string{c.adapter}
		ops := fmtInt(c.med(figOps))
		if m, lo, hi, ok := c.ratio(base, figOps); ok && !isBase {
			ops += fmt.Sprintf(" (%s× [%s–%s])", fmtRatio(m), fmtRatio(lo), fmtRatio(hi))
		}
		if isBase {
			ops += " (baseline)"
		}
		row = append(row, ops,
			fmtDur(c.med(figP50))+rat(figP50),
			fmtDur(c.med(figP99))+rat(figP99))
		if s.handoff {
			hos := c.sum(func(r *runResult) int64 { return r.handoffs })
			early := c.sum(func(r *runResult) int64 { return r.handoffEarly })
			row = append(row, fmtDur(c.med(figHoMean))+rat(figHoMean), fmtDur(c.med(figHoP99))+rat(figHoP99),
				fmt.Sprintf("%d (%d)", hos, early))
		}
		worst := fmtDur(float64(c.worstWait()))
		if !isBase && base != nil && base.worstWait() > 0 {
			worst += fmt.Sprintf(" (%s×)", fmtRatio(float64(c.worstWait())/float64(base.worstWait())))
		}
		fair := c.med(figFairness)
		fairS := "∞"
		if !math.IsInf(fair, 0) {
			fairS = fmt.Sprintf("%.2f", fair)
		}
		if s.goroutines == 1 {
			fairS = "—"
		}
		viol := c.sum(func(r *runResult) int64 { return r.violations })
		violS := strconv.FormatInt(viol, 10)
		if viol > 0 {
			violS = "**" + violS + "**"
		}
		row = append(row, worst, fairS, strconv.Itoa(c.starved()),
			fmt.Sprintf("%.1f", c.med(figAllocs))+rat(figAllocs),
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
	if err := r.chart(filepath.Join(dir, "ratios.png")); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return r.csv(filepath.Join(dir, "rounds.csv"))
}

// csv writes one line per run, for anyone who wants to look past the medians.
func (r *report) csv(path string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"round", "scenario", "adapter", "elapsed_s", "acquisitions", "ops_per_s", "p50_us", "p99_us",
		"max_wait_us", "handoffs", "handoff_mean_us", "handoff_p99_us", "fairness", "starved", "allocs_per_op",
		"cmds_per_acq", "client_cpu_us_per_op", "server_cpu_us_per_op", "violations", "lock_errs", "unlock_errs"})
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
	for _, res := range r.results {
		fair, starved := res.fairness()
		_ = w.Write([]string{
			strconv.Itoa(res.round), res.scenario, res.adapter,
			strconv.FormatFloat(res.elapsed.Seconds(), 'f', 3, 64),
			strconv.FormatInt(res.acquisitions, 10),
			strconv.FormatFloat(res.opsPerSec(), 'f', 1, 64),
			us(res.p50), us(res.p99), us(res.maxWait),
			strconv.FormatInt(res.handoffs, 10), us(res.handoffMean), us(res.handoffP9),
			strconv.FormatFloat(fair, 'f', 3, 64), strconv.Itoa(starved),
			strconv.FormatFloat(res.allocsPerOp(), 'f', 2, 64),
			strconv.FormatFloat(res.cmdsPerAcq(), 'f', 3, 64),
			strconv.FormatFloat(res.clientCPUPerOp()/1e3, 'f', 2, 64),
			strconv.FormatFloat(res.serverCPUPerOp()/1e3, 'f', 2, 64),
			strconv.FormatInt(res.violations, 10), strconv.FormatInt(res.lockErrs, 10), strconv.FormatInt(res.unlockErrs, 10),
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

// fmtDur prints ns with three significant digits.
func fmtDur(ns float64) string {
	if math.IsNaN(ns) || ns <= 0 {
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
