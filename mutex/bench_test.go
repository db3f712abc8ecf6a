package mutex_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("quorumsync-N=%d", n), func(b *testing.B) {
			q, err := lease.NewQuorum(ctx, redistest.Clients(nodes[:n]))
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close(ctx)
			m := mutex.New(q, "bench")
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
