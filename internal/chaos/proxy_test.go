package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

func proxied(t *testing.T) (*Proxy, *redis.Client) {
	t.Helper()
	node := redistest.Start(t, 1)[0]
	p, err := NewProxy(node.Addr(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	o := node.Options()
	o.Addr = p.Addr()
	o.PoolSize = 1
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return p, c
}

func ping(c *redis.Client, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := c.Ping(ctx).Err()
	return time.Since(start), err
}

func TestProxyForwardsAndDelays(t *testing.T) {
	p, c := proxied(t)
	if _, err := ping(c, time.Second); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	p.SetLatency(80*time.Millisecond, 40*time.Millisecond)
	took, err := ping(c, 2*time.Second)
	if err != nil || took < 80*time.Millisecond {
		t.Fatalf("ping with 80ms latency: took %v, err %v; want >= 80ms and no error", took, err)
	}
	p.Heal()
	if took, err := ping(c, time.Second); err != nil || took > 70*time.Millisecond {
		t.Fatalf("ping after healing: took %v, err %v; want < 70ms (wide margin) and no error", took, err)
	}
}

func TestProxyBlackholeAnswersNothingUntilHealed(t *testing.T) {
	p, c := proxied(t)
	if _, err := ping(c, time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetBlackhole(true)
	if _, err := ping(c, 150*time.Millisecond); err == nil {
		t.Fatal("ping through a black hole answered; want a timeout")
	}
	p.SetBlackhole(false)
	if _, err := ping(c, time.Second); err != nil {
		t.Fatalf("ping after the black hole healed: %v", err)
	}
}

func TestProxyCutRefusesAndResetDropsConnections(t *testing.T) {
	p, c := proxied(t)
	if _, err := ping(c, time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetCut(true)
	if _, err := ping(c, time.Second); err == nil {
		t.Fatal("ping while cut off answered; want an error")
	}
	p.SetCut(false)
	if _, err := ping(c, time.Second); err != nil {
		t.Fatalf("ping after the cut healed: %v", err)
	}
	// A reset breaks the connection under a call in flight. (An idle pooled connection that was
	// reset is noticed by go-redis and redialed without an error.)
	p.SetLatency(300*time.Millisecond, 0)
	failed := make(chan error, 1)
	go func() { _, err := ping(c, 2*time.Second); failed <- err }()
	time.Sleep(100 * time.Millisecond)
	p.Reset()
	if err := <-failed; err == nil {
		t.Fatal("ping on a connection reset under it answered; want an error")
	}
	p.Heal()
	if _, err := ping(c, time.Second); err != nil {
		t.Fatalf("ping after a reset: %v", err)
	}
}
