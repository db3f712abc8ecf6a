package redistest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A node started WithClockRate(1.5) answers TIME 1.5 times as fast as real time, and expires keys
// by that clock: a key set for 600ms is gone 500ms of real time later (750ms on the node), and
// still there after 300ms (450ms). It keeps its fast timeline across a restart.
func TestWithClockRateRunsTheNodesWallClockFast(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithClockRate(1.5))
	ctx := context.Background()
	for round := range 2 {
		c := nodes[0].Client()
		t0, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		real0 := time.Now()
		if err := c.Set(ctx, "k", "v", 600*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		set := time.Now() // the key was set between real0 and set
		time.Sleep(time.Until(real0.Add(300 * time.Millisecond)))
		if n, _ := c.Exists(ctx, "k").Result(); n != 1 {
			t.Errorf("round %d: a key set for 600ms of the node's time is gone 300ms of real time after it was set; want it there (450ms on the node)", round)
		}
		time.Sleep(time.Until(set.Add(500 * time.Millisecond)))
		if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
			t.Errorf("round %d: a key set for 600ms of the node's time is there 500ms of real time after it was set; want it gone (750ms on the node)", round)
		}
		t1, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		rate := float64(t1.Sub(t0)) / float64(time.Since(real0))
		if rate < 1.4 || rate > 1.6 {
			t.Errorf("round %d: TIME advanced %.2f times as fast as real time; want 1.5", round, rate)
		}
		if offset := t1.Sub(time.Now()); offset < 0 {
			t.Errorf("round %d: the node's clock is %v behind real time; want it ahead (it runs fast)", round, -offset)
		}
		_ = c.Close()
		nodes[0].Restart()
	}
}

// A node started WithClockJumps steps its wall clock when told: TIME jumps by the step, a key set
// for 10s expires at once after a 20s forward jump, and the step survives a restart.
func TestJumpClockStepsTheNodesWallClock(t *testing.T) {
	nodes := redistest.Start(t, 1, redistest.WithClockJumps())
	ctx := context.Background()
	c := nodes[0].Client()
	defer c.Close()
	t0, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := t0.Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("before any jump the node's clock is %v off real time; want it on time", d)
	}
	if err := c.Set(ctx, "k", "v", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	nodes[0].JumpClock(20 * time.Second)
	t1, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := t1.Sub(time.Now()); d < 19*time.Second || d > 21*time.Second {
		t.Errorf("after a 20s jump the node's clock is %v ahead of real time; want about 20s", d)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Error("a key set for 10s is still there after a 20s forward jump; want it expired")
	}
	nodes[0].JumpClock(-20 * time.Second)
	nodes[0].Restart()
	c2 := nodes[0].Client()
	defer c2.Close()
	t2, err := c2.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := t2.Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Errorf("after stepping back and a restart the node's clock is %v off real time; want it on time", d)
	}
}
