package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// FaultKind names a fault the nemesis injects.
type FaultKind string

const (
	NodePause    FaultKind = "node-pause"    // SIGSTOP the node; SIGCONT at heal
	NodeKill     FaultKind = "node-kill"     // SIGKILL the node; restart it with its AOF at heal
	NodeSlow     FaultKind = "node-slow"     // DEBUG SLEEP for the fault's duration
	ScriptFlush  FaultKind = "script-flush"  // SCRIPT FLUSH (instant)
	NetLatency   FaultKind = "net-latency"   // latency and jitter on links to the nodes
	NetReset     FaultKind = "net-reset"     // reset every connection to the nodes (instant)
	NetBlackhole FaultKind = "net-blackhole" // links to the nodes accept but forward nothing
	NetCut       FaultKind = "net-cut"       // one client cut off from the nodes
	ClientPause  FaultKind = "client-pause"  // SIGSTOP a client process
	ClientKill   FaultKind = "client-kill"   // SIGKILL a client process; a new one starts at heal
	// HolderCut cuts one client off from a majority of the nodes, but not from all, for TTL/4 to
	// TTL: a holder-side outage that loses its leases mid-section. It picks a client in a long
	// section when one is (see Env.LongHolders). It hits no node for the others, so it is outside
	// the nodes' fault budget.
	HolderCut FaultKind = "holder-cut"
	// NetRing gives every client a view of its own: client k is cut off from a minority of the
	// nodes starting at node k (Jepsen's majorities ring), so two clients use different majorities.
	// It runs alone: no node fault starts while it is on, and it waits for them to heal.
	NetRing FaultKind = "net-ring"
	// NodeOOM fills a node's memory for the fault's duration: maxmemory drops below what the node
	// uses, under maxmemory-policy noeviction (the setting the lease doc asks for). The node then
	// refuses a command, or a script's first write, that may grow memory (an acquire's first
	// request: an out-of-memory vote error), while it keeps, renews and releases what it holds (the
	// scripts of a renewal or a release write first with a command that frees). Safe: it is in the
	// random schedule.
	NodeOOM FaultKind = "node-oom"
	// ClockJump steps a node's wall clock forward by 1.5–3× TTL at once, as an NTP step or an
	// operator's date(1) would: far past the drift margin, so every key on the node expires early,
	// and the node forgets the leases it granted. Unsafe by design (the lease doc's clock bound): a
	// holder whose majority included the node can have a second holder beside it, which fencing
	// at the resource keeps out (see ForgetfulKinds).
	ClockJump FaultKind = "node-clock-jump"
	// NodeEvict fills a node's memory under maxmemory-policy volatile-lru for the fault's duration:
	// the node evicts the keys with a TTL (by approximate LRU; the limit is below anything it can
	// reach, so all of them, lock keys among them) and forgets the leases it granted. Unsafe by
	// design (the lease doc's memory caveat), like ClockJump.
	NodeEvict FaultKind = "node-evict"
	// NodeRestartEmpty restarts a node with its data wiped. Unsafe by design (DESIGN §7): only the
	// expected-violation scenario uses it, never the random schedule.
	NodeRestartEmpty FaultKind = "node-restart-empty"
	// ProcPausePastLease pauses a client process past its lease (expected-violation scenario).
	ProcPausePastLease FaultKind = "client-pause-past-lease"
	// ProcessStall is no fault the nemesis injects: it is the test process itself not running for
	// a while (CPU starvation on a loaded machine, a long GC pause), as a stall monitor saw it
	// (see watchStalls). Its clients are then holders paused like a paused process's.
	ProcessStall FaultKind = "test-process-stall"
)

// Fault is one injected fault, as the report and the latency figures see it.
type Fault struct {
	Kind   FaultKind
	Nodes  []int
	Client string // the client it hit, for client and per-client network faults
	Start  int64  // Mono
	End    int64  // Mono; == Start for instant faults
}

func (f Fault) String() string {
	who := fmt.Sprintf("nodes %v", f.Nodes)
	if f.Client != "" {
		who = f.Client + " " + who
	}
	return fmt.Sprintf("%s %s for %s", f.Kind, who, ms(f.End-f.Start))
}

// ProcTargets gives the nemesis the client processes to fault, by slot.
type ProcTargets interface {
	ProcSlots() int
	ProcID(slot int) string
	PauseProc(slot int) error
	ResumeProc(slot int) error
	KillProc(slot int)
	RespawnProc(slot int)
}

