// Command mutations runs the chaos suite's randomized scenarios (the CI profile) once with no bug
// planted and once per bug of package internal/mutation, and prints a Markdown table of which
// scenarios, by which checks, caught each. A bug the scenarios miss means the suite lacks a fault
// or a check. Run it from internal/chaos (scripts/mutations.sh does):
//
//	go run ./cmd/mutations [-only NAME] [-seed N] [-race=false]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/quorumsync/quorumsync/internal/chaos"
	"github.com/quorumsync/quorumsync/internal/mutation"
)

func main() {
	only := flag.String("only", "", "run only this mutation (\"none\" for the unplanted code)")
	seed := flag.String("seed", "", "replay this seed (CHAOS_SEED) instead of a fresh one per run")
	race := flag.Bool("race", true, "run the suite under the race detector, as CI does")
	flag.Parse()
	names := append([]string{""}, mutation.Names...)
	if *only != "" {
		names = []string{strings.TrimPrefix(*only, "none")}
	}
	dir, err := os.MkdirTemp("", "mutations")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	var rows []string
	missed := 0
	for _, name := range names {
		label := name
		if label == "" {
			label = "(none)"
		}
		fmt.Fprintf(os.Stderr, "mutations: %s ...\n", label)
		summary := filepath.Join(dir, "summary-"+label+".jsonl")
		args := []string{"test", "-tags", "quorumsync_mutation", "-count=1", "-timeout", "20m", "-run", "^TestChaos$", "."}
		if *race {
			args = append(args[:1], append([]string{"-race"}, args[1:]...)...)
		}
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), mutation.Env+"="+name, chaos.SummaryEnv+"="+summary,
			chaos.ReportEnv+"="+filepath.Join(dir, "report-"+label+".txt"))
		if *seed != "" {
			cmd.Env = append(cmd.Env, chaos.SeedEnv+"="+*seed)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		began := time.Now()
		runErr := cmd.Run()
		lines, err := readSummary(summary)
		if err != nil {
			fail(fmt.Errorf("%s: %v (the test printed:\n%s)", label, err, out.String()))
		}
		caught, sections, lost := describe(lines)
		switch {
		case name == "" && caught != "":
			fmt.Fprintf(os.Stderr, "mutations: the unplanted code had unexpected violations: %s\n", caught)
			missed++
		case name == "" && runErr != nil:
			fmt.Fprintf(os.Stderr, "mutations: the unplanted run failed: %v\n%s\n", runErr, out.String())
			missed++
		case name != "" && caught == "":
			missed++
			caught = "**missed**"
		}
		if caught == "" {
			caught = "nothing (as it must)"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %v |", label, caught, sections, lost, time.Since(began).Round(time.Second)))
	}
	fmt.Println("| mutation | caught by (scenario: unexpected violations by check) | sections | lost leases | wall |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	if missed > 0 {
		os.Exit(1)
	}
}

func readSummary(path string) ([]chaos.SummaryLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []chaos.SummaryLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l chaos.SummaryLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// describe says which scenarios caught something, and totals the sections and lost leases.
func describe(lines []chaos.SummaryLine) (caught string, sections, lost int) {
	var parts []string
	for _, l := range lines {
		sections += l.Sections
		lost += l.Lost
		if len(l.Unexpected) == 0 {
			continue
		}
		var checks []string
		for c, n := range l.Unexpected {
			checks = append(checks, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(checks)
		scenario, _, _ := strings.Cut(l.Scenario, "/")
		parts = append(parts, fmt.Sprintf("%s: %s", scenario, strings.Join(checks, ", ")))
	}
	return strings.Join(parts, "; "), sections, lost
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutations:", err)
	os.Exit(2)
}
