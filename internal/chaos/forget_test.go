package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/lease"
)

// A node that forgets a held lease lets a second client in beside the holder when the holder's
// majority was a bare one. A holds on nodes 0 and 1 only (it is cut off from node 2 when it
// acquires); node 0 forgets A's lease — its wall clock stepped 3× TTL forward (far past the drift
// margin), or its keys evicted under maxmemory-policy volatile-lru; B then wins nodes 0 and 2
// while A's lease is still valid. Unfenced, the exclusion check finds the double grant and the
// counter loses an update. Fenced, the lock is still granted twice (the exclusion check finds it),
// but B's token is above A's (the counter has no TTL: neither the step nor the eviction takes
// it), so the resource refuses A's late write: no lost update, a linearizable history.
func TestExpectedDoubleGrantWhenANodeForgets(t *testing.T) {
	for _, kind := range ForgetfulKinds {
		for _, fenced := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fenced=%v", kind, fenced), func(t *testing.T) {
				lc := LeaseConfig{TTL: 2 * time.Second, NodeTimeout: 50 * time.Millisecond, Fencing: fenced}
				scenario := "expected: " + string(kind)
				if fenced {
					scenario += ", fenced"
				}
				r, sections := doubleGrantOnABareMajority(t, scenario, lc, 4, func(env *Env) Fault {
					f := Fault{Kind: kind, Nodes: []int{0}, Start: Mono()}
					switch kind {
					case ClockJump:
						env.Nodes[0].JumpClock(3 * lc.TTL)
					case NodeEvict:
						if err := squeeze(env.Nodes[0], "volatile-lru", true); err != nil {
							t.Fatal(err)
						}
						if err := squeeze(env.Nodes[0], "noeviction", false); err != nil { // room for B's key
							t.Fatal(err)
						}
					}
					f.End = Mono()
					return f
				})
				if !fenced {
					// A's stale write overwrites B's: the lost update follows from the double
					// grant.
					r.Expected = append(r.Expected, CheckLostUpdate, CheckLinear)
				} else {
					for _, s := range sections {
						// A read before B and wrote after B: its write must have been refused.
						if s.Client == "a" && (len(s.Ops) != 1 || s.Ops[0].Wrote != WriteRefused) {
							t.Errorf("a's late write with token %d: %+v; want it refused (b's token is higher)", s.Fence, s.Ops)
						}
					}
				}
				report.Add(r)
				r.Verify(t)
			})
		}
	}
}

// Memory full on a majority of the nodes under maxmemory-policy noeviction (the policy the lease
// doc asks for) loses nothing: a lease held when memory fills is kept, renewed past its TTL and
// released; a try for a free name fails at once with lease.ErrUnavailable, saying the nodes are
// out of memory (it heals: memory can be freed), and leaves nothing behind; once memory is freed,
// acquires go on. Zero violations. (Package lease's TestNoevictionKeepsHeldLeasesOfEveryPrimitive
// shows the same for readers and semaphore permits, and a release handing over to a waiter.)
func TestNoevictionMajorityRefusesAcquiresAndKeepsHolders(t *testing.T) {
	lc := profile.Lease
	seed := uint64(5)
	began := time.Now()
	env := NewEnv(t, profile.Nodes, lc, seed)
	a, b := env.NewGoClient("a", PrimMutex), env.NewGoClient("b", PrimMutex)
	var hist History
	res := env.ResourceClient()
	work := Workload{Names: []string{"hot"}, AcquireTimeout: 5 * time.Second, Mode: Exclusive, Hold: time.Millisecond}
	ca := &Client{ID: "a", Locker: a.Locker, Res: res, Work: work, Rng: rand.New(rand.NewPCG(seed, 1)), OnExit: hist.Add}
	ca.Work.HoldMin, ca.Work.Hold = 5*lc.TTL/2, 5*lc.TTL/2 // renewed twice or more while memory is full
	cb := &Client{ID: "b", Locker: b.Locker, Res: res, Work: work, Rng: rand.New(rand.NewPCG(seed, 2)), OnExit: hist.Add}

	entered := make(chan struct{})
	ca.OnEnter = func(Section) { close(entered) }
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := ca.Section(context.Background(), Claim{Name: "hot", Mode: Exclusive}); err != nil {
			t.Errorf("a: acquire: %v", err)
			close(entered)
		}
	})
	<-entered
	majority := len(env.Nodes)/2 + 1
	full := Fault{Kind: NodeOOM, Start: Mono()}
	for i := range majority {
		if err := squeeze(env.Nodes[i], "noeviction", true); err != nil {
			t.Fatal(err)
		}
		full.Nodes = append(full.Nodes, i)
	}
	ctx := context.Background()
	tried := time.Now()
	if h, err := b.Locker.TryAcquire(ctx, Claim{Name: "free", Mode: Exclusive}); err == nil {
		_ = h.Release(ctx)
		t.Errorf("b: a try for a free name succeeded with a majority of the nodes out of memory")
	} else {
		t.Logf("b: try for a free name with a majority out of memory, after %v: %v", time.Since(tried), err)
		if !errors.Is(err, lease.ErrUnavailable) || !strings.Contains(err.Error(), "out of memory") {
			t.Errorf("b: try for a free name: %v; want lease.ErrUnavailable saying the nodes are out of memory", err)
		}
		if d := time.Since(tried); d > 2*time.Second {
			t.Errorf("b: the try took %v; want it refused at once (one round, node timeout %v)", d, lc.NodeTimeout)
		}
	}
	// The refused try left nothing on any node (what a node did take, it gave back).
	for i, n := range env.Nodes {
		if keys, err := n.Keys(ctx); err != nil || slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "{free}") }) {
			t.Errorf("node %d after the refused try: keys %v, err %v; want none of the name", i, keys, err)
		}
	}
	wg.Wait() // a's section ends while memory is still full: its release must work
	if n := ca.Released.Load(); n != 0 {
		t.Errorf("a's release with a majority of the nodes out of memory failed (%d)", n)
	}
	for _, i := range full.Nodes {
		if err := squeeze(env.Nodes[i], "noeviction", false); err != nil {
			t.Fatal(err)
		}
	}
	full.End = Mono()
	for _, name := range []string{"free", "hot"} { // "hot": a's release left it free
		if _, err := cb.Section(ctx, Claim{Name: name, Mode: Exclusive}); err != nil {
			t.Errorf("b: acquire %q once memory was freed: %v", name, err)
		}
	}
	a.Close()
	b.Close()

	sections := hist.Sections()
	for _, s := range sections {
		if s.Client == "a" && (s.Lost || s.DoneAt != 0) {
			t.Errorf("a lost its lease while memory was full (renewals must go on under noeviction): %+v", s)
		}
	}
	r := newResult("noeviction on a majority", PrimMutex, seed, sections, []Fault{full})
	r.Replay = replayCommand(t, 0)
	r.Violations = append(r.Violations, CheckExclusive(sections)...)
	r.Violations = append(r.Violations, CheckUpdates(sections, env.Finals())...)
	r.Violations = append(r.Violations, CheckLinearizable(sections, LinearizeTimeout)...)
	r.Violations = append(r.Violations, CheckLeases(sections, profile.DoneSlack)...)
	r.Violations = append(r.Violations, CheckAcquiredAfter(sections, []string{"b"}, full.End, lc.TTL)...)
	r.Violations = append(r.Violations, env.KeysLeft(2*lc.TTL+time.Second)...)
	r.Wall = time.Since(began)
	report.Add(r)
	r.Verify(t)
}
