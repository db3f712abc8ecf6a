package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

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
		scens = append(scens, s)
	}
	cfg := config{
		duration:  120 * time.Millisecond,
		rounds:    1,
		scenarios: scens,
		adapters:  all,
		seed:      1,
		cmdline:   "go test",
		log:       testWriter{t},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
			// quorumsync's exclusive locks pass a held lock between the goroutines of one client
			// without a command, so contended on one key they may average well under one.
			passes := strings.HasPrefix(name, "quorumsync") && s.keys == keyShared && s.goroutines > 1
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
		var o occupancy
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
// alone, which may overlap.
func TestBrokenLockIsCaught(t *testing.T) {
	srv, err := startServers(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.kill()
	base := scenario{nodes: 1, clients: 2, goroutines: 8, hold: time.Millisecond, keys: keyShared}
	for _, c := range []struct {
		name       string
		load       load
		violations bool
		minPeak    int64
	}{
		{"exclusive", load{}, true, 2},
		{"readers", load{read: true}, false, 2},
		{"readers and writers", load{read: true, writeEvery: 2}, true, 2},
		{"semaphore of 2", load{capacity: 2}, true, 3},
	} {
		sc := base
		sc.name, sc.load = "broken-"+strings.ReplaceAll(c.name, " ", "-"), c.load
		res, err := runOne(context.Background(), srv, sc, brokenAdapter{}, 1, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := res.violations > 0; got != c.violations {
			t.Errorf("%s: got %d violations; want violations: %v", c.name, res.violations, c.violations)
		}
		if res.peak < c.minPeak {
			t.Errorf("%s: got peak %d inside; want >= %d", c.name, res.peak, c.minPeak)
		}
	}
	rep := &report{results: []*runResult{{violations: 3}}}
	if got := rep.violations(); got != 3 {
		t.Errorf("report.violations() = %d; want 3 (the command's exit status depends on it)", got)
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
