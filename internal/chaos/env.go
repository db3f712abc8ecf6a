package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// Env is one scenario's world: the quorum's nodes (real redis-server processes with AOF), the
// resource server (not a quorum member, never faulted), and a proxy for every (client, node) link.
// Clients connect to their proxies, never to the nodes. Everything it starts stops when the test
// ends.
type Env struct {
	t        testing.TB
	Nodes    []*redistest.Node
	Resource *redistest.Node
	Lease    LeaseConfig
	seed     uint64

	mu      sync.Mutex
	links   map[string][]*Proxy // client id -> its proxy to each node, in node order
	clients []string            // in order of creation
	procs   map[string]*Proc
	long    map[string]int // client id -> its goroutines in a long section now
	names   map[string]int // name -> the long sections on it now
	starts  chan string    // client ids, as one of their goroutines starts a long section
}

// NewEnv starts n nodes and the resource server. With lc.ClockRate the nodes' wall clocks run that
// much faster than real time (see redistest.WithClockRate).
func NewEnv(t testing.TB, n int, lc LeaseConfig, seed uint64) *Env {
	t.Helper()
	e := &Env{t: t, Lease: lc, seed: seed, links: map[string][]*Proxy{}, procs: map[string]*Proc{}, long: map[string]int{}, names: map[string]int{}, starts: make(chan string, 16)}
	opts := []redistest.Option{redistest.WithAppendOnly(), redistest.WithDebugCommand(), redistest.WithClockJumps()}
	if lc.ClockRate != 0 {
		opts = append(opts, redistest.WithClockRate(lc.ClockRate))
	}
	e.Nodes = redistest.Start(t, n, opts...)
	e.Resource = redistest.Start(t, 1)[0]
	t.Cleanup(e.closeLinks)
	return e
}

// squeeze fills node's memory (on) or frees it: CONFIG SET maxmemory to one byte, below what any
// server uses, under the given eviction policy, or back to no limit and noeviction. A node over its
// limit evicts by its policy before every command, and refuses the writes that may grow memory.
func squeeze(node *redistest.Node, policy string, on bool) error {
	c := redis.NewClient(node.Options())
	defer c.Close()
	args := []any{"CONFIG", "SET", "maxmemory-policy", policy, "maxmemory", "1"}
	if !on {
		args = []any{"CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction"}
	}
	var err error
	for range 3 { // a node under a latency fault of its own may be slow to answer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.Do(ctx, args...).Err()
		if err == nil && on {
			err = c.Ping(ctx).Err() // the node evicts before it runs its next command
		}
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("CONFIG SET %v on %s: %w", args[2:], node.Addr(), err)
}

// Link creates the proxies for a new client id and returns their addresses, in node order.
func (e *Env) Link(id string) []string {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.links[id]; dup {
		e.t.Fatalf("chaos: client id %q linked twice", id)
	}
	ps := make([]*Proxy, len(e.Nodes))
	addrs := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		p, err := NewProxy(n.Addr(), e.seed+uint64(len(e.clients)*len(e.Nodes)+i))
		if err != nil {
			e.t.Fatalf("chaos: proxy for %s to node %d: %v", id, i, err)
		}
		ps[i], addrs[i] = p, p.Addr()
	}
	e.links[id] = ps
	e.clients = append(e.clients, id)
	return addrs
}

// Proxies returns client id's proxies, in node order.
func (e *Env) Proxies(id string) []*Proxy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.links[id]
}

// InLong records that one of client id's goroutines started (true) or ended (false) a long section
// on name.
func (e *Env) InLong(id, name string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on {
		e.names[name]++
	} else {
		e.names[name]--
	}
	if on {
		e.long[id]++
		select {
		case e.starts <- id:
		default: // the nemesis is busy: this one goes untargeted
		}
	} else {
		e.long[id]--
	}
}

// LongName returns a name that a long section holds now, chosen with rng, if any does.
func (e *Env) LongName(rng *rand.Rand) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for n, k := range e.names {
		if k > 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return names[rng.IntN(len(names))], true
}

// LongStarts delivers the id of a client in the test process as one of its goroutines starts a
// long section.
func (e *Env) LongStarts() <-chan string { return e.starts }

// LongHolders returns the clients in the test process with a goroutine in a long section now.
func (e *Env) LongHolders() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, id := range e.clients {
		if e.long[id] > 0 {
			out = append(out, id)
		}
	}
	return out
}

// LinkedClients returns every client id linked so far, in order.
func (e *Env) LinkedClients() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.clients...)
}

