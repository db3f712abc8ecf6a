package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary be a client process of a run, as the bench binary is (see
// child.go), with the tests' own adapters besides the real ones.
func TestMain(m *testing.M) {
	extraAdapters = append(extraAdapters, brokenAdapter{}, failingAdapter{}, exitingAdapter{})
	if spec, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// testWriter sends the benchmark's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestQuickRunExcludesAndMakesProgress runs the harness in quick mode against real redis-server
// processes with every adapter: one contended mutex scenario (raw-quorum included, on one node),
// the mixed reader-writer scenario, the contended semaphore scenario (the libraries without those
// primitives run them with exclusive locks), and the N=3 quorum scenario with every adapter that
// fans out. Every adapter must acquire, and no holders may ever overlap in a way the primitive
// forbids.
func TestQuickRunExcludesAndMakesProgress(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH: this test needs a real Redis server; install it with: %s", installHint)
	}
	var all []string
	for _, a := range adapters {
		all = append(all, a.Name())
	}
	var scens []scenario
	for _, name := range []string{"contend-8-h0", "rw-mix-10", "sem-contend-4", "quorum-3"} {
		s, ok := scenarioByName(name)
		if !ok {
			t.Fatalf("no scenario %q", name)
		}
		// Every adapter in one process: this test is about the adapters and the checks, and ~40
		// runs of 4 client processes took 150 s under -race; TestClientsAreProcesses runs clients
		// as processes.
		s.clients = 1
		scens = append(scens, s)
	}
	cfg := config{
		duration:  300 * time.Millisecond,
		rounds:    1,
		scenarios: scens,
		adapters:  all,
		seed:      1,
		cmdline:   "go test",
		log:       testWriter{t},
	}
	// A safety net, not a bound: about 40 runs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := benchmark(ctx, cfg)
	if err != nil {
		t.Fatalf("benchmark: %v", err)
	}

	for _, s := range scens {
		names := adaptersFor(s, all)
		if s.nodes > 1 && (len(names) != len(all)-len(singleNodeOnly) || slices.ContainsFunc(names, func(n string) bool { return singleNodeOnly[n] })) {
			t.Errorf("%s: got adapters %v; want every adapter that fans out", s.name, names)
		}
		for _, name := range names {
			var res *runResult
			for _, r := range rep.results {
				if r.scenario == s.name && r.adapter == name {
					res = r
				}
			}
			if res == nil {
				t.Errorf("%s/%s: no result; want one", s.name, name)
				continue
			}
			if res.violations != 0 {
				t.Errorf("%s/%s: got %d exclusion violations; want 0", s.name, name, res.violations)
			}
			if res.acquisitions == 0 {
				t.Errorf("%s/%s: got 0 acquisitions; want > 0 (first error: %v)", s.name, name, res.firstErr)
			}
			if res.unlockErrs != 0 {
				t.Errorf("%s/%s: got %d unlock errors; want 0 (first error: %v)", s.name, name, res.unlockErrs, res.firstErr)
			}
			// quorumsync's exclusive locks (and raw-pass) pass a held lock between the goroutines
			// of one client without a command, so contended on one key they may average well
			// under one.
			passes := (strings.HasPrefix(name, "quorumsync") || name == "raw-pass") && s.keys == keyShared && s.goroutines > 1
			if c := res.cmdsPerAcq(); c < 2 && !passes || c == 0 {
				t.Errorf("%s/%s: got %.2f Redis commands per acquisition; want >= 2 (lock and unlock), or > 0 for a lock passed within a client", s.name, name, c)
			}
			if res.bytes == 0 {
				t.Errorf("%s/%s: got 0 bytes allocated; want > 0", s.name, name)
			}
		}
	}
	// The README's table has a row for each of its scenarios that ran, with quorumsync's figure.
	sum := rep.summary()
	for _, row := range []string{"| one key, 8 goroutines over 4 clients, no hold: ops/s | ", "| quorum N = 3: ops/s (vs raw quorum) | ",
		"| rwmutex, 1 write in 10: ops/s | ", "| semaphore of 4, 32 goroutines over 4 clients, 1 ms hold: ops/s (vs raw semaphore) | "} {
		i := strings.Index(sum, row)
		if i < 0 {
			t.Errorf("summary: no row %q in:\n%s", row, sum)
			continue
		}
		if cell, _, _ := strings.Cut(sum[i+len(row):], " |"); !strings.HasSuffix(cell, "×") {
			t.Errorf("summary: row %q: quorumsync's cell is %q; want a ratio", row, cell)
		}
	}
	// The primitives that let holders share must have been seen sharing, within their limits.
	for _, c := range []struct {
		scen, adapter string
		minPeak       int64
		maxPeak       int64
	}{
		{"rw-mix-10", "quorumsync-rwmutex", 2, 16},
		{"sem-contend-4", "quorumsync-semaphore", 2, 4},
		{"sem-contend-4", "raw-sem", 2, 4},
		{"sem-contend-4", "quorumsync", 1, 1}, // a mutex: exclusive
		{"contend-8-h0", "quorumsync-rwmutex", 1, 1},
	} {
		for _, r := range rep.results {
			if r.scenario == c.scen && r.adapter == c.adapter && (r.peak < c.minPeak || r.peak > c.maxPeak) {
				t.Errorf("%s/%s: got peak %d inside; want %d to %d", c.scen, c.adapter, r.peak, c.minPeak, c.maxPeak)
			}
			if r.scenario == "rw-mix-10" && r.adapter == "quorumsync-rwmutex" && (r.byRole[roleRead] == 0 || r.byRole[roleWrite] == 0) {
				t.Errorf("rw-mix-10/quorumsync-rwmutex: got %d reads and %d writes; want both > 0", r.byRole[roleRead], r.byRole[roleWrite])
			}
		}
	}
	md := rep.markdown()
	for _, s := range []string{"## contend-8-h0", "## rw-mix-10", "## sem-contend-4", "## quorum-3", "| quorumsync |",
		"(baseline)", "writers' worst wait", "peak inside", "bytes/op", "exclusion violations = 0"} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}
}

