package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// The README's comparison table: a few figures per scenario for quorumsync and its peers, taken
// from the same run as results.md (bench writes it as summary.md). Each row names what it shows;
// a cell is empty where the adapter did not run the scenario.

// summaryRow is one line of the table.
type summaryRow struct {
	label string
	scen  string
	// show renders the cell of c; byName holds the scenario's cells, base is its baseline's.
	show func(c *cell, byName map[string]*cell, base *cell) string
}

// summaryColumns are the table's columns: quorumsync (its primitive for the scenario's load), the
// peers, the raw 1ms poller that is the baseline of most rows, and raw-pass, the same poller with
// quorumsync's local pass (contended rows only).
var summaryColumns = []string{"quorumsync", "redsync", "redislock", "raw", "raw-pass"}

// ratioOf shows f as a same-run ratio to the scenario's baseline.
func ratioOf(f figure) func(c *cell, byName map[string]*cell, base *cell) string {
	return func(c *cell, _ map[string]*cell, base *cell) string { return ratioCell(c, base, f) }
}

// ratioVs shows f as a same-run ratio to adapter's in the scenario.
func ratioVs(adapter string, f figure) func(c *cell, byName map[string]*cell, base *cell) string {
	return func(c *cell, byName map[string]*cell, _ *cell) string { return ratioCell(c, byName[adapter], f) }
}

func ratioCell(c, ref *cell, f figure) string {
	if ref == nil {
		return ""
	}
	if c == ref {
		return "1×"
	}
	if m, _, _, ok := c.ratio(ref, f); ok {
		return fmtRatio(m) + "×"
	}
	return ""
}

func worstWaitOf(c *cell, _ map[string]*cell, _ *cell) string { return fmtDur(float64(c.worstWait())) }

func fairnessOf(c *cell, _ map[string]*cell, _ *cell) string {
	if c.starved() > 0 {
		return "∞ (starved)"
	}
	f := c.maxOver(figFairness)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "∞ (starved)"
	}
	return fmt.Sprintf("%.2f", f)
}

// medianOf shows the median of a duration figure over rounds; nothing when it never happened.
func medianOf(f figure) func(c *cell, byName map[string]*cell, base *cell) string {
	return func(c *cell, _ map[string]*cell, _ *cell) string {
		m := c.med(f)
		if math.IsNaN(m) {
			return ""
		}
		return fmtDur(m)
	}
}

var summaryRows = []summaryRow{
	{"uncontended, same key: ops/s", "same-key", ratioOf(figOps)},
	{"uncontended, a new key every lock: ops/s", "distinct-keys", ratioOf(figOps)},
	{"16 goroutines, own keys: ops/s", "parallel-16", ratioOf(figOps)},
	{"16 goroutines over 4 clients, own keys: ops/s", "parallel-16-c4", ratioOf(figOps)},
	{"quorum N = 3: ops/s (vs raw quorum)", "quorum-3", ratioOf(figOps)},
	{"quorum N = 5: ops/s (vs raw quorum)", "quorum-5", ratioOf(figOps)},
	{"one key, 8 goroutines over 4 clients, no hold: ops/s", "contend-8-h0", ratioOf(figOps)},
	{"same: ops/s vs raw-pass", "contend-8-h0", ratioVs("raw-pass", figOps)},
	{"same: most/fewest acquisitions per goroutine", "contend-8-h0", fairnessOf},
	{"one key, 4 processes × 2 goroutines, 1 ms hold: ops/s", "contend-4p2-h1ms", ratioOf(figOps)},
	{"same: ops/s vs raw-pass", "contend-4p2-h1ms", ratioVs("raw-pass", figOps)},
	{"same: handoff to another process, mean", "contend-4p2-h1ms", medianOf(figHoMean)},
	{"same: lock idle between holders, mean", "contend-4p2-h1ms", medianOf(figIdle)},
	{"same: most/fewest per goroutine", "contend-4p2-h1ms", fairnessOf},
	{"same: worst wait", "contend-4p2-h1ms", worstWaitOf},
	{"one key, 32 goroutines over 4 clients, no hold: ops/s", "contend-32-h0", ratioOf(figOps)},
	{"same: ops/s vs raw-pass", "contend-32-h0", ratioVs("raw-pass", figOps)},
	{"same: most/fewest per goroutine", "contend-32-h0", fairnessOf},
	{"same: worst wait", "contend-32-h0", worstWaitOf},
	{"one key, 32 goroutines over 4 clients, 1 ms hold: ops/s", "contend-32-h1ms", ratioOf(figOps)},
	{"same: ops/s vs raw-pass", "contend-32-h1ms", ratioVs("raw-pass", figOps)},
	{"same: most/fewest per goroutine", "contend-32-h1ms", fairnessOf},
	{"same: worst wait", "contend-32-h1ms", worstWaitOf},
	{"handoff to another client (8 clients, 1 ms hold): mean", "handoff-8", medianOf(figHoMean)},
	{"same: ops/s", "handoff-8", ratioOf(figOps)},
	{"same: ops/s vs raw-pass", "handoff-8", ratioVs("raw-pass", figOps)},
	{"allocations per Lock+Unlock", "same-key", ratioOf(figAllocs)},
	{"bytes per Lock+Unlock", "same-key", ratioOf(figBytes)},
	{"rwmutex, 16 readers over 4 clients, 1 ms hold: ops/s", "rw-readers-16", ratioOf(figOps)},
	{"rwmutex, 1 write in 10: ops/s", "rw-mix-10", ratioOf(figOps)},
	{"semaphore of 4, 32 goroutines over 4 clients, 1 ms hold: ops/s (vs raw semaphore)", "sem-contend-4", ratioOf(figOps)},
}

// summaryAdapter is the adapter that stands for quorumsync in scen: its rwmutex or semaphore
// where the scenario asks for one.
func summaryAdapter(col string, s scenario) string {
	if col != "quorumsync" {
		return col
	}
	switch {
	case s.load.read:
		return "quorumsync-rwmutex"
	case s.load.capacity > 0:
		return "quorumsync-semaphore"
	}
	return col
}

// summary returns the README's table, or "" when the run had none of its scenarios.
func (r *report) summary() string {
	var b strings.Builder
	b.WriteString("| scenario (same-run ratio to the raw lock, unless a figure or \"vs\" another) | " + strings.Join(summaryColumns, " | ") + " |\n")
	b.WriteString("|---|" + strings.Repeat("---|", len(summaryColumns)) + "\n")
	rows := 0
	for _, row := range summaryRows {
		s, ok := scenarioByName(row.scen)
		if !ok {
			continue
		}
		byName := r.cellsByAdapter(row.scen)
		if len(byName) == 0 {
			continue
		}
		base := byName[s.baseline]
		cells := make([]string, len(summaryColumns))
		some := false
		for i, col := range summaryColumns {
			if c := byName[summaryAdapter(col, s)]; c != nil {
				cells[i] = row.show(c, byName, base)
				some = some || cells[i] != ""
			}
		}
		if !some {
			continue
		}
		for i := range cells {
			if cells[i] == "" {
				cells[i] = "—"
			}
		}
		b.WriteString("| " + row.label + " | " + strings.Join(cells, " | ") + " |\n")
		rows++
	}
	if rows == 0 {
		return ""
	}
	fmt.Fprintf(&b, "\nExclusion violations: %d over the whole run. From `%s`, %s, %s.\n",
		r.violations(), r.cfg.cmdline, r.date.UTC().Format(time.DateOnly), cpuModel())
	return b.String()
}
