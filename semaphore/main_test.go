package semaphore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/semaphore"
)

// TestMain runs a child's function when this binary was started as one (see holdInChild), else
// starts one real redis-server for the Example functions, runs the tests, and checks for leaked
// goroutines.
func TestMain(m *testing.M) {
	childproc.Register("hold", holdChild)
	childproc.Main()
	os.Exit(redistest.Main(m, &redisAddr))
}

// holdChild takes permits in a process of its own and holds them until killed: args are the TTL,
// the name, the capacity, the weight, and the node addresses.
func holdChild(args []string) error {
	ttl, err := time.ParseDuration(args[0])
	if err != nil {
		return err
	}
	capacity, _ := strconv.ParseInt(args[2], 10, 64)
	n, _ := strconv.ParseInt(args[3], 10, 64)
	var clients []redis.UniversalClient
	for _, a := range args[4:] {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
	}
	q, err := lease.NewQuorum(context.Background(), clients, lease.WithTTL(ttl), lease.WithNodeTimeout(ttl/10))
	if err != nil {
		return err
	}
	if err := semaphore.New(q, args[1], capacity).Acquire(context.Background(), n); err != nil {
		return err
	}
	fmt.Println("held")
	select {}
}

// holdInChild starts a process that takes n permits of name and holds them; it returns once the
// child holds.
func holdInChild(t *testing.T, ttl time.Duration, name string, capacity, n int64, nodes []*redistest.Node) *childproc.Proc {
	t.Helper()
	args := []string{ttl.String(), name, strconv.FormatInt(capacity, 10), strconv.FormatInt(n, 10)}
	for _, nd := range nodes {
		args = append(args, nd.Addr())
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

// noKeysLeft fails the test if any node holds a key of the library's after d.
func noKeysLeft(t *testing.T, nodes []*redistest.Node, d time.Duration) {
	t.Helper()
	redistest.RequireNoKeysWithin(t, nodes, "quorumsync:*", d)
}
