package lease_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

func ExampleNewQuorum() {
	ctx := context.Background()
	// ContextTimeoutEnabled lets the per-node timeout reach the socket; NewQuorum requires it.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()

	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb}, lease.WithTTL(5*time.Second))
	if err != nil {
		panic(err) // errors.Is(err, lease.ErrMisconfigured): a node refused the credentials or the ACL
	}
	defer q.Close(ctx)

	l, err := mutex.New(q, "report").Obtain(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", l.Name(), "for about", time.Until(l.Until()).Round(time.Second))

	err = mutex.New(q, "report").TryLock(ctx)
	fmt.Println("busy:", errors.Is(err, lease.ErrNotAcquired), "unavailable:", errors.Is(err, lease.ErrUnavailable))

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
	// busy: true unavailable: false
	// still held
	// release: <nil>
	// release again: mutex: already released
}
