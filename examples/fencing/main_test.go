package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/quorumsynctest"
)

func TestMain(m *testing.M) {
	if urls := os.Getenv(childEnv); urls != "" { // the holder process, started by run
		os.Exit(holder(strings.Split(urls, ","), os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// TestRunFencesOffThePausedHolder runs the demo as `go run` does without REDIS_ADDRS, on embedded
// servers, and checks what it claims: the later holder's token is higher, the paused holder's
// lease reads as invalid the moment it wakes, its late write is refused, and the resource keeps
// the later holder's value.
func TestRunFencesOffThePausedHolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, "")
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "embedded" {
		t.Errorf("mode %q; want embedded", res.Mode)
	}
	if res.LaterToken <= res.HolderToken {
		t.Errorf("later token %d; want more than the paused holder's %d", res.LaterToken, res.HolderToken)
	}
	if res.ValidOnWaking {
		t.Error("the paused holder's lease read as valid on waking")
	}
	if !res.LateWriteRefused {
		t.Error("the paused holder's late write was not refused")
	}
	if !strings.Contains(res.Final, "next holder") {
		t.Errorf("the resource says %q; want the next holder's write", res.Final)
	}
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named by URL as a reader would name theirs in REDIS_ADDRS: the
// paused holder, a process of its own, gets the same URLs, and is fenced off all the same.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := strings.Join(quorumsynctest.NewServers(t, 3).URLs(), ",")
	var out bytes.Buffer
	res, err := run(ctx, &out, list)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", list, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || !strings.Contains(out.String(), "mode: REDIS_ADDRS: 3 server(s): redis://") {
		t.Errorf("mode %q; want REDIS_ADDRS, and said so", res.Mode)
	}
	if res.LaterToken <= res.HolderToken || !res.LateWriteRefused {
		t.Errorf("tokens %d then %d, late write refused: %v; want a higher token and the late write refused",
			res.HolderToken, res.LaterToken, res.LateWriteRefused)
	}
}
