package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestChaos runs the profile's randomized scenarios with each of its seeds: zero unexpected
// violations is the pass criterion.
func TestChaos(t *testing.T) {
	for _, seed := range profile.Seeds {
		for _, sc := range profile.Scenarios {
			t.Run(fmt.Sprintf("%s/seed=%d", sc.Name, seed), func(t *testing.T) {
				r := sc.Run(t, seed)
				r.Replay = replayCommand(t, seed)
				report.Add(r)
				r.Verify(t)
			})
		}
	}
}

// A node restarted empty (its disk lost; DESIGN §7) while a lease is held forgets the lease, and
// a second client wins a majority that includes it: a double grant, which the exclusion check
// must find. A holds on nodes 0 and 1 only (it is cut off from node 2 when it acquires); node 0
// restarts empty; B then wins nodes 0 and 2 while A's lease is still valid.
func TestExpectedDoubleGrantAfterEmptyRestart(t *testing.T) {
	// A holds for a second of its 2s TTL: time enough, on a loaded machine, for the restart and
	// B's whole section to come between A's read and its write.
	lc := LeaseConfig{TTL: 2 * time.Second, NodeTimeout: 50 * time.Millisecond}
	r, _ := doubleGrantOnABareMajority(t, "expected: empty restart", lc, 1, func(env *Env) Fault {
		f := Fault{Kind: NodeRestartEmpty, Nodes: []int{0}, Start: Mono()}
		env.Nodes[0].RestartEmpty()
		f.End = Mono()
		return f
	})
	// A's stale write overwrites B's: the lost update follows from the double grant.
	r.Expected = append(r.Expected, CheckLostUpdate, CheckLinear)
	report.Add(r)
	r.Verify(t)
}

// doubleGrantOnABareMajority runs the directed scenario of a node that forgets a held lease: A
// holds "hot" on nodes 0 and 1 only (it is cut off from node 2 when it acquires) for half the TTL,
// inside its validity, between its read of the counter and its write; once A has read, forget
// makes node 0 forget A's lease and returns the fault; then B takes "hot" (on nodes 0 and 2),
// reads and writes, while A's lease is valid: A's write comes after B's. It returns the result with the checks run,
// the exclusion check expected to find the double grant (the caller says what else it allows),
// and the sections.
func doubleGrantOnABareMajority(t *testing.T, scenario string, lc LeaseConfig, seed uint64, forget func(*Env) Fault) (*Result, []Section) {
	began := time.Now()
	env := NewEnv(t, 3, lc, seed)
	a, b := env.NewGoClient("a", PrimMutex), env.NewGoClient("b", PrimMutex)
	var hist History
	res := env.ResourceClient()
	work := Workload{Names: []string{"hot"}, AcquireTimeout: 5 * time.Second, Mode: Exclusive}
	ca := &Client{ID: "a", Locker: a.Locker, Res: res, Work: work, Rng: rand.New(rand.NewPCG(seed, 1)), OnExit: hist.Add}
	ca.Work.HoldMin, ca.Work.Hold = lc.TTL/2, lc.TTL/2 // inside A's validity: A itself does nothing wrong
	cb := &Client{ID: "b", Locker: b.Locker, Res: res, Work: work, Rng: rand.New(rand.NewPCG(seed, 2)), OnExit: hist.Add}

	cut := env.Proxies("a")[2]
	cut.SetCut(true)
	// Once A has read the counter (and before it writes, half a TTL later), node 0 forgets.
	read := make(chan struct{})
	var once sync.Once
	ca.OnRead = func(Section) { once.Do(func() { close(read) }) }
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := ca.Section(context.Background(), Claim{Name: "hot", Mode: Exclusive}); err != nil {
			t.Errorf("a: acquire with nodes 0 and 1: %v", err)
		}
		once.Do(func() { close(read) })
	})
	<-read
	start := Mono()
	forgot := forget(env)
	if _, err := cb.Section(context.Background(), Claim{Name: "hot", Mode: Exclusive}); err != nil {
		t.Errorf("b: acquire after node 0 forgot a's lease (%s): %v", forgot.Kind, err)
	}
	wg.Wait()
	cut.Heal()
	faults := []Fault{{Kind: NetCut, Nodes: []int{2}, Client: "a", Start: start, End: Mono()}, forgot}
	a.Close()
	b.Close()

	sections := hist.Sections()
	r := newResult(scenario, PrimMutex, seed, sections, faults)
	r.Replay = replayCommand(t, 0)
	r.Expected = []string{CheckExclusion}
	r.Violations = append(r.Violations, CheckExclusive(sections)...)
	r.Violations = append(r.Violations, CheckFencingOrder(sections)...)
	r.Violations = append(r.Violations, CheckUpdates(sections, env.Finals())...)
	r.Violations = append(r.Violations, CheckLinearizable(sections, LinearizeTimeout)...)
	r.Violations = append(r.Violations, CheckLeases(sections, profile.DoneSlack)...)
	r.Violations = append(r.Violations, env.KeysLeft(2*lc.TTL+time.Second)...)
	r.P99, r.DuringFaults = acquireP99(sections, faults)
	r.Wall = time.Since(began)
	return r, sections
}

