package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// TestExclusionHoldsWhileAMinorityOfNodesFails hammers a non-atomic counter from 12 goroutines
// over 3 clients while the last (N-1)/2 nodes are paused, or killed and restarted with
// persistence (AOF), again and again at random. Nobody may be inside the critical section with
// another, the counter must end exact, and no lease may be lost. Unlock may report node errors:
// a lease can be granted by a majority that includes a failing node (a healthy one may have said
// no: reserved for another waiter), and when that node fails the release reaches too few of the
// lease's nodes; what is left expires within the TTL.
func TestExclusionHoldsWhileAMinorityOfNodesFails(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			nodes := redistest.Start(t, n, redistest.WithAppendOnly())
			opts := []lease.Option{lease.WithTTL(time.Second), lease.WithNodeTimeout(50 * time.Millisecond)}
			var lost atomic.Int32
			onLost := mutex.WithErrorHandler(func(error) { lost.Add(1) })
			qs := []*lease.Quorum{newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...), newQuorum(t, nodes, opts...)}
			// The counter lives outside the quorum, on a server of its own that never fails.
			counter := redistest.Start(t, 1)[0].Client()

			ctx, stop := context.WithCancel(context.Background())
			var chaos sync.WaitGroup
			chaos.Add(1)
			go func() {
				defer chaos.Done()
				rng := rand.New(rand.NewPCG(uint64(n), 42))
				for ctx.Err() == nil {
					// Fail the minority, for 50-300ms.
					failed := []int{}
					for i := n - (n-1)/2; i < n; i++ {
						failed = append(failed, i)
					}
					kill := rng.IntN(3) == 0
					for _, i := range failed {
						if kill {
							nodes[i].Kill()
						} else {
							nodes[i].Stop()
						}
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(50+rng.IntN(250)) * time.Millisecond):
					}
					for _, i := range failed {
						if kill {
							nodes[i].Restart()
						} else {
							nodes[i].Continue()
						}
					}
					time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
				}
			}()

			const goroutines, iterations = 12, 20
			var inside, maxInside atomic.Int32
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := mutex.New(qs[g%len(qs)], "chaos", onLost)
					for i := 0; i < iterations; i++ {
						lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						err := m.Lock(lctx)
						cancel()
						if !assert.NoError(t, err) {
							return
						}
						if now := inside.Add(1); now > maxInside.Load() {
							maxInside.Store(now)
						}
						v, _ := counter.Get(context.Background(), "counter").Int()
						time.Sleep(200 * time.Microsecond)
						counter.Set(context.Background(), "counter", v+1, 0)
						inside.Add(-1)
						if err := m.Unlock(context.Background()); err != nil {
							var ne *lease.NodeError
							assert.True(t, errors.As(err, &ne) && !errors.Is(err, mutex.ErrLost) && !errors.Is(err, mutex.ErrNotHeld),
								"unlock: got %v; want nil or node errors only", err)
						}
					}
				}()
			}
			wg.Wait()
			stop()
			chaos.Wait()

			assert.EqualValues(t, 1, maxInside.Load(), "goroutines inside the critical section at once")
			got, err := counter.Get(context.Background(), "counter").Int()
			require.NoError(t, err)
			assert.Equal(t, goroutines*iterations, got, "counter; lost updates mean exclusion failed")
			assert.Zero(t, lost.Load(), "leases lost although a majority always answered")
		})
	}
}
