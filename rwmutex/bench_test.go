package rwmutex_test

import (
	"context"
	"testing"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// BenchmarkPrimitivesInterleaved runs, per iteration, one uncontended Mutex Lock+Unlock, one
// RWMutex RLock+RUnlock, one RWMutex Lock+Unlock and one Semaphore Acquire(1)+Release(1) on one
// node, in turn, so that a shared machine's noise hits them alike, and reports each one's median
// and its ratio to the Mutex's: the goals are RLock+RUnlock ≤ 1.1× and Acquire+Release ≤ 1.2×.
func BenchmarkPrimitivesInterleaved(b *testing.B) {
	ctx := context.Background()
	nodes := redistest.Start(b, 1)
	q, err := lease.NewQuorum(ctx, redistest.Clients(nodes))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close(ctx)
	m := mutex.New(q, "bench-m")
	rw := rwmutex.New(q, "bench-rw")
	s := semaphore.New(q, "bench-s", 8)
	pair := func(lock, unlock func(context.Context) error) func() error {
		return func() error {
			if err := lock(ctx); err != nil {
				return err
			}
			return unlock(ctx)
		}
	}
	one := func(f func(context.Context, int64) error) func(context.Context) error {
		return func(ctx context.Context) error { return f(ctx, 1) }
	}
	names := []string{"mutex", "rlock", "wlock", "sem"}
	variants := []func() error{
		pair(m.Lock, m.Unlock),
		pair(rw.RLock, rw.RUnlock),
		pair(rw.Lock, rw.Unlock),
		pair(one(s.Acquire), one(s.Release)),
	}
	b.ReportAllocs()
	med := redistest.InterleavedMedians(b, variants...)
	for v, m := range med {
		b.ReportMetric(m, names[v]+"-ns/op")
	}
	b.ReportMetric(med[1]/med[0], "rlock/mutex")
	b.ReportMetric(med[2]/med[0], "wlock/mutex")
	b.ReportMetric(med[3]/med[0], "sem/mutex")
}
