package engine

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// The restart guard counts a node's reported uptime as one second less: a report of u seconds is
// only sure to mean more than u−1. A node that reports 2s with a guard of 1s may have been up for
// 1.001s, less than the guard plus its drift, so it is still young.
func TestRestartGuardCountsOnlyTheUptimeANodeSurelyHas(t *testing.T) {
	c := config{guard: time.Second}
	for _, tc := range []struct {
		secs  int64
		young bool
	}{{0, true}, {1, true}, {2, true}, {3, false}, {60, false}} {
		if got := surelyUp(tc.secs) < c.guardUp(); got != tc.young {
			t.Errorf("uptime_in_seconds:%d with a 1s guard: young = %v; want %v", tc.secs, got, tc.young)
		}
	}
	if got, want := c.guardUp(), time.Second+drift(time.Second); got != want {
		t.Errorf("guardUp = %v; want the guard plus its drift, %v", got, want)
	}
}

// What the guard assumes of the server, measured on a real one: its uptime_in_seconds, less one
// second, never exceeds the time since it was started; and the figure itself does run ahead of
// that time, which is why the guard cannot take it at its word. The server is restarted in the
// middle of a wall-clock second (it then reads 1 after about 0.5s), which leaves half a second for
// a slow restart. Should the start land right on a second boundary, where it does not run ahead,
// the test restarts it.
func TestServerUptimeRunsAheadByLessThanOneSecond(t *testing.T) {
	nodes := redistest.Start(t, 1)
	c := nodes[0].Client()
	defer c.Close()
	for attempt := 1; ; attempt++ {
		now := time.Now()
		at := now.Truncate(time.Second).Add(500 * time.Millisecond)
		if !at.After(now) {
			at = at.Add(time.Second)
		}
		time.Sleep(time.Until(at))
		start := time.Now()
		nodes[0].Restart()
		ahead := time.Duration(-1) // how soon after the restart began the figure first read 1
		for {
			info, err := c.Info(context.Background(), "server").Result()
			if err != nil {
				t.Fatalf("INFO: %v", err)
			}
			since := time.Since(start) // at least the server's true uptime when it answered
			secs, err := strconv.ParseInt(infoField(info, "uptime_in_seconds"), 10, 64)
			if err != nil {
				t.Fatalf("uptime_in_seconds in %q: %v", info, err)
			}
			if surelyUp(secs) > since {
				t.Fatalf("uptime_in_seconds:%d %v after the restart began: more than one second ahead", secs, since)
			}
			if secs >= 1 && ahead < 0 && since < time.Second {
				ahead = since
			}
			if secs >= 2 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ahead >= 0 {
			t.Logf("uptime_in_seconds read 1 at most %v after a restart begun at .5 of a wall-clock second", ahead)
			return
		}
		if attempt == 3 {
			t.Fatalf("uptime_in_seconds never ran ahead of the time since the restart in %d restarts in mid-second; want it to (the rounding the guard allows for)", attempt)
		}
	}
}
