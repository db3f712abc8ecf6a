package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// The library's Lua scripts (lease/lua), copied here so the demo's embedded servers are checked
// against exactly what the library sends.
const (
	acquireLua = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then
  return 1
end
return ttl`
	renewLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`
	releaseLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], ARGV[1])
  return 1
end
return 0`
)

// TestEmbedded checks, on real embedded servers, what the demo relies on: PX expiry in real time,
// the three scripts through SCRIPT LOAD and EVALSHA, and EVALSHA in a pipeline. It also logs (run
// with -v) how miniredis answers the optional commands the library may probe, without failing.
func TestEmbedded(t *testing.T) {
	defer goleak.VerifyNone(t)

	e, err := startEmbedded(3)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := len(e.Addrs()); got != 3 {
		t.Fatalf("Addrs: got %d addresses, want 3", got)
	}

	clients := make([]*redis.Client, 0, 3)
	for _, a := range e.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true})
		defer c.Close()
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("PXExpiresInRealTime", func(t *testing.T) {
		for i, c := range clients {
			testPXExpiry(ctx, t, c, fmt.Sprintf("expiry-%d", i))
		}
	})
	t.Run("Scripts", func(t *testing.T) {
		for i, c := range clients {
			testScripts(ctx, t, c, fmt.Sprintf("{lock-%d}", i))
		}
	})
	t.Run("PipelinedEvalSha", func(t *testing.T) { testPipeline(ctx, t, clients[0]) })
	t.Run("Probes", func(t *testing.T) { logProbes(ctx, t, clients[1]) })
}

func testPXExpiry(ctx context.Context, t *testing.T, c *redis.Client, key string) {
	t.Helper()
	const ttl, margin = 300 * time.Millisecond, 150 * time.Millisecond
	start := time.Now()
	if err := c.Do(ctx, "SET", key, "v", "NX", "PX", ttl.Milliseconds()).Err(); err != nil {
		t.Fatalf("SET NX PX: %v", err)
	}
	if err := c.Do(ctx, "SET", key, "w", "NX", "PX", ttl.Milliseconds()).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("second SET NX on a live key: got %v, want redis.Nil", err)
	}
	for {
		n, err := c.Exists(ctx, key).Result()
		if err != nil {
			t.Fatalf("EXISTS: %v", err)
		}
		elapsed := time.Since(start)
		if n == 0 {
			if elapsed < ttl-margin {
				t.Fatalf("key with PX %v gone after only %v", ttl, elapsed)
			}
			t.Logf("%s: key with PX %v gone after %v", c.Options().Addr, ttl, elapsed.Round(time.Millisecond))
			return
		}
		if elapsed > ttl+margin {
			t.Fatalf("key with PX %v still there after %v", ttl, elapsed)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testScripts(ctx context.Context, t *testing.T, c *redis.Client, key string) {
	t.Helper()
	acquire, renew, release := redis.NewScript(acquireLua), redis.NewScript(renewLua), redis.NewScript(releaseLua)
	for _, s := range []*redis.Script{acquire, renew, release} {
		sha, err := s.Load(ctx, c).Result()
		if err != nil || sha != s.Hash() {
			t.Fatalf("SCRIPT LOAD: sha %q, err %v; want sha %q", sha, err, s.Hash())
		}
	}
	channel := key + ":released"
	run := func(s *redis.Script, keys []string, args ...any) int64 {
		t.Helper()
		n, err := s.Run(ctx, c, keys, args...).Int64()
		if err != nil {
			t.Fatalf("script on %v %v: %v", keys, args, err)
		}
		return n
	}
	pttl := func() time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		return d
	}

	// EVALSHA itself, without Run's fallback to EVAL.
	if n, err := acquire.EvalSha(ctx, c, []string{key}, "A", 1000).Int64(); err != nil || n != 0 {
		t.Fatalf("acquire by EVALSHA on a free key: got %d, %v; want 0", n, err)
	}
	if d := pttl(); d <= 500*time.Millisecond || d > time.Second {
		t.Fatalf("PTTL after acquire with 1000 ms: %v", d)
	}
	if n := run(acquire, []string{key}, "A", 5000); n != 0 {
		t.Fatalf("acquire again by the holder: got %d, want 0", n)
	}
	if d := pttl(); d <= 4*time.Second {
		t.Fatalf("acquire again by the holder did not extend the TTL: PTTL %v", d)
	}
	if n := run(acquire, []string{key}, "B", 1000); n < 1 || n > 5000 {
		t.Fatalf("acquire by another token: got %d, want the holder's remaining ms in [1, 5000]", n)
	}
	if n := run(renew, []string{key}, "B", 9000); n != 0 {
		t.Fatalf("renew by a non-holder: got %d, want 0", n)
	}
	if n := run(renew, []string{key}, "A", 9000); n != 1 {
		t.Fatalf("renew by the holder: got %d, want 1", n)
	}
	if d := pttl(); d <= 8*time.Second {
		t.Fatalf("renew did not extend the TTL: PTTL %v", d)
	}

	sub := c.Subscribe(ctx, channel)
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(ctx, 2*time.Second); err != nil { // the subscription confirmation
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	if n := run(release, []string{key, channel}, "B"); n != 0 {
		t.Fatalf("release by a non-holder: got %d, want 0", n)
	}
	if n := run(release, []string{key, channel}, "A"); n != 1 {
		t.Fatalf("release by the holder: got %d, want 1", n)
	}
	msg, err := sub.ReceiveTimeout(ctx, 2*time.Second)
	if m, ok := msg.(*redis.Message); err != nil || !ok || m.Channel != channel || m.Payload != "A" {
		t.Fatalf("release wake-up: got %#v, %v; want message %q on %q", msg, err, "A", channel)
	}
	if err := c.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after release: %v, want redis.Nil", err)
	}
	if n := run(release, []string{key, channel}, "A"); n != 0 {
		t.Fatalf("second release: got %d, want 0", n)
	}
	if n := run(renew, []string{key}, "A", 1000); n != 0 {
		t.Fatalf("renew after release: got %d, want 0", n)
	}
}

func testPipeline(ctx context.Context, t *testing.T, c *redis.Client) {
	acquire, renew, release := redis.NewScript(acquireLua), redis.NewScript(renewLua), redis.NewScript(releaseLua)
	for _, s := range []*redis.Script{acquire, renew, release} {
		if err := s.Load(ctx, c).Err(); err != nil {
			t.Fatalf("SCRIPT LOAD: %v", err)
		}
	}
	const n = 4
	check := func(step string, cmds []redis.Cmder, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s pipeline: %v", step, err)
		}
		if len(cmds) != n {
			t.Fatalf("%s pipeline: %d replies, want %d", step, len(cmds), n)
		}
		for i, cmd := range cmds {
			if got, err := cmd.(*redis.Cmd).Int64(); err != nil || got != want {
				t.Fatalf("%s pipeline reply %d: got %d, %v; want %d", step, i, got, err, want)
			}
		}
	}
	key := func(i int) string { return fmt.Sprintf("{pipe-%d}", i) }
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			acquire.EvalSha(ctx, p, []string{key(i)}, "T", 2000)
		}
		return nil
	})
	check("acquire", cmds, err, 0)
	cmds, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			renew.EvalSha(ctx, p, []string{key(i)}, "T", 3000)
		}
		return nil
	})
	check("renew", cmds, err, 1)
	cmds, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			release.EvalSha(ctx, p, []string{key(i), key(i) + ":released"}, "T")
		}
		return nil
	})
	check("release", cmds, err, 1)
}

// logProbes records how miniredis answers commands the library may use when they exist. It never
// fails: the library is expected to degrade gracefully where miniredis lacks a command.
func logProbes(ctx context.Context, t *testing.T, c *redis.Client) {
	show := func(name string, v any, err error) {
		s := strings.ReplaceAll(fmt.Sprintf("%q", fmt.Sprint(v)), `\r\n`, " | ")
		t.Logf("%-32s -> value %s, err %v", name, s, err)
	}
	info, err := c.Info(ctx, "server").Result()
	show("INFO server", info, err)
	t.Logf("INFO server has run_id: %v", strings.Contains(info, "run_id:"))
	v, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	show("CONFIG GET maxmemory-policy", v, err)
	pong, err := c.Ping(ctx).Result()
	show("PING", pong, err)
	tm, err := c.Time(ctx).Result()
	show("TIME", tm, err)
	if err == nil {
		t.Logf("TIME - local clock: %v", tm.Sub(time.Now()))
	}

	sub := c.Subscribe(ctx, "probe")
	defer sub.Close()
	conf, err := sub.ReceiveTimeout(ctx, time.Second)
	show("SUBSCRIBE probe", conf, err)
	got, err := c.Publish(ctx, "probe", "hello").Result()
	show("PUBLISH probe (receivers)", got, err)
	msg, err := sub.ReceiveTimeout(ctx, time.Second)
	show("PubSub receive", msg, err)

	ssub := c.SSubscribe(ctx, "sprobe")
	defer ssub.Close()
	conf, err = ssub.ReceiveTimeout(ctx, time.Second)
	show("SSUBSCRIBE sprobe", conf, err)
	got, err = c.SPublish(ctx, "sprobe", "hello").Result()
	show("SPUBLISH sprobe (receivers)", got, err)

	killed, err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Result()
	show("CLIENT KILL TYPE pubsub", killed, err)
	got, err = c.Publish(ctx, "probe", "after-kill").Result()
	show("PUBLISH probe after kill", got, err)
}
