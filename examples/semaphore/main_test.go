package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunNeverExceedsThePermits runs the demo as `go run` does without REDIS_ADDRS, on embedded
// servers, and checks what it prints: every job ran, by every client, and the resource never had
// more jobs inside at once than there are permits — but did have several (the permits are used).
func TestRunNeverExceedsThePermits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := defaultConfig()
	cfg.Jobs = 5
	// The embedded servers share this process's two cores with the race detector and, under
	// scripts/test.sh, with every other package's tests: a stall of a few hundred milliseconds is
	// no fault of theirs, so give them a per-node timeout that tolerates it.
	cfg.TTL, cfg.NodeTimeout = 6*time.Second, time.Second
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "embedded" || res.Nodes != 3 {
		t.Errorf("mode %q on %d nodes; want embedded on 3", res.Mode, res.Nodes)
	}
	for i, n := range res.Jobs {
		if n != int64(cfg.Workers*cfg.Jobs) {
			t.Errorf("client %d ran %d jobs; want %d", i+1, n, cfg.Workers*cfg.Jobs)
		}
	}
	if res.Highest > cfg.Permits {
		t.Errorf("highest concurrency %d; want at most %d", res.Highest, cfg.Permits)
	}
	if res.Highest < 2 {
		t.Errorf("highest concurrency %d; want the permits shared (at least 2 at once)", res.Highest)
	}
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named by URL as a reader would name theirs in REDIS_ADDRS.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := defaultConfig()
	cfg.URLs = strings.Join(quorumsynctest.NewServers(t, 3).URLs(), ",")
	cfg.Jobs = 3
	cfg.TTL, cfg.NodeTimeout = 6*time.Second, time.Second // as above: a loaded machine stalls
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", cfg.URLs, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || res.Nodes != 3 || !strings.Contains(out.String(), "mode: REDIS_ADDRS: 3 server(s): redis://") {
		t.Errorf("mode %q on %d nodes; want REDIS_ADDRS on 3, and said so", res.Mode, res.Nodes)
	}
	for i, n := range res.Jobs {
		if n != int64(cfg.Workers*cfg.Jobs) {
			t.Errorf("client %d ran %d jobs; want %d", i+1, n, cfg.Workers*cfg.Jobs)
		}
	}
	if res.Highest > cfg.Permits {
		t.Errorf("highest concurrency %d; want at most %d", res.Highest, cfg.Permits)
	}
}
