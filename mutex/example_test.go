package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// redisAddr is the server the examples use (TestMain starts one).
var redisAddr = "localhost:6379"

func Example() {
	ctx := context.Background()
	// ContextTimeoutEnabled lets the per-node timeout reach the socket; NewQuorum requires it.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()

	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(10*time.Second))
	if err != nil {
		panic(err)
	}
	defer q.Close(ctx)

	m := mutex.New(q, "orders:42")
	l, err := m.Obtain(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("locked; valid for about", time.Until(l.Until()).Round(time.Second))

	// Another holder is refused while we hold it.
	err = mutex.New(q, "orders:42").TryLock(ctx)
	fmt.Println("second TryLock:", errors.Is(err, lease.ErrNotAcquired))

	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println("unlocked")
	// Output:
	// locked; valid for about 10s
	// second TryLock: true
	// unlocked
}

func ExampleMutex_Do() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb})
	if err != nil {
		panic(err)
	}
	defer q.Close(ctx)

	err = mutex.New(q, "report").Do(ctx, func(ctx context.Context) error {
		// ctx is cancelled, with a cause matching lease.ErrLost, if the lock is lost meanwhile.
		fmt.Println("generating the report under the lock")
		return ctx.Err()
	})
	fmt.Println("err:", err)
	// Output:
	// generating the report under the lock
	// err: <nil>
}

func ExampleNewMulti() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb})
	if err != nil {
		panic(err)
	}
	defer q.Close(ctx)

	// A transfer locks both accounts, listed in whatever order: two transfers in opposite
	// directions cannot deadlock, since a Multi always takes its names in sorted order.
	transfer := mutex.NewMulti(q, []string{"acct:7", "acct:3"})
	fmt.Println("takes them in the order", transfer.Names())
	err = transfer.Do(ctx, func(ctx context.Context) error {
		// Both accounts are held here: a Mutex of either is refused.
		err := mutex.New(q, "acct:3").TryLock(ctx)
		fmt.Println("acct:3 busy:", errors.Is(err, lease.ErrNotAcquired))
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// takes them in the order [acct:3 acct:7]
	// acct:3 busy: true
}
