package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Report gathers the results of a test binary's scenarios for the table printed at the end.
type Report struct {
	mu      sync.Mutex
	Profile string
	results []*Result
}

// Add records r.
func (rp *Report) Add(r *Result) {
	rp.mu.Lock()
	rp.results = append(rp.results, r)
	rp.mu.Unlock()
}

// Len returns how many results were recorded.
func (rp *Report) Len() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.results)
}

// Write prints the table: one row per scenario run, then the totals.
func (rp *Report) Write(w io.Writer) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	fmt.Fprintf(w, "\nchaos profile %s\n", rp.Profile)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tprimitive\tseed\tsections\tlost (abandoned)\tfaults\tviolations expected\tunexpected\tp99 acquire (faults)\twall")
	var sections, expected, unexpected int
	var wall time.Duration
	for _, r := range rp.results {
		exp := fmt.Sprintf("%d", r.ExpectedFound())
		if len(r.Expected) > 0 {
			exp = fmt.Sprintf("%d (%s)", r.ExpectedFound(), checksFound(r))
			if m := r.Missing(); len(m) > 0 {
				exp += " MISSING " + strings.Join(m, ",")
			}
		}
		p99 := "-"
		if r.DuringFaults > 0 {
			p99 = fmt.Sprintf("%v (n=%d)", r.P99.Round(100*time.Microsecond), r.DuringFaults)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d (%d)\t%s\t%s\t%d\t%s\t%v\n", r.Scenario, r.Primitive, r.Seed, r.Sections, r.Lost, r.Abandoned,
			CountFaults(r.Faults), exp, len(r.Unexpected()), p99, r.Wall.Round(100*time.Millisecond))
		sections += r.Sections
		expected += r.ExpectedFound()
		unexpected += len(r.Unexpected())
		wall += r.Wall
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t\t\t%d\t%d\t\t%v\n", sections, expected, unexpected, wall.Round(100*time.Millisecond))
	tw.Flush()
	fmt.Fprintln(w, "\nreplay a row (in internal/chaos):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rp.results {
		if r.Replay != "" {
			fmt.Fprintf(tw, "%s\t%s\n", r.Scenario, r.Replay)
		}
	}
	tw.Flush()
}

// SummaryLine is one scenario's outcome in the machine-readable summary (see SummaryEnv).
type SummaryLine struct {
	Scenario   string         `json:"scenario"`
	Sections   int            `json:"sections"`
	Lost       int            `json:"lost"`
	Unexpected map[string]int `json:"unexpected"` // by check
}

// WriteSummary writes one JSON line per scenario run: its sections, lost leases and unexpected
// violations by check. scripts/mutations.sh reads it to tell which scenarios caught a planted bug.
func (rp *Report) WriteSummary(w io.Writer) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	enc := json.NewEncoder(w)
	for _, r := range rp.results {
		line := SummaryLine{Scenario: r.Scenario, Sections: r.Sections, Lost: r.Lost, Unexpected: map[string]int{}}
		for _, v := range r.Unexpected() {
			line.Unexpected[v.Check]++
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// checksFound lists the distinct checks among r's expected or allowed violations.
func checksFound(r *Result) string {
	seen := map[string]int{}
	for _, v := range r.Violations {
		seen[v.Check]++
	}
	var parts []string
	for _, c := range sortedKeys(seen) {
		parts = append(parts, fmt.Sprintf("%s:%d", c, seen[c]))
	}
	return strings.Join(parts, " ")
}

// Total returns the critical sections of every result.
func (rp *Report) Total() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	n := 0
	for _, r := range rp.results {
		n += r.Sections
	}
	return n
}