// NemesisConfig shapes the random schedule.
type NemesisConfig struct {
	Kinds []FaultKind
	// Majority lets faults hit a majority of the nodes at once (a liveness phase); otherwise the
	// nodes under any fault at one time are at most a minority, (N-1)/2.
	Majority bool
	// MaxActive is how many faults may be active at once.
	MaxActive int
	// Gap is the longest wait between two injections (uniform in [Gap/4, Gap]).
	Gap time.Duration
	// ClientPauseMin and ClientPauseMax bound a client pause. A pause past the lease is the
	// documented caveat of a holder paused past its validity: its late looks at the lease are
	// marked as caveats (Attribute), and only the fenced resource keeps its writes out.
	ClientPauseMin, ClientPauseMax time.Duration
}

// Nemesis injects a seeded random schedule of faults and heals each after 0.5–2× TTL.
type Nemesis struct {
	env   *Env
	procs ProcTargets
	cfg   NemesisConfig
	rng   *rand.Rand

	mu  sync.Mutex
	log []Fault
	bg  sync.WaitGroup // DEBUG SLEEPs in flight
}

// NewNemesis returns a nemesis over env's nodes and links and procs (which may be nil), with its
// random choices drawn from seed.
func NewNemesis(env *Env, procs ProcTargets, cfg NemesisConfig, seed uint64) *Nemesis {
	return &Nemesis{env: env, procs: procs, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x6e656d))}
}

type active struct {
	f     Fault
	nodes []int // nodes it counts against the budget
	node  bool  // a node-level fault (at most one per node)
	ring  bool  // a majorities ring: no other fault on nodes meanwhile
	// targeted: a holder cut answering a long section (outside MaxActive)
	targeted bool
	client   int // proc slot under a client fault, or -1
	healAt   time.Time
	heal     func()
}

// Run injects faults until ctx ends, then heals every active fault and waits for the slow-downs
// in flight. It returns when all is healed.
func (n *Nemesis) Run(ctx context.Context) {
	var act []*active
	next := time.Now().Add(n.gap())
	for {
		wake := next
		for _, a := range act {
			if a.healAt.Before(wake) {
				wake = a.healAt
			}
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			for _, a := range act {
				n.heal(a)
			}
			n.bg.Wait()
			return
		case id := <-n.env.LongStarts():
			// Outside MaxActive: it hits one client, no node.
			t.Stop()
			cut := false
			for _, a := range act {
				cut = cut || a.f.Kind == HolderCut && a.f.Client == id
			}
			if slices.Contains(n.cfg.Kinds, HolderCut) && !cut {
				a := n.cutHolder(id, n.ttl()*9/10+time.Duration(n.rng.Int64N(int64(n.ttl()*6/10))))
				a.targeted = true
				act = append(act, a)
			}
			continue
		case <-t.C:
		}
		now := time.Now()
		kept := act[:0]
		for _, a := range act {
			if !a.healAt.After(now) {
				n.heal(a)
			} else {
				kept = append(kept, a)
			}
		}
		act = kept
		if !next.After(now) {
			random := 0 // the holder cuts that answer long sections are outside MaxActive
			for _, a := range act {
				if !a.targeted {
					random++
				}
			}
			if random < max(n.cfg.MaxActive, 1) {
				if a := n.inject(act); a != nil {
					act = append(act, a)
				}
			}
			next = now.Add(n.gap())
		}
	}
}

func (n *Nemesis) gap() time.Duration {
	g := max(n.cfg.Gap, 4*time.Millisecond)
	return g/4 + time.Duration(n.rng.Int64N(int64(g-g/4)))
}

func (n *Nemesis) ttl() time.Duration { return n.env.Lease.TTL }

// duration draws a fault's duration: 0.5–2× TTL.
func (n *Nemesis) duration() time.Duration {
	return n.ttl()/2 + time.Duration(n.rng.Int64N(int64(n.ttl()*3/2)))
}

