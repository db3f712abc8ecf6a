package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/quorumsynctest"
	"github.com/quorumsync/quorumsync/watchdog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunCountsEveryIncrementAndOutlivesACrashedHolder runs the demo as `go run` does without
// REDIS_ADDRS, on embedded servers, and checks what it claims: no increment lost under the lock
// (while some are lost without it), TryLock refused while held, and the workers kept out by the
// crashed holder until its lease's validity had ended, but not much longer than one TTL.
func TestRunCountsEveryIncrementAndOutlivesACrashedHolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := defaultConfig()
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	if res.Mode != "embedded" || res.Nodes != embeddedNodes || res.Majority != embeddedNodes/2+1 {
		t.Errorf("mode %q, %d nodes, majority %d; want embedded, %d, %d",
			res.Mode, res.Nodes, res.Majority, embeddedNodes, embeddedNodes/2+1)
	}
	if want := int64(cfg.Workers * cfg.Increments); res.Final != want || res.Expected != want {
		t.Errorf("final count %d, expected %d; want both %d", res.Final, res.Expected, want)
	}
	if res.WithoutLock >= res.Expected {
		t.Errorf("without the lock the counter reached %d of %d; want lost increments", res.WithoutLock, res.Expected)
	}
	if !errors.Is(res.TryLockErr, lease.ErrNotAcquired) {
		t.Errorf("TryLock while held: got %v; want an error matching lease.ErrNotAcquired", res.TryLockErr)
	}

	// The crash scenario.
	if res.CrashedAt.IsZero() || res.CrashValidUntil.IsZero() || res.FirstLockAfterCrash.IsZero() {
		t.Fatalf("crash not observed: crashed at %v, valid until %v, first lock after %v",
			res.CrashedAt, res.CrashValidUntil, res.FirstLockAfterCrash)
	}
	if !res.FirstLockAfterCrash.After(res.CrashValidUntil) {
		t.Errorf("a worker got the lock %v before the crashed lease's validity ended",
			res.CrashValidUntil.Sub(res.FirstLockAfterCrash))
	}
	// The crash comes a few ms after the lock, so the others wait about one TTL: a waiter sleeps no
	// longer than the holder's remaining TTL. The upper bound is loose because on a loaded machine
	// the embedded servers' clocks fall behind, which delays expiry.
	if b := res.Blocked(); b < cfg.TTL/2 || b > 5*cfg.TTL {
		t.Errorf("blocked by the crashed holder for %v; want about the TTL (%v)", b, cfg.TTL)
	}
	if !errors.Is(res.CrashLeaseErr, lease.ErrLost) || !errors.Is(res.CrashLeaseErr, watchdog.ErrExpired) {
		t.Errorf("crashed lease's Err: got %v; want lease.ErrLost caused by watchdog.ErrExpired", res.CrashLeaseErr)
	}

	for _, want := range []string{
		"mode: embedded: 3 in-process Redis servers",
		"crasher: crashed without unlocking",
		"workers: blocked ",
		"errors.Is(err, lease.ErrNotAcquired): true",
		"inside m.Do",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got, want := lines[len(lines)-1], fmt.Sprintf("final count: %d (expected %d)", res.Expected, res.Expected); got != want {
		t.Errorf("last line: got %q; want %q", got, want)
	}
}

// TestRunOnServersNamedInREDIS_ADDRS runs the demo on servers of its own (real redis-servers
// where redis-server is installed), named as a reader would name theirs in REDIS_ADDRS: URLs, and
// a plain host:port among them. It checks that the demo uses them, says so, and counts right.
func TestRunOnServersNamedInREDIS_ADDRS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls := quorumsynctest.NewServers(t, 3).URLs()
	urls[1] = strings.TrimPrefix(urls[1], "redis://") // host:port is accepted too
	cfg := defaultConfig()
	cfg.URLs = strings.Join(urls, ", ")
	cfg.Workers, cfg.Increments = 3, 10
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Logf("REDIS_ADDRS=%s\noutput:\n%s", cfg.URLs, out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Mode != "REDIS_ADDRS" || res.Nodes != 3 {
		t.Errorf("mode %q on %d nodes; want REDIS_ADDRS on 3", res.Mode, res.Nodes)
	}
	if res.Final != 30 || res.Expected != 30 {
		t.Errorf("final count %d, expected %d; want both 30", res.Final, res.Expected)
	}
	if want := "mode: REDIS_ADDRS: 3 server(s): " + urls[0] + ", redis://" + urls[1]; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q", want)
	}
}
