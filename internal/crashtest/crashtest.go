// Package crashtest kills the client processes of a primitive at the awkward moments of their
// life — while they hold, while they wait, between a release and the next acquire — and checks
// what they leave on the nodes: while they run, every key of the name carries a TTL (the fencing
// counters aside, which must persist), and once their TTLs have passed, no key of the name is
// left.
//
// A test package registers, as a child process function, [Child] with how to take and give up its
// primitive; the test calls [Test] (or [Run]) with that child's name.
package crashtest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
)

// The phases a child prints, in this order, for ever.
const (
	Acquiring = "acquiring" // before each acquire: it may wait in the queue
	Held      = "held"      // once it holds
	Released  = "released"  // after each release, before it sleeps and acquires again
)

// Args are what a child gets from [Run].
type Args struct {
	TTL    time.Duration
	Name   string
	Fenced bool // the primitive should use fencing tokens
	Addrs  []string
}

// Child returns a child process function (for childproc.Register): it reads the arguments [Run]
// gives a child, makes the child's quorum, and runs [Loop] with the acquire and release that
// primitive returns for that quorum and those arguments.
func Child(primitive func(q *lease.Quorum, a Args) (acquire, release func(context.Context) error)) func([]string) error {
	return func(args []string) error {
		a, err := parseArgs(args)
		if err != nil {
			return err
		}
		q, err := a.quorum()
		if err != nil {
			return err
		}
		acquire, release := primitive(q, a)
		return Loop(a.TTL, acquire, release)
	}
}

// parseArgs reads the arguments [Run] gives a child: the TTL, the name, "fenced" or "plain", then
// the node addresses.
func parseArgs(args []string) (Args, error) {
	if len(args) < 4 {
		return Args{}, fmt.Errorf("crashtest: want a TTL, a name, fenced or plain, and node addresses; got %q", args)
	}
	ttl, err := time.ParseDuration(args[0])
	if err != nil {
		return Args{}, err
	}
	return Args{TTL: ttl, Name: args[1], Fenced: args[2] == "fenced", Addrs: args[3:]}, nil
}

// quorum makes the child's quorum over its own clients, with the TTL and a node timeout of a tenth
// of it, logging nothing.
func (a Args) quorum() (*lease.Quorum, error) {
	var clients []redis.UniversalClient
	for _, addr := range a.Addrs {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}))
	}
	return lease.NewQuorum(context.Background(), clients, lease.WithTTL(a.TTL), lease.WithNodeTimeout(a.TTL/10),
		lease.WithLogger(slog.New(slog.DiscardHandler)))
}

// Loop acquires and releases for ever, printing each phase: it holds for up to a tenth of the TTL,
// and sleeps up to a twentieth of it between a release and the next acquire, so that a kill can
// land in each phase. It returns only on an error that is not the acquire's own failure.
func Loop(ttl time.Duration, acquire, release func(context.Context) error) error {
	for {
		fmt.Println(Acquiring)
		ctx, cancel := context.WithTimeout(context.Background(), 20*ttl)
		err := acquire(ctx)
		cancel()
		if err != nil {
			continue // busy for long, or the nodes failed: try again
		}
		fmt.Println(Held)
		time.Sleep(rand.N(ttl / 10))
		if err := release(context.Background()); err != nil {
			fmt.Println("release:", err)
		}
		fmt.Println(Released)
		time.Sleep(ttl/100 + rand.N(ttl/20))
	}
}

// Run starts three children named child, contending for name, and kills one at each of the three
// awkward moments, rounds times each, starting a new one after each kill. After each kill it checks
// that every key matching "*{name*" (the keys of name, and of the names that start with it, which
// a child locking several names uses) has a TTL. Then it kills them all and waits, at most two TTLs
// and a second, for every such key to expire (the fencing counters aside).
func Run(t *testing.T, nodes []*redistest.Node, child string, ttl time.Duration, name string, fenced bool, rounds int) {
	t.Helper()
	mode := "plain"
	if fenced {
		mode = "fenced"
	}
	args := []string{ttl.String(), name, mode}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	procs := make([]*childproc.Proc, 3)
	for i := range procs {
		procs[i] = childproc.Start(t, child, args...)
	}
	pattern := "*{" + name + "*"
	kills := map[string]int{}
	for r := 0; r < rounds; r++ {
		for _, phase := range []string{Held, Acquiring, Released} {
			i := waitPhase(t, procs, phase, ttl)
			procs[i].Kill()
			kills[phase]++
			redistest.RequireTTLs(t, nodes, pattern)
			procs[i] = childproc.Start(t, child, args...)
		}
	}
	// Let the new ones run a little before the last kills, then check once more while they run.
	time.Sleep(ttl / 2)
	redistest.RequireTTLs(t, nodes, pattern)
	for _, p := range procs {
		p.Kill()
	}
	t.Logf("killed %d holding, %d acquiring (queued for at least %v), %d between a release and the next acquire, and the last 3 as they were",
		kills[Held], kills[Acquiring], ttl/10, kills[Released])
	redistest.RequireNoLockKeysWithin(t, nodes, pattern, 2*ttl+time.Second)
}

// Test runs [Run] twice, as subtests: on one node, and fenced on three (the fencing counters must
// stay; nothing else may).
func Test(t *testing.T, child string) {
	t.Helper()
	for _, tc := range []struct {
		n      int
		fenced bool
	}{{1, false}, {3, true}} {
		t.Run(fmt.Sprintf("N=%d fenced=%v", tc.n, tc.fenced), func(t *testing.T) {
			Run(t, redistest.Start(t, tc.n), child, 500*time.Millisecond, "crash", tc.fenced, 2)
		})
	}
}

// waitPhase returns a child whose last line is phase — for Acquiring, one that has been acquiring
// for at least a tenth of the TTL, so that it is queued on the servers, not about to send its
// first request.
func waitPhase(t *testing.T, procs []*childproc.Proc, phase string, ttl time.Duration) int {
	t.Helper()
	since := make([]time.Time, len(procs))
	deadline := time.Now().Add(20 * ttl)
	for time.Now().Before(deadline) {
		for i, p := range procs {
			if p.Last() != phase {
				since[i] = time.Time{}
				continue
			}
			if phase != Acquiring {
				return i
			}
			if since[i].IsZero() {
				since[i] = time.Now()
			} else if time.Since(since[i]) >= ttl/10 {
				return i
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatalf("crashtest: no child %s within %v", phase, 20*ttl)
	return -1
}
