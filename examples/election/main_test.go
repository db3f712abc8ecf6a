package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(replicaEnv); spec != "" { // a replica process, started by run
		os.Exit(replica(spec, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// testConfig is the demo's configuration with a shorter pause: past the lease (the TTL, at
// most), and the demo waits for the next leader's first write before it resumes the paused one.
func testConfig() config {
	cfg := defaultConfig()
	cfg.Pause = cfg.TTL * 3 / 2
	return cfg
}

// check checks what a run claims: three leaders in turn, each a process of its own, with terms
// that increase; each observed by the other replicas alive; the killed and the paused leader
// each replaced within the TTL and a second (the bound of package election's own tests), and
// never before their lease ran out; the paused leader's write on waking refused, its lease
// invalid and its leadership lost; the resource holding every leader's writes in term order, and
// not the stale one.
func check(t *testing.T, cfg config, res *result, out string) {
	t.Helper()
	if len(res.Leaders) < 3 {
		t.Fatalf("%d leaders; want 3 (the killed one, the paused one, the next)", len(res.Leaders))
	}
	killed, paused, next := res.Leaders[0], res.Leaders[1], res.Leaders[2]
	if killed.Name == paused.Name || paused.Name == next.Name || killed.Pid == paused.Pid || paused.Pid == next.Pid {
		t.Errorf("leaders %+v, %+v, %+v; want each a replica of its own", killed, paused, next)
	}
	if !(killed.Term < paused.Term && paused.Term < next.Term) {
		t.Errorf("terms %d, %d, %d; want them increasing", killed.Term, paused.Term, next.Term)
	}
	for _, ld := range res.Leaders[:3] {
		if n := len(res.Observed[ld.Term]); n < cfg.Replicas-1 {
			t.Errorf("term %d (%s) observed by %v; want %d other replicas", ld.Term, ld.Name, res.Observed[ld.Term], cfg.Replicas-1)
		}
	}
	for _, to := range []struct {
		what      string
		took, gap time.Duration
	}{{"kill", res.KillTakeover, res.KillGap}, {"pause", res.PauseTakeover, res.PauseGap}} {
		if bound := cfg.TTL + time.Second; to.took <= 0 || to.took > bound {
			t.Errorf("takeover after the %s: %v; want within %v", to.what, to.took, bound)
		}
		if to.gap <= 0 {
			t.Errorf("takeover after the %s: %v before the old leader's lease ran out; want after", to.what, -to.gap)
		}
	}
	if !res.StaleRefused || res.StaleValid || !strings.Contains(res.StaleErr, "STALE") {
		t.Errorf("the paused leader's write on waking: refused %v, lease valid %v, error %q; want refused as stale, lease invalid",
			res.StaleRefused, res.StaleValid, res.StaleErr)
	}
	if !strings.Contains(res.LostErr, "lost") {
		t.Errorf("the paused leader's Err: %q; want a loss", res.LostErr)
	}
	if len(res.Violations) > 0 {
		t.Errorf("the resource: %v", res.Violations)
	}
	for _, ld := range res.Leaders[:3] {
		found := false
		for _, entry := range res.Schedule {
			found = found || strings.HasPrefix(entry, strconv.FormatUint(ld.Term, 10)+" "+ld.Name+" took over")
		}
		if !found {
			t.Errorf("the resource %q lacks term %d's takeover by %s", res.Schedule, ld.Term, ld.Name)
		}
	}
	for _, want := range []string{"KILLED (SIGKILL)", "PAUSED (SIGSTOP)", "resumed (SIGCONT)", ": REFUSED: ", "terms only increase in the resource"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunReplacesTheKilledLeaderAndFencesOffThePausedOne runs the demo as `go run` does without
// REDIS_ADDRS, on embedded servers, and checks what it claims.
func TestRunReplacesTheKilledLeaderAndFencesOffThePausedOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig()
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "embedded" {
		t.Errorf("mode %q; want embedded", res.Mode)
	}
	check(t, cfg, res, out.String())
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named as a reader would name theirs in REDIS_ADDRS: the
// replicas, processes of their own, get the same URLs, and it all happens the same way.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls := quorumsynctest.NewServers(t, 3).URLs()
	urls[1] = strings.TrimPrefix(urls[1], "redis://") // host:port is accepted too
	cfg := testConfig()
	cfg.URLs = strings.Join(urls, ",")
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", cfg.URLs, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || !strings.Contains(out.String(), "mode: REDIS_ADDRS: 3 server(s): redis://") {
		t.Errorf("mode %q; want REDIS_ADDRS, and said so", res.Mode)
	}
	check(t, cfg, res, out.String())
}
