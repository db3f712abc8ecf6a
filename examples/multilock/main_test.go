package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) {
	if job := os.Getenv(processEnv); job != "" { // a transfer process, started by run
		os.Exit(transferProcess(job, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// testConfig is the demo's configuration, lighter, and tolerant of a loaded machine: the servers
// share two cores with the race detector and, under scripts/test.sh, with other packages' tests,
// so a stall of a few hundred milliseconds is no fault of theirs.
func testConfig() config {
	cfg := defaultConfig()
	cfg.Workers, cfg.Transfers, cfg.Unlocked = 3, 5, 4
	cfg.TTL, cfg.NodeTimeout = 6*time.Second, time.Second
	cfg.NaiveWait = 300 * time.Millisecond
	return cfg
}

// check checks what a run claims: the one-lock-at-a-time transfers deadlock and the Multis do
// not; without locks balances drift from their ledgers; with a Multi per transfer every process
// makes all its transfers, every balance matches its ledger, and the total is unchanged.
func check(t *testing.T, cfg config, res *result, out string) {
	t.Helper()
	for i, err := range res.NaiveErrs {
		if !errors.Is(err, lease.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("naive transfer %d's second lock: got %v; want lease.ErrNotAcquired with the deadline", i+1, err)
		}
	}
	// Deadlocked, they would wait until ctx ends; the TTL is a bound far above their few round
	// trips that a loaded machine still meets.
	if res.MultiBoth <= 0 || res.MultiBoth >= cfg.TTL {
		t.Errorf("the two transfers with a Multi each took %v; want them done within %v", res.MultiBoth, cfg.TTL)
	}
	if res.Unlocked.Off == 0 {
		t.Errorf("without locks every balance matched its ledger; want lost updates")
	}
	l := res.Locked
	if len(l.PerProcess) != cfg.Processes {
		t.Fatalf("%d processes reported; want %d", len(l.PerProcess), cfg.Processes)
	}
	pids := map[int]bool{os.Getpid(): true}
	for i, st := range l.PerProcess {
		if st.Transfers != cfg.Workers*cfg.Transfers {
			t.Errorf("process %d made %d transfers; want %d", i+1, st.Transfers, cfg.Workers*cfg.Transfers)
		}
		if st.ToFirst == 0 || st.ToFirst == st.Transfers {
			t.Errorf("process %d listed \"to\" first in %d of %d transfers; want both orders", i+1, st.ToFirst, st.Transfers)
		}
		if pids[st.Pid] {
			t.Errorf("process %d has pid %d, as another process or this one; want processes of their own", i+1, st.Pid)
		}
		pids[st.Pid] = true
	}
	if l.Off != 0 || l.Total != res.Expected {
		t.Errorf("with a Multi: %d balances off their ledgers, total %d; want 0 and %d (balances %v, ledgers %v)",
			l.Off, l.Total, res.Expected, l.Balances, l.Ledgers)
	}
	for _, want := range []string{"deadlock, both gave up", "one Multi each", "without locks: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got, want := lines[len(lines)-1], "total: 500 (unchanged)"; got != want {
		t.Errorf("last line: got %q; want %q", got, want)
	}
}

// TestRunKeepsTheTotalAcrossProcesses runs the demo as `go run` does without REDIS_ADDRS, on
// embedded servers, and checks what it claims.
func TestRunKeepsTheTotalAcrossProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig()
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "embedded" || res.Nodes != 3 {
		t.Errorf("mode %q on %d nodes; want embedded on 3", res.Mode, res.Nodes)
	}
	check(t, cfg, res, out.String())
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named as a reader would name theirs in REDIS_ADDRS: the
// transfer processes get the same URLs, and keep the total all the same.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls := quorumsynctest.NewServers(t, 3).URLs()
	urls[2] = strings.TrimPrefix(urls[2], "redis://") // host:port is accepted too
	cfg := testConfig()
	cfg.URLs = strings.Join(urls, ",")
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", cfg.URLs, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || res.Nodes != 3 || !strings.Contains(out.String(), "mode: REDIS_ADDRS: 3 server(s): redis://") {
		t.Errorf("mode %q on %d nodes; want REDIS_ADDRS on 3, and said so", res.Mode, res.Nodes)
	}
	check(t, cfg, res, out.String())
}