func (e *Env) closeLinks() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ps := range e.links {
		for _, p := range ps {
			_ = p.Close()
		}
	}
}

// NodeOptions returns client options for a node reached at addr (a proxy).
func NodeOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		MaxRetries:            -1,
	}
}

// dialNodes opens one client per address.
func dialNodes(addrs []string) []redis.UniversalClient {
	cs := make([]redis.UniversalClient, len(addrs))
	for i, a := range addrs {
		cs[i] = redis.NewClient(NodeOptions(a))
	}
	return cs
}

func closeClients(cs []redis.UniversalClient) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// GoClient is a client in the test process: one quorum over its own proxies, shared by several
// goroutines.
type GoClient struct {
	ID      string
	Locker  Locker
	clients []redis.UniversalClient
}

// NewGoClient links id and builds its Locker for primitive. It is closed when the test ends, if
// not before.
func (e *Env) NewGoClient(id, primitive string) *GoClient {
	e.t.Helper()
	cs := dialNodes(e.Link(id))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := NewLocker(ctx, primitive, cs, e.Lease)
	if err != nil {
		closeClients(cs)
		e.t.Fatalf("chaos: locker for %s: %v", id, err)
	}
	g := &GoClient{ID: id, Locker: l, clients: cs}
	e.t.Cleanup(func() { g.Close() })
	return g
}

// Close closes the client's Locker and node clients; later calls do nothing.
func (g *GoClient) Close() {
	if g.clients == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.Locker.Close(ctx)
	closeClients(g.clients)
	g.clients = nil
}

// ResourceClient returns a client of the resource server, closed when the test ends.
func (e *Env) ResourceClient() *Resource { return NewResource(e.Resource.Client()) }

// Finals reads the resource's final counters.
func (e *Env) Finals() map[string]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := e.ResourceClient().Finals(ctx)
	if err != nil {
		e.t.Fatalf("chaos: read the resource: %v", err)
	}
	return f
}

// KeysLeft waits up to bound for every node to hold no key of the library (prefix
// "quorumsync:"), and returns a violation per node that still holds some then. Keys of a client
// killed while it held or waited may stay until they expire (at most the TTL for a lock key, twice
// the liveness for a queue), which is why this waits.
func (e *Env) KeysLeft(bound time.Duration) []Violation {
	deadline := time.Now().Add(bound)
	for {
		var out []Violation
		for i, n := range e.Nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			keys, err := n.Keys(ctx)
			cancel()
			if err != nil {
				out = append(out, Violation{Check: CheckKeysLeft, Name: fmt.Sprintf("node %d", i), Detail: "scan: " + err.Error()})
				continue
			}
			var ours []string
			for _, k := range keys {
				// Fencing counters are meant to stay (they must outlive every holder).
				if strings.HasPrefix(k, "quorumsync:") && !strings.HasSuffix(k, ":fence") {
					ours = append(ours, k)
				}
			}
			if len(ours) > 0 {
				out = append(out, Violation{Check: CheckKeysLeft, Name: fmt.Sprintf("node %d", i),
					Detail: fmt.Sprintf("%d key(s) left %s after the end: %s", len(ours), bound, strings.Join(first(ours, 5), " "))})
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// NewProcClient starts a child process with id running cfg over the proxies of link (linked on
// first use: a child started again after a kill reuses the links of the one it replaces). cfg's
// ID, Nodes, Resource, Lease and Journal are filled in here. A child still running when the test
// ends is killed and reaped.
func (e *Env) NewProcClient(link, id string, cfg ChildConfig) *Proc {
	e.t.Helper()
	e.mu.Lock()
	ps, linked := e.links[link]
	e.mu.Unlock()
	var addrs []string
	if linked {
		for _, p := range ps {
			addrs = append(addrs, p.Addr())
		}
	} else {
		addrs = e.Link(link)
	}
	cfg.ID, cfg.Nodes, cfg.Resource, cfg.Lease = id, addrs, e.Resource.Addr(), e.Lease
	dir := e.t.TempDir()
	cfg.Journal = filepath.Join(dir, id+".jsonl")
	p, err := StartProc(dir, cfg)
	if err != nil {
		e.t.Fatalf("chaos: start child %s: %v", id, err)
	}
	e.mu.Lock()
	e.procs[id] = p
	e.mu.Unlock()
	e.t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
	})
	return p
}

// Procs returns every child started, in no order.
func (e *Env) Procs() []*Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Proc, 0, len(e.procs))
	for _, p := range e.procs {
		out = append(out, p)
	}
	return out
}
