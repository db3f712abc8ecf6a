package embedded_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/internal/embedded"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, n int) []redis.UniversalClient {
	t.Helper()
	s, err := embedded.Start(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var cs []redis.UniversalClient
	for _, a := range s.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// Keys with a TTL expire in real time: the clocks are driven.
func TestKeysExpireInRealTime(t *testing.T) {
	ctx := context.Background()
	c := start(t, 1)[0]
	const ttl, margin = 300 * time.Millisecond, 150 * time.Millisecond
	begin := time.Now()
	if err := c.SetNX(ctx, "k", "v", ttl).Err(); err != nil {
		t.Fatalf("SET NX PX: %v", err)
	}
	if ok, err := c.SetNX(ctx, "k", "w", ttl).Result(); err != nil || ok {
		t.Fatalf("second SET NX on a live key: got %v, %v; want false, nil", ok, err)
	}
	for {
		n, err := c.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatalf("EXISTS: %v", err)
		}
		elapsed := time.Since(begin)
		if n == 0 {
			if elapsed < ttl-margin {
				t.Fatalf("key with PX %v gone after only %v", ttl, elapsed)
			}
			return
		}
		if elapsed > ttl+margin {
			t.Fatalf("key with PX %v still there after %v", ttl, elapsed)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The library's scripts, queue and wake-ups work on the embedded servers, as the examples need.
func TestLeasesWorkOnEmbeddedServers(t *testing.T) {
	ctx := context.Background()
	nodes := start(t, 3)
	a, err := lease.NewQuorum(ctx, nodes, lease.WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := lease.NewQuorum(ctx, nodes, lease.WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)

	held, err := mutex.New(a, "x").Obtain(ctx)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if _, err := mutex.New(b, "x").TryObtain(ctx); !errors.Is(err, lease.ErrNotAcquired) {
		t.Fatalf("TryAcquire while held: got %v; want ErrNotAcquired", err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := mutex.New(b, "x").Obtain(ctx)
		if err == nil {
			err = l.Release(ctx)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // b queued and subscribed
	released := time.Now()
	if err := held.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if d := time.Since(released); d > 400*time.Millisecond {
		t.Errorf("waiter acquired %v after the release; want a wake-up, not the fallback (TTL/2 = 500ms)", d)
	}
}

func TestParseAddrs(t *testing.T) {
	got, err := embedded.ParseAddrs(" a:1, b:2 ,,c:3 ")
	if err != nil || strings.Join(got, "|") != "a:1|b:2|c:3" {
		t.Errorf("ParseAddrs: got %q, %v; want [a:1 b:2 c:3]", got, err)
	}
	if got, err := embedded.ParseAddrs(" , "); err == nil {
		t.Errorf("ParseAddrs of no address: got %q, nil; want an error", got)
	}
}
