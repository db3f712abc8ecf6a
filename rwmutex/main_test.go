package rwmutex_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/rwmutex"
)

// TestMain runs a child's function when this binary was started as one (see holdInChild), else
// starts one real redis-server for the Example functions, runs the tests, and checks for leaked
// goroutines.
func TestMain(m *testing.M) {
	childproc.Register("hold", holdChild)
	childproc.Main()
	os.Exit(redistest.Main(m, &redisAddr))
}

// holdChild takes a lock in a process of its own and holds it until killed: args are "r" or "w",
// the TTL, the name, and the node addresses.
func holdChild(args []string) error {
	ttl, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	var clients []redis.UniversalClient
	for _, a := range args[3:] {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
	}
	q, err := lease.NewQuorum(context.Background(), clients, lease.WithTTL(ttl), lease.WithNodeTimeout(ttl/10))
	if err != nil {
		return err
	}
	rw := rwmutex.New(q, args[2])
	lock := rw.RLock
	if args[0] == "w" {
		lock = rw.Lock
	}
	if err := lock(context.Background()); err != nil {
		return err
	}
	fmt.Println("held")
	select {}
}

// holdInChild starts a process that takes rw's lock (mode "r" or "w") on nodes and holds it; it
// returns once the child holds.
func holdInChild(t *testing.T, mode string, ttl time.Duration, name string, nodes []*redistest.Node) *childproc.Proc {
	t.Helper()
	args := []string{mode, ttl.String(), name}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	p := childproc.Start(t, "hold", args...)
	p.WaitLine("held", 10*time.Second)
	return p
}

// newQuorum returns a quorum over fresh clients of nodes, as one more process would have it.
func newQuorum(t *testing.T, nodes []*redistest.Node, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	q, err := lease.NewQuorum(context.Background(), redistest.Clients(nodes), opts...)
	if err != nil {
		t.Fatalf("NewQuorum: %v", err)
	}
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// noKeysLeft fails the test if any node holds a key of the library's, after waiting up to d for
// cleanups owed to nodes that just came back.
func noKeysLeft(t *testing.T, nodes []*redistest.Node, d time.Duration) {
	t.Helper()
	redistest.RequireNoKeysWithin(t, nodes, "quorumsync:*", d)
}