// TestOccupancyRules checks the exclusion rule of each access mode, holder by holder.
func TestOccupancyRules(t *testing.T) {
	read, write := access{mode: shared}, exclusiveAccess
	sem := func(w int64) access { return access{mode: permits, weight: w, capacity: 4} }
	type step struct {
		a      access
		leave  bool
		ok     bool
		inside int64
	}
	for name, steps := range map[string][]step{
		"readers overlap":               {{a: read, ok: true, inside: 1}, {a: read, ok: true, inside: 2}, {a: read, ok: true, inside: 3}},
		"writer after reader":           {{a: read, ok: true, inside: 1}, {a: write, ok: false, inside: 2}},
		"reader after writer":           {{a: write, ok: true, inside: 1}, {a: read, ok: false, inside: 2}},
		"two writers":                   {{a: write, ok: true, inside: 1}, {a: write, ok: false, inside: 2}},
		"writer after readers left":     {{a: read, ok: true, inside: 1}, {a: read, leave: true}, {a: write, ok: true, inside: 1}},
		"permits up to capacity":        {{a: sem(1), ok: true, inside: 1}, {a: sem(2), ok: true, inside: 3}, {a: sem(1), ok: true, inside: 4}},
		"permits over capacity":         {{a: sem(3), ok: true, inside: 3}, {a: sem(2), ok: false, inside: 5}},
		"permits after a release":       {{a: sem(3), ok: true, inside: 3}, {a: sem(3), leave: true}, {a: sem(4), ok: true, inside: 4}},
		"a weight above the capacity":   {{a: sem(5), ok: false, inside: 5}},
		"exclusive beside permits":      {{a: sem(1), ok: true, inside: 1}, {a: write, ok: false, inside: 2}},
		"permits beside an exclusive":   {{a: write, ok: true, inside: 1}, {a: sem(1), ok: false, inside: 2}},
		"writer alone, again and again": {{a: write, ok: true, inside: 1}, {a: write, leave: true}, {a: write, ok: true, inside: 1}},
	} {
		o := occupancy{new(atomic.Int64)}
		for i, st := range steps {
			if st.leave {
				o.leave(st.a)
				continue
			}
			ok, inside := o.enter(st.a)
			if ok != st.ok || inside != st.inside {
				t.Errorf("%s, step %d (%v): got ok %v, inside %d; want ok %v, inside %d", name, i, st.a, ok, inside, st.ok, st.inside)
			}
		}
	}
}

