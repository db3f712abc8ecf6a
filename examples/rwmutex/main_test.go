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

// TestRunShowsReadersOverlapAndTheWriterGettingIn runs the demo as `go run` does without
// REDIS_ADDRS, on embedded servers, and checks what it prints: readers overlapping, the writer
// getting in every time while readers keep coming (within a few read hold times), and no
// exclusion violated.
func TestRunShowsReadersOverlapAndTheWriterGettingIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := defaultConfig()
	cfg.Reloads = 3
	cfg.TTL, cfg.NodeTimeout = 6*time.Second, time.Second // a loaded machine stalls a node past 200ms
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "embedded" || res.Nodes != 3 {
		t.Errorf("mode %q on %d nodes; want embedded on 3", res.Mode, res.Nodes)
	}
	if res.MostReaders < 2 {
		t.Errorf("at most %d readers held at once; want them to overlap", res.MostReaders)
	}
	if len(res.Waits) != cfg.Reloads {
		t.Fatalf("%d reloads; want %d", len(res.Waits), cfg.Reloads)
	}
	for i, w := range res.Waits {
		// The readers in front of the writer finish within one hold; the rest is margin.
		if bound := cfg.ReadHold + time.Second; w > bound {
			t.Errorf("reload %d: the writer waited %v; want at most %v", i, w, bound)
		}
	}
	for i, n := range res.ReadsDuring[1:] {
		if n == 0 {
			t.Errorf("no reads between reloads %d and %d: the readers stopped coming", i+1, i+2)
		}
	}
	if res.Violations != 0 {
		t.Errorf("exclusion violated %d times", res.Violations)
	}
	if res.Version != int64(1+cfg.Reloads) {
		t.Errorf("configuration at v%d; want v%d", res.Version, 1+cfg.Reloads)
	}
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named by URL as a reader would name theirs in REDIS_ADDRS.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := defaultConfig()
	cfg.URLs = strings.Join(quorumsynctest.NewServers(t, 3).URLs(), ",")
	cfg.Reloads = 2
	cfg.TTL, cfg.NodeTimeout = 6*time.Second, time.Second // as above
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", cfg.URLs, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || res.Nodes != 3 || !strings.Contains(out.String(), "mode: REDIS_ADDRS: 3 server(s): redis://") {
		t.Errorf("mode %q on %d nodes; want REDIS_ADDRS on 3, and said so", res.Mode, res.Nodes)
	}
	if res.Violations != 0 || res.Version != int64(1+cfg.Reloads) {
		t.Errorf("%d violations, configuration at v%d; want 0 and v%d", res.Violations, res.Version, 1+cfg.Reloads)
	}
}