// pickNodes draws up to k nodes such that the nodes under faults stay within the budget, and
// none is under a node-level fault if node is set.
func (n *Nemesis) pickNodes(act []*active, k int, node bool) []int {
	nodes := len(n.env.Nodes)
	budget := (nodes - 1) / 2
	if n.cfg.Majority {
		budget = nodes/2 + 1
	}
	used := map[int]bool{}
	busy := map[int]bool{}
	for _, a := range act {
		for _, i := range a.nodes {
			used[i] = true
			if a.node {
				busy[i] = true
			}
		}
	}
	var out []int
	for _, i := range n.rng.Perm(nodes) {
		if len(out) == k {
			break
		}
		if node && busy[i] {
			continue
		}
		if !used[i] && len(used) >= budget {
			continue
		}
		used[i] = true
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

func (n *Nemesis) pickSize() int {
	nodes := len(n.env.Nodes)
	budget := (nodes - 1) / 2
	if n.cfg.Majority {
		budget = nodes/2 + 1
	}
	return 1 + n.rng.IntN(max(budget, 1))
}

// inject starts one fault of a random kind; nil when none fits now.
func (n *Nemesis) inject(act []*active) *active {
	kind := n.cfg.Kinds[n.rng.IntN(len(n.cfg.Kinds))]
	d := n.duration()
	a := &active{f: Fault{Kind: kind}, client: -1}
	env := n.env
	ringOn, nodesOn := false, false
	for _, b := range act {
		ringOn = ringOn || b.ring
		nodesOn = nodesOn || len(b.nodes) > 0
	}
	switch {
	case kind == NetRing && (nodesOn || ringOn), kind != NetRing && kind != HolderCut && kind != ClientPause && kind != ClientKill && ringOn:
		return nil
	}
	switch kind {
	case HolderCut:
		ids := env.LongHolders()
		if len(ids) == 0 {
			ids = env.LinkedClients()
		}
		return n.cutHolder(ids[n.rng.IntN(len(ids))], n.ttl()/4+time.Duration(n.rng.Int64N(int64(n.ttl()*3/4))))
	case NetRing:
		nodes := len(env.Nodes)
		size := max((nodes-1)/2, 1)
		var ps []*Proxy
		for k, id := range env.LinkedClients() {
			for j := range size {
				ps = append(ps, env.Proxies(id)[(k+j)%nodes])
			}
		}
		for _, p := range ps {
			p.SetCut(true)
		}
		a.heal = func() {
			for _, p := range ps {
				p.SetCut(false)
			}
		}
		a.ring = true
		a.f.Start = Mono()
		a.f.End = a.f.Start + int64(d)
		a.healAt = time.Now().Add(d)
		return a
	case NodePause, NodeKill, NodeSlow, NodeOOM, ClockJump, NodeEvict:
		a.node = true
		a.nodes = n.pickNodes(act, n.pickSize(), true)
		nodes := a.nodes
		switch kind {
		case NodePause:
			for _, i := range nodes {
				env.Nodes[i].Stop()
			}
			a.heal = func() {
				for _, i := range nodes {
					env.Nodes[i].Continue()
				}
			}
		case NodeKill:
			for _, i := range nodes {
				env.Nodes[i].Kill()
			}
			a.heal = func() {
				for _, i := range nodes {
					env.Nodes[i].Restart()
				}
			}
		case NodeSlow:
			for _, i := range nodes {
				n.bg.Go(func() {
					// The server sleeps d whatever happens to this call. It fails when a later
					// fault kills the node before the reply: that is no error of the test.
					if err := env.Nodes[i].Slow(context.Background(), d); err != nil {
						env.t.Logf("chaos: %v", err)
					}
				})
			}
			a.heal = func() {}
		case ClockJump:
			step := n.ttl()*3/2 + time.Duration(n.rng.Int64N(int64(n.ttl()*3/2)))
			a.f.Start = Mono()
			for _, i := range nodes {
				env.Nodes[i].JumpClock(step)
			}
			// An instant fault: the step stays (a clock set right is not set back; a backward
			// step would only delay expiry), and the node is a healthy one that forgot.
			d = 0
		case NodeOOM, NodeEvict:
			policy := "noeviction"
			if kind == NodeEvict {
				policy = "volatile-lru"
			}
			a.f.Start = Mono() // the node may evict from the first CONFIG SET on
			for _, i := range nodes {
				if err := squeeze(env.Nodes[i], policy, true); err != nil {
					env.t.Errorf("chaos: %s: %v", kind, err) // the node is up (no other node fault is on it)
				}
			}
			a.heal = func() {
				for _, i := range nodes {
					if err := squeeze(env.Nodes[i], "noeviction", false); err != nil {
						env.t.Errorf("chaos: heal %s: %v", kind, err)
					}
				}
			}
		}
	case ScriptFlush, NetReset:
		a.nodes = n.pickNodes(act, n.pickSize(), false)
		for _, i := range a.nodes {
			if kind == ScriptFlush {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				// A node that is paused or killed right now cannot flush; its fault covers it.
				_ = env.Nodes[i].FlushScripts(ctx)
				cancel()
			} else {
				for _, id := range env.LinkedClients() {
					env.Proxies(id)[i].Reset()
				}
			}
		}
		d = 0
	case NetLatency, NetBlackhole, NetCut:
		a.nodes = n.pickNodes(act, n.pickSize(), false)
		clients := env.LinkedClients()
		if kind == NetCut || (kind == NetLatency && n.rng.IntN(2) == 0) {
			a.f.Client = clients[n.rng.IntN(len(clients))]
			clients = []string{a.f.Client}
		}
		var ps []*Proxy
		for _, id := range clients {
			for _, i := range a.nodes {
				ps = append(ps, env.Proxies(id)[i])
			}
		}
		nt := env.Lease.NodeTimeout
		for _, p := range ps {
			switch kind {
			case NetLatency:
				// Around the node timeout: some calls make it, some time out.
				p.SetLatency(nt/2, nt)
			case NetBlackhole:
				p.SetBlackhole(true)
			case NetCut:
				p.SetCut(true)
			}
		}
		a.heal = func() {
			for _, p := range ps {
				switch kind {
				case NetLatency:
					p.SetLatency(0, 0)
				case NetBlackhole:
					p.SetBlackhole(false)
				case NetCut:
					p.SetCut(false)
				}
			}
		}
	case ClientPause, ClientKill:
		if n.procs == nil || n.procs.ProcSlots() == 0 {
			return nil
		}
		slot := n.rng.IntN(n.procs.ProcSlots())
		for _, b := range act {
			if b.client == slot {
				return nil
			}
		}
		a.client = slot
		a.f.Client = n.procs.ProcID(slot)
		if kind == ClientPause {
			if n.cfg.ClientPauseMax > 0 {
				lo := n.cfg.ClientPauseMin
				if lo <= 0 || lo >= n.cfg.ClientPauseMax {
					lo = n.cfg.ClientPauseMax / 2
				}
				d = lo + time.Duration(n.rng.Int64N(int64(n.cfg.ClientPauseMax-lo)))
			}
			if err := n.procs.PauseProc(slot); err != nil {
				return nil // it exited: nothing to pause
			}
			a.heal = func() { _ = n.procs.ResumeProc(slot) }
		} else {
			n.procs.KillProc(slot)
			a.heal = func() { n.procs.RespawnProc(slot) }
		}
	default:
		panic("chaos: the random schedule cannot inject " + string(kind))
	}
	if len(a.nodes) == 0 && a.client < 0 {
		return nil
	}
	a.f.Nodes = slices.Clone(a.nodes)
	if a.f.Start == 0 {
		a.f.Start = Mono()
	}
	a.f.End = a.f.Start + int64(d)
	a.healAt = time.Now().Add(d)
	if a.heal == nil {
		a.heal = func() {}
	}
	return a
}

// cutHolder cuts client id off from a majority of the nodes, not all, for d: its leases are lost
// unless a renewal gets through before their Until. Besides the random HolderCut (TTL/4 to TTL),
// the nemesis answers every long section starting in the test process with one of 0.9 to
// 1.5 TTL from the start, which loses the lease while the section holds on for the longer of them.
func (n *Nemesis) cutHolder(id string, d time.Duration) *active {
	nodes := len(n.env.Nodes)
	cut := n.rng.Perm(nodes)[:min(nodes/2+1, max(nodes-1, 1))]
	sort.Ints(cut)
	var ps []*Proxy
	for _, i := range cut {
		ps = append(ps, n.env.Proxies(id)[i])
	}
	for _, p := range ps {
		p.SetCut(true)
	}
	a := &active{f: Fault{Kind: HolderCut, Client: id, Nodes: cut}, client: -1, heal: func() {
		for _, p := range ps {
			p.SetCut(false)
		}
	}}
	a.f.Start = Mono()
	a.f.End = a.f.Start + int64(d)
	a.healAt = time.Now().Add(d)
	return a
}

func (n *Nemesis) heal(a *active) {
	a.heal()
	if a.f.End > a.f.Start {
		a.f.End = Mono()
	}
	n.mu.Lock()
	n.log = append(n.log, a.f)
	n.mu.Unlock()
}

// Faults returns every fault injected so far and healed.
func (n *Nemesis) Faults() []Fault {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.log)
}

// CountFaults counts faults by kind, as "kind:n" sorted by kind.
func CountFaults(fs []Fault) string {
	counts := map[string]int{}
	for _, f := range fs {
		counts[string(f.Kind)]++
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