// brokenAdapter's locks never exclude anyone: Lock returns at once. Its shared locks claim to grant
// what they were asked for, so the check holds them to a reader's or a semaphore's rule.
type brokenAdapter struct{}

func (brokenAdapter) Name() string                                        { return "broken" }
func (brokenAdapter) NewClient(context.Context, []string) (Client, error) { return brokenClient{}, nil }

type brokenClient struct{}

func (brokenClient) NewLocker(string) Locker                       { return brokenLock{} }
func (brokenClient) NewSharedLocker(string, access) (Locker, bool) { return brokenLock{}, true }
func (brokenClient) Close() error                                  { return nil }

type brokenLock struct{}

func (brokenLock) Lock(context.Context) error   { return nil }
func (brokenLock) Unlock(context.Context) error { return nil }

// TestBrokenLockIsCaught runs a lock that excludes nobody through the harness: the check must count
// violations for a mutex's, a reader-writer lock's and a semaphore's rules, and none for readers
// alone, which may overlap — in one process, in two processes of 4 goroutines, and with one
// goroutine in each of two processes, where only the check shared through the arena can see them.
func TestBrokenLockIsCaught(t *testing.T) {
	srv, err := startServers(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.kill()
	base := scenario{nodes: 1, hold: time.Millisecond, keys: keyShared}
	for _, c := range []struct {
		name                string
		clients, goroutines int
		load                load
		violations          bool
		minPeak             int64
	}{
		{"exclusive", 2, 8, load{}, true, 2},
		{"exclusive, one goroutine in each of two processes", 2, 2, load{}, true, 2},
		{"exclusive, in one process", 1, 8, load{}, true, 2},
		{"readers", 2, 8, load{read: true}, false, 2},
		{"readers and writers", 2, 8, load{read: true, writeEvery: 2}, true, 2},
		{"readers and writers, one goroutine in each of two processes", 2, 2, load{read: true, writeEvery: 2}, true, 2},
		{"semaphore of 2", 2, 8, load{capacity: 2}, true, 3},
	} {
		sc := base
		sc.name, sc.load = "broken-"+strings.ReplaceAll(c.name, " ", "-"), c.load
		sc.clients, sc.goroutines = c.clients, c.goroutines
		res, err := runOne(context.Background(), srv, sc, brokenAdapter{}, 1, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := res.violations > 0; got != c.violations {
			t.Errorf("%s: got %d violations; want violations: %v", c.name, res.violations, c.violations)
		}
		if res.peak < c.minPeak {
			t.Errorf("%s: got peak %d inside; want >= %d", c.name, res.peak, c.minPeak)
		}
		if res.processes != c.clients {
			t.Errorf("%s: ran in %d processes; want %d", c.name, res.processes, c.clients)
		}
	}
	rep := &report{results: []*runResult{{violations: 3}}}
	if got := rep.violations(); got != 3 {
		t.Errorf("report.violations() = %d; want 3 (the command's exit status depends on it)", got)
	}
}

// failingAdapter cannot make a client; exitingAdapter's client process dies in its first Lock.
type failingAdapter struct{}

func (failingAdapter) Name() string { return "failing" }
func (failingAdapter) NewClient(context.Context, []string) (Client, error) {
	return nil, errors.New("deliberately failing client")
}

type exitingAdapter struct{}

func (exitingAdapter) Name() string { return "exiting" }
func (exitingAdapter) NewClient(context.Context, []string) (Client, error) {
	return exitingClient{}, nil
}

type exitingClient struct{ brokenClient }

func (exitingClient) NewLocker(string) Locker { return exitingLock{} }

type exitingLock struct{ brokenLock }

func (exitingLock) Lock(context.Context) error {
	os.Exit(7)
	return nil
}

// TestClientProcessFailureFailsTheRun checks that a client process that fails, or dies, fails the
// run with what it said and how it ended.
func TestClientProcessFailureFailsTheRun(t *testing.T) {
	srv, err := startServers(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.kill()
	sc := scenario{name: "failing", nodes: 1, clients: 2, goroutines: 2, keys: keyShared}
	for _, c := range []struct {
		ad   Adapter
		want []string
	}{
		{failingAdapter{}, []string{"before it sent ready", "exit status 1", "deliberately failing client"}},
		{exitingAdapter{}, []string{"before it sent ready", "exit status 7"}},
	} {
		_, err := runOne(context.Background(), srv, sc, c.ad, 1, 100*time.Millisecond)
		if err == nil {
			t.Errorf("%s: got no error; want the client's failure", c.ad.Name())
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got error %q; want it to contain %q", c.ad.Name(), err, w)
			}
		}
	}
}

// TestClientsAreProcesses runs scenarios of several clients, each client a child process, next to
// one of a single client in this process, and checks what only sharing across processes gets
// right: the clients ran in as many processes, all of them acquired, every acquisition left a turn
// record (one idle gap and one handoff between each two), handoffs went where the scenario sends
// them, and the clients began together on one clock.
func TestClientsAreProcesses(t *testing.T) {
	const d = 300 * time.Millisecond
	var scens []scenario
	for _, name := range []string{"contend-4p2-h1ms", "handoff-8", "handoff-1x8"} {
		s, _ := scenarioByName(name)
		scens = append(scens, s)
	}
	cfg := config{duration: d, rounds: 1, scenarios: scens, adapters: []string{"quorumsync", "raw", "raw-pass"},
		seed: 1, cmdline: "go test", log: testWriter{t}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := benchmark(ctx, cfg)
	if err != nil {
		t.Fatalf("benchmark: %v", err)
	}
	for _, r := range rep.results {
		s, _ := scenarioByName(r.scenario)
		name := r.scenario + "/" + r.adapter
		if r.processes != s.clients {
			t.Errorf("%s: ran in %d processes; want %d", name, r.processes, s.clients)
		}
		if r.violations != 0 || r.unlockErrs != 0 {
			t.Errorf("%s: got %d violations, %d unlock errors; want none (first error: %v)", name, r.violations, r.unlockErrs, r.firstErr)
		}
		perClient := make([]int64, s.clients)
		for g, n := range r.perGoroutine {
			perClient[g%s.clients] += n
		}
		if slices.Contains(perClient, 0) || len(r.perGoroutine) != s.goroutines {
			t.Errorf("%s: acquisitions per client %v over %d goroutines; want every client > 0, %d goroutines", name, perClient, len(r.perGoroutine), s.goroutines)
		}
		if r.idle.n != r.acquisitions-1 || r.handoffCross.n+r.handoffLocal.n != r.acquisitions-1 || r.idle.mean <= 0 {
			t.Errorf("%s: %d acquisitions, %d idle gaps (mean %v), %d+%d handoffs; want a gap and a handoff between every two, gaps > 0",
				name, r.acquisitions, r.idle.n, r.idle.mean, r.handoffCross.n, r.handoffLocal.n)
		}
		switch {
		case s.clients == 1 && r.handoffCross.n != 0:
			t.Errorf("%s: got %d handoffs to another client of one; want 0", name, r.handoffCross.n)
		case s.handoff && s.clients == s.goroutines && r.handoffLocal.n != 0:
			t.Errorf("%s: got %d handoffs within a client of one goroutine; want 0", name, r.handoffLocal.n)
		case s.clients > 1 && (r.handoffCross.n == 0 || r.handoffCross.mean <= 0):
			t.Errorf("%s: got %d handoffs to another process (mean %v); want some, > 0", name, r.handoffCross.n, r.handoffCross.mean)
		}
		// A client sleeps until the start instant the harness set, so on a clock both read alike
		// it begins at or after it (Go's own monotonic readings, relative to each process's
		// start, would put a child's begin seconds before). The upper bounds are generous: a
		// machine loaded with more processes than cores may take a while to run them all. Every
		// client stops at the deadline, start+d, so the run lasts at least d minus that lag.
		if r.startLag < -10*time.Microsecond || r.startLag > 2*time.Second || r.elapsed < d-r.startLag || r.elapsed > d+5*time.Second {
			t.Errorf("%s: the last client began %v after the start instant and the run lasted %v; want it at or after the start, and about %v",
				name, r.startLag, r.elapsed, d)
		}
		if r.clientCPU <= 0 || r.mallocs == 0 || r.p50 <= 0 || r.cmdsPerAcq() <= 0 {
			t.Errorf("%s: client CPU %v, %d mallocs, p50 %v, %.2f cmds/acq; want all > 0", name, r.clientCPU, r.mallocs, r.p50, r.cmdsPerAcq())
		}
	}
	md := rep.markdown()
	for _, want := range []string{"| contend-4p2-h1ms | quorumsync | lock idle between holders: mean ≤ raw's |",
		"| contend-4p2-h1ms | quorumsync | ops/s ≥ 1.0× raw-pass |", "idle between holders (mean)", "| raw-pass |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestMonoClock checks that monoNow reads CLOCK_MONOTONIC, the clock every process shares, to
// within its calibration. (That the children's readings compare with the harness's is checked by
// TestClientsAreProcesses: they begin at, or soon after, the start instant the harness set.)
func TestMonoClock(t *testing.T) {
	for range 1000 {
		r0 := rawMono()
		m := monoNow()
		r1 := rawMono()
		if m < r0-5e3 || m > r1+5e3 {
			t.Fatalf("monoNow() = %d, between raw readings %d and %d; want within 5µs of them", m, r0, r1)
		}
	}
}

// TestHistQuantile checks the histogram against exact quantiles within its ~3% bucket error.
func TestHistQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.035 || d > 0.035 {
			t.Errorf("quantile(%v) = %v; want %v ±3.5%%", c.q, got, c.want)
		}
	}
	if got, want := h.mean(), 5000500*time.Nanosecond; got != want {
		t.Errorf("mean = %v; want %v", got, want)
	}
	// A child process sends its histograms as JSON: the round trip must lose nothing.
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var back hist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Errorf("hist after a JSON round trip differs (n %d, sum %d, max %d; want %d, %d, %d)", back.n, back.sum, back.max, h.n, h.sum, h.max)
	}
}

// BenchmarkLockUnlock measures one uncontended Lock+Unlock on one key per adapter, for profiling a
// single library in isolation:
//
//	go test -run '^$' -bench 'LockUnlock/quorumsync/N=1' -benchmem -cpuprofile cpu.prof -memprofile mem.prof
//	go tool pprof -top -cum cpu.prof
func BenchmarkLockUnlock(b *testing.B) {
	srv, err := startServers(context.Background(), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.kill()
	for _, n := range []int{1, 3} {
		for _, a := range adapters {
			if n > 1 && singleNodeOnly[a.Name()] {
				continue
			}
			b.Run(a.Name()+"/N="+string(rune('0'+n)), func(b *testing.B) {
				ctx := context.Background()
				c, err := a.NewClient(ctx, srv.addrs(n))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				lk := c.NewLocker("bench:" + a.Name() + ":" + b.Name())
				b.ReportAllocs()
				for b.Loop() {
					if err := lk.Lock(ctx); err != nil {
						b.Fatal(err)
					}
					if err := lk.Unlock(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestRunsArePooled checks -runs: every run starts its own servers and adds its rounds after the
// last run's, and the report's medians and ranges are over all of them.
func TestRunsArePooled(t *testing.T) {
	s, ok := scenarioByName("same-key")
	if !ok {
		t.Fatal("no scenario same-key")
	}
	cfg := config{
		duration:  100 * time.Millisecond,
		rounds:    2,
		runs:      2,
		scenarios: []scenario{s},
		adapters:  []string{"quorumsync"},
		seed:      1,
		cmdline:   "go test",
		log:       testWriter{t},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := benchmark(ctx, cfg)
	if err != nil {
		t.Fatalf("benchmark: %v", err)
	}
	rounds := map[string][]int{}
	for _, res := range rep.results {
		rounds[res.adapter] = append(rounds[res.adapter], res.round)
	}
	for _, a := range []string{"quorumsync", "raw"} {
		if got := rounds[a]; !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Errorf("%s ran rounds %v; want 1 to 4 (two runs of two)", a, got)
		}
	}
	byName := rep.cellsByAdapter("same-key")
	if n := len(byName["quorumsync"].roundRatios(byName["raw"], figOps)); n != 4 {
		t.Errorf("the ops/s ratio pools %d rounds; want 4", n)
	}
	if md := rep.markdown(); !strings.Contains(md, "2 full runs of 2 rounds") {
		t.Errorf("the header does not say the runs were pooled:\n%s", md[:min(len(md), 600)])
	}
}