// A client process stopped (SIGSTOP, like a long GC pause or a frozen VM) between its read and
// its write (a third into its 600ms hold), for longer than its lease, cannot see that the lease is gone: meanwhile another
// client takes the lock and increments the counter, then the process resumes and writes its stale
// value. The lock was never granted twice, but the unfenced resource loses updates: the update
// check and the lease-use check must find it. (Fencing is the cure: see the fenced resource.)
func TestExpectedLostUpdateWhenProcessPausedPastLease(t *testing.T) {
	lc := LeaseConfig{TTL: 500 * time.Millisecond, NodeTimeout: 50 * time.Millisecond}
	seed := uint64(2)
	began := time.Now()
	env := NewEnv(t, 3, lc, seed)
	work := Workload{Names: []string{"hot"}, AcquireTimeout: 10 * time.Second, Mode: Exclusive}
	slow := work
	slow.HoldMin, slow.Hold = 600*time.Millisecond, 600*time.Millisecond
	p := env.NewProcClient("p", "p", ChildConfig{Primitive: PrimMutex, Work: slow, Goroutines: 1, Sections: 1, Seed: seed})

	// Wait until p is inside its section (its journal has the entry line), then freeze it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss, _ := p.Sections()
		if len(ss) > 0 {
			break
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("child never entered its section; output:\n%s", p.Output())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Its read takes a millisecond or so; a third of its hold later it is surely past it.
	time.Sleep(slow.HoldMin / 3)
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := Mono()

	// q works the counter while p is frozen, well past p's TTL.
	q := env.NewGoClient("q", PrimMutex)
	var hist History
	cq := &Client{ID: "q", Locker: q.Locker, Res: env.ResourceClient(), Work: work, Rng: rand.New(rand.NewPCG(seed, 1)), OnExit: hist.Add}
	ctx, stop := context.WithTimeout(context.Background(), 3*lc.TTL)
	cq.Run(ctx)
	stop()
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	faults := []Fault{{Kind: ProcPausePastLease, Client: "p", Start: pausedAt, End: Mono()}}
	if err := p.Stop(20 * time.Second); err != nil { // it finishes its one section and exits
		t.Error(err)
	}
	// q goes on a little after p's stale write.
	ctx, stop = context.WithTimeout(context.Background(), lc.TTL)
	cq.Run(ctx)
	stop()
	q.Close()

	ps, err := p.Sections()
	if err != nil {
		t.Fatal(err)
	}
	hist.AddAll(ps)
	sections := hist.Sections()
	r := newResult("expected: process paused past lease", PrimMutex, seed, sections, faults)
	r.Replay = replayCommand(t, 0)
	r.Expected = []string{CheckLostUpdate, CheckLinear, CheckLeaseUse}
	// Frozen, p's own timer could not close Done on time either.
	r.Allowed = []string{CheckDoneLate}
	r.Violations = append(r.Violations, CheckExclusive(sections)...)
	r.Violations = append(r.Violations, CheckUpdates(sections, env.Finals())...)
	r.Violations = append(r.Violations, CheckLinearizable(sections, LinearizeTimeout)...)
	r.Violations = append(r.Violations, CheckLeases(sections, profile.DoneSlack)...)
	r.Violations = append(r.Violations, env.KeysLeft(2*lc.TTL+time.Second)...)
	if !p.Reaped() {
		r.Violations = append(r.Violations, Violation{Check: CheckLeak, Name: p.ID, Detail: "child process not reaped"})
	}
	r.P99, r.DuringFaults = acquireP99(sections, faults)
	r.Wall = time.Since(began)
	report.Add(r)
	r.Verify(t)
}

// After a majority of nodes hangs (SIGSTOP) for longer than the TTL, the holder's Done closes by
// its Until (plus the slack), and once the nodes are resumed the name is free within a bound:
// FreeBound after the heal, another client holds it. Nothing is left on any node at the end.
func TestNameFreeAfterMajorityHangHeals(t *testing.T) {
	lc := profile.Lease
	const seed = 3
	began := time.Now()
	env := NewEnv(t, profile.Nodes, lc, seed)
	a, b := env.NewGoClient("a", PrimMutex), env.NewGoClient("b", PrimMutex)
	ctx := context.Background()

	s := Section{Client: "a", Name: "hot", Primitive: PrimMutex, Mode: Exclusive}
	s.AcquireStart = Mono()
	h, err := a.Locker.Acquire(ctx, Claim{Name: "hot", Mode: Exclusive})
	if err != nil {
		t.Fatal(err)
	}
	s.Enter, s.Until = Mono(), MonoOf(h.Until())
	majority := len(env.Nodes)/2 + 1
	hang := Fault{Kind: NodePause, Start: Mono()}
	for i := range majority {
		env.Nodes[i].Stop()
		hang.Nodes = append(hang.Nodes, i)
	}
	select {
	case <-h.Done():
		s.DoneAt, s.DoneUntil = Mono(), MonoOf(h.Until())
	case <-time.After(2 * lc.TTL):
	}
	time.Sleep(time.Duration(int64(2*lc.TTL) - (Mono() - hang.Start)))
	for i := range majority {
		env.Nodes[i].Continue()
	}
	hang.End = Mono()
	s.Exit, s.Until, s.Lost = Mono(), MonoOf(h.Until()), h.Err() != nil
	_ = h.Release(ctx) // lost: the error says so; the check below looks at the record

	var hist History
	hist.Add(s)
	cb := &Client{ID: "b", Locker: b.Locker, Res: env.ResourceClient(),
		Work: Workload{Names: []string{"hot"}, AcquireTimeout: 10 * time.Second, Mode: Exclusive, Hold: time.Millisecond},
		Rng:  rand.New(rand.NewPCG(seed, 1)), OnExit: hist.Add}
	if _, err := cb.Section(ctx, Claim{Name: "hot", Mode: Exclusive}); err != nil {
		t.Errorf("b: acquire after the hang healed: %v", err)
	}
	a.Close()
	b.Close()
	sections := hist.Sections()
	if !s.Lost || s.DoneAt == 0 {
		t.Errorf("a's lease: lost %v, Done closed %v; want both: its nodes hung for 2x TTL", s.Lost, s.DoneAt != 0)
	}
	if len(sections) == 2 {
		t.Logf("name free %s after the majority hang healed (bound %s)", ms(sections[1].Enter-hang.End), FreeBound(lc))
	}
	r := newResult("majority hang, then heal", PrimMutex, seed, sections, []Fault{hang})
	r.Replay = replayCommand(t, 0)
	r.Violations = append(r.Violations, CheckExclusive(sections)...)
	r.Violations = append(r.Violations, CheckUpdates(sections, env.Finals())...)
	r.Violations = append(r.Violations, CheckLinearizable(sections, LinearizeTimeout)...)
	r.Violations = append(r.Violations, CheckLeases(sections, profile.DoneSlack)...)
	r.Violations = append(r.Violations, CheckAcquiredAfter(sections, []string{"b"}, hang.End, FreeBound(lc))...)
	r.Violations = append(r.Violations, env.KeysLeft(2*lc.TTL+time.Second)...)
	r.Wall = time.Since(began)
	report.Add(r)
	r.Verify(t)
}

// FreeBound is how soon after a majority hang heals the name must be free again: one TTL (the
// longest a key renewed on the minority that stayed up can outlive the holder's loss) plus a
// second for the suspect nodes' probes to find them back and for a loaded 2-core machine.
func FreeBound(lc LeaseConfig) time.Duration { return lc.TTL + time.Second }
