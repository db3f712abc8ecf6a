package mutex_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// compareAndDelete is the release half of the minimal correct single-node lock.
var compareAndDelete = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// BenchmarkMutexLockUnlock measures an uncontended Lock+Unlock at N = 1 and N = 3 next to the
// physical limit: the minimal correct single-node lock written directly with go-redis (SET NX PX,
// then compare-and-delete), two round trips. Compare the sub-benchmarks of one run, as ratios.
func BenchmarkMutexLockUnlock(b *testing.B) {
	ctx := context.Background()
	nodes := redistest.Start(b, 3)

	b.Run("baseline-raw-N=1", func(b *testing.B) {
		c := nodes[0].Client()
		if err := compareAndDelete.Load(ctx, c).Err(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			var raw [16]byte
			_, _ = rand.Read(raw[:])
			token := hex.EncodeToString(raw[:])
			ok, err := c.SetNX(ctx, "bench:raw", token, 10*time.Second).Result()
			if err != nil || !ok {
				b.Fatalf("SET NX: %v %v", ok, err)
			}
			if err := compareAndDelete.Run(ctx, c, []string{"bench:raw"}, token).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	variants := []struct {
		name  string
		n     int
		qopts []lease.Option
		mopts []mutex.Option
	}{
		{"quorumsync-N=1", 1, nil, nil},
		{"quorumsync-N=1-fencing", 1, nil, []mutex.Option{mutex.WithFencing()}},
		{"quorumsync-N=1-restart-guard", 1, []lease.Option{lease.WithTTL(time.Second), lease.WithRestartGuard(time.Second)}, nil},
		{"quorumsync-N=3", 3, nil, nil},
		{"quorumsync-N=3-fencing", 3, nil, []mutex.Option{mutex.WithFencing()}},
	}
	// The restart guard ignores nodes not surely up for its 1s plus drift (a report of 3s): let
	// them age first.
	time.Sleep(3100 * time.Millisecond)
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			q, err := lease.NewQuorum(ctx, redistest.Clients(nodes[:v.n]), v.qopts...)
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close(ctx)
			m := mutex.New(q, "bench", v.mopts...)
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Lock(ctx); err != nil {
					b.Fatal(err)
				}
				if err := m.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLockUnlockInterleaved runs one Lock+Unlock of each variant in turn per iteration — the
// raw single-node baseline, quorumsync at N = 1 and at N = 3 — so that noise from a shared
// machine hits all of them alike, and reports each variant's median latency and the ratios the
// goals are stated in: N1/raw (goal ≤ 1.1) and N3/N1 (goal ≤ 1.3). It also runs the raw lock
// fanned out to the same 3 nodes, the physical limit of a 3-node quorum here (N3/rawN3).
func BenchmarkLockUnlockInterleaved(b *testing.B) {
	ctx := context.Background()
	nodes := redistest.Start(b, 3)
	raw := nodes[0].Client()
	if err := compareAndDelete.Load(ctx, raw).Err(); err != nil {
		b.Fatal(err)
	}
	q1, err := lease.NewQuorum(ctx, redistest.Clients(nodes[:1]))
	if err != nil {
		b.Fatal(err)
	}
	defer q1.Close(ctx)
	q3, err := lease.NewQuorum(ctx, redistest.Clients(nodes))
	if err != nil {
		b.Fatal(err)
	}
	defer q3.Close(ctx)
	m1, m3 := mutex.New(q1, "bench1"), mutex.New(q3, "bench3")
	raws := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		raws[i] = n.Client()
		if err := compareAndDelete.Load(ctx, raws[i]).Err(); err != nil {
			b.Fatal(err)
		}
	}
	// rawQuorum is the same minimal lock fanned out to 3 nodes in parallel (the physical limit of
	// a 3-node quorum on this machine): one goroutine per node, joined, for lock and for unlock.
	rawQuorum := func(token string, f func(c *redis.Client) error) error {
		errs := make(chan error, len(raws))
		for _, c := range raws {
			go func() { errs <- f(c) }()
		}
		var err error
		for range raws {
			err = errors.Join(err, <-errs)
		}
		return err
	}

	variants := []func() error{
		func() error {
			var r [16]byte
			_, _ = rand.Read(r[:])
			token := hex.EncodeToString(r[:])
			if err := raw.SetNX(ctx, "bench:raw", token, 10*time.Second).Err(); err != nil {
				return err
			}
			return compareAndDelete.Run(ctx, raw, []string{"bench:raw"}, token).Err()
		},
		func() error {
			if err := m1.Lock(ctx); err != nil {
				return err
			}
			return m1.Unlock(ctx)
		},
		func() error {
			if err := m3.Lock(ctx); err != nil {
				return err
			}
			return m3.Unlock(ctx)
		},
		func() error {
			var r [16]byte
			_, _ = rand.Read(r[:])
			token := hex.EncodeToString(r[:])
			if err := rawQuorum(token, func(c *redis.Client) error { return c.SetNX(ctx, "bench:rawq", token, 10*time.Second).Err() }); err != nil {
				return err
			}
			return rawQuorum(token, func(c *redis.Client) error {
				return compareAndDelete.Run(ctx, c, []string{"bench:rawq"}, token).Err()
			})
		},
	}
	med := redistest.InterleavedMedians(b, variants...)
	b.ReportMetric(med[0], "raw-ns/op")
	b.ReportMetric(med[1], "N1-ns/op")
	b.ReportMetric(med[2], "N3-ns/op")
	b.ReportMetric(med[3], "rawN3-ns/op")
	b.ReportMetric(med[1]/med[0], "N1/raw")
	b.ReportMetric(med[2]/med[1], "N3/N1")
	b.ReportMetric(med[2]/med[3], "N3/rawN3")
}
