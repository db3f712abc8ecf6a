package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// redisAddr is the server the examples use (TestMain starts one).
var redisAddr = "localhost:6379"

func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(10*time.Second))
	if err != nil {
		panic(err)
	}
	defer q.Close(ctx)

	gpus := semaphore.New(q, "gpu-pool", 4)
	if err := gpus.Acquire(ctx, 3); err != nil {
		panic(err)
	}
	fmt.Println("2 more:", errors.Is(gpus.TryAcquire(ctx, 2), lease.ErrNotAcquired))
	fmt.Println("1 more:", gpus.TryAcquire(ctx, 1))
	fmt.Println("release 4:", gpus.Release(ctx, 4))

	// Do holds n permits while fn runs; its ctx is cancelled if they are lost.
	err = gpus.Do(ctx, 2, func(ctx context.Context) error {
		fmt.Println("training on 2 GPUs")
		return nil
	})
	fmt.Println("do:", err)
	fmt.Println("too many:", errors.Is(gpus.Acquire(ctx, 5), lease.ErrInvalidArgument))
	// Output:
	// 2 more: true
	// 1 more: <nil>
	// release 4: <nil>
	// training on 2 GPUs
	// do: <nil>
	// too many: true
}
