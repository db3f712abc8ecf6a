package lease_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
)

// redisAddr is the server the examples use (TestMain starts one).
var redisAddr = "localhost:6379"

func ExampleQuorum_Acquire() {
	ctx := context.Background()
	// ContextTimeoutEnabled lets the per-node timeout reach the socket; NewQuorum requires it.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()

	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(5*time.Second))
	if err != nil {
		panic(err)
	}
	defer q.Close(ctx)

	l, err := q.Acquire(ctx, "report")
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", l.Name(), "for about", time.Until(l.Until()).Round(time.Second))

	_, err = q.TryAcquire(ctx, "report")
	fmt.Println("second try:", errors.Is(err, lease.ErrNotAcquired))

	select {
	case <-l.Done():
		fmt.Println("lost:", l.Err())
	default:
		fmt.Println("still held")
	}
	fmt.Println("release:", l.Release(ctx))
	fmt.Println("release again:", l.Release(ctx))
	// Output:
	// held: report for about 5s
	// second try: true
	// still held
	// release: <nil>
	// release again: lease: already released
}
