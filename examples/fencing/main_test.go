package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addrs := os.Getenv(childEnv); addrs != "" { // the holder process, started by run
		os.Exit(holder(strings.Split(addrs, ","), os.Stdout))
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
	res, err := run(ctx, &out, nil)
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
