package mutex_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// BenchmarkNewMutexPerLock measures a Lock+Unlock on a new name each time, with a new Mutex (a
// Mutex per request, say), next to the minimal raw lock on a new key: what a name's first use
// costs, mostly in allocations (compare allocs/op and B/op of the two, as ratios).
func BenchmarkNewMutexPerLock(b *testing.B) {
	ctx := context.Background()
	nodes := redistest.Start(b, 1)
	b.Run("raw", func(b *testing.B) {
		c := nodes[0].Client()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			key := "bench:raw:" + strconv.Itoa(i)
			var raw [16]byte
			_, _ = rand.Read(raw[:])
			token := hex.EncodeToString(raw[:])
			if ok, err := c.SetNX(ctx, key, token, 10*time.Second).Result(); err != nil || !ok {
				b.Fatal(err)
			}
			if err := compareAndDelete.Run(ctx, c, []string{key}, token).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quorumsync", func(b *testing.B) {
		q, err := lease.NewQuorum(ctx, redistest.Clients(nodes))
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close(ctx)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			m := mutex.New(q, "bench:"+strconv.Itoa(i))
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
