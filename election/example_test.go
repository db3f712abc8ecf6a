package election_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/election"
	"github.com/quorumsync/quorumsync/lease"
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

	// Two replicas of a scheduler: the first to campaign leads, the other waits in line.
	a, b := election.New(q, "scheduler"), election.New(q, "scheduler")
	if err := a.Campaign(ctx, "replica-a"); err != nil {
		panic(err)
	}
	won := make(chan struct{})
	go func() {
		if err := b.Campaign(ctx, "replica-b"); err != nil {
			panic(err)
		}
		close(won)
	}()

	ld, err := b.Leader(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("leader:", ld.Value)

	// a steps down; b leads at once, with a higher term.
	first := a.Term()
	if err := a.Resign(ctx); err != nil {
		panic(err)
	}
	<-won
	fmt.Println("next leader's term is higher:", b.Term() > first)
	if err := b.Resign(ctx); err != nil {
		panic(err)
	}
	// Output:
	// leader: replica-a
	// next leader's term is higher: true
}

func ExampleElection_Observe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{rdb})
	if err != nil {
		panic(err)
	}
	defer q.Close(context.Background())

	leaders := election.New(q, "compactor").Observe(ctx)
	for _, name := range []string{"first", "second"} {
		e := election.New(q, "compactor")
		if err := e.Campaign(ctx, name); err != nil {
			panic(err)
		}
		fmt.Println("observed:", (<-leaders).Value)
		if err := e.Resign(ctx); err != nil {
			panic(err)
		}
	}
	// Output:
	// observed: first
	// observed: second
}
