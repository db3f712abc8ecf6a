package rwmutex_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/rwmutex"
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

	config := rwmutex.New(q, "config")
	// Readers share the lock.
	if err := config.RLock(ctx); err != nil {
		panic(err)
	}
	other := rwmutex.New(q, "config")
	fmt.Println("second reader:", other.TryRLock(ctx))
	fmt.Println("writer while read-locked:", errors.Is(other.TryLock(ctx), lease.ErrNotAcquired))
	_ = other.RUnlock(ctx)
	_ = config.RUnlock(ctx)

	// A writer is alone; RDo and Do run a function under the lock.
	err = config.Do(ctx, func(ctx context.Context) error {
		fmt.Println("reader while write-locked:", errors.Is(other.TryRLock(ctx), lease.ErrNotAcquired))
		return nil
	})
	fmt.Println("do:", err)

	// A read lock cannot be upgraded: that would wait for itself.
	err = config.RDo(ctx, func(ctx context.Context) error { return config.Lock(ctx) })
	fmt.Println("upgrade:", errors.Is(err, rwmutex.ErrUpgrade))
	// Output:
	// second reader: <nil>
	// writer while read-locked: true
	// reader while write-locked: true
	// do: <nil>
	// upgrade: true
}
