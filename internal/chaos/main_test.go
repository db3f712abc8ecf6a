package chaos

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

var (
	profile Profile
	report  Report
)

// TestMain runs a child client when the test binary was started as one (see [ChildEnv]).
// Otherwise it loads the profile, runs the tests, prints the table (and writes it to the report
// file), checks the profile's volume of critical sections when every test ran, and checks that no
// goroutine leaked.
func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) != "" {
		os.Exit(RunChild())
	}
	flag.Parse()
	var err error
	if profile, err = LoadProfile(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	report.Profile = profile.Name
	fmt.Printf("chaos: profile %s, seeds %v (replay one with %s=<seed>)\n", profile.Name, profile.Seeds, SeedEnv)
	code := m.Run()
	if report.Len() > 0 {
		var b strings.Builder
		report.Write(&b)
		fmt.Print(b.String())
		path := os.Getenv(ReportEnv)
		if path == "" {
			path = filepath.Join(os.TempDir(), "quorumsync-chaos-report.txt")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: write the report:", err)
		}
		if path := os.Getenv(SummaryEnv); path != "" {
			var s strings.Builder
			if err := report.WriteSummary(&s); err == nil {
				err = os.WriteFile(path, []byte(s.String()), 0o644)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "chaos: write the summary:", err)
			}
		}
	}
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && report.Total() < profile.MinSections {
		fmt.Fprintf(os.Stderr, "chaos: profile %s completed %d critical sections; want at least %d\n", profile.Name, report.Total(), profile.MinSections)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// replayCommand returns the command that runs test t again, in internal/chaos: with the seed
// (CHAOS_SEED) and the profile of this run when seed is not 0 (a randomized scenario).
func replayCommand(t testing.TB, seed uint64) string {
	parts := strings.Split(t.Name(), "/")
	var run []string
	for _, p := range parts {
		if strings.HasPrefix(p, "seed=") {
			break // CHAOS_SEED picks it
		}
		run = append(run, "^"+regexp.QuoteMeta(p)+"$")
	}
	cmd := fmt.Sprintf("go test -race -count=1 -run '%s' .", strings.Join(run, "/"))
	if seed != 0 {
		cmd = fmt.Sprintf("CHAOS_SEED=%d %s", seed, cmd)
		if profile.Name != "" && profile.Name != "ci" {
			cmd = fmt.Sprintf("%s=%s %s", ProfileEnv, profile.Name, cmd)
		}
	}
	return cmd
}
