package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// keyMode says which key each acquisition locks.
type keyMode int

const (
	keyShared       keyMode = iota // every goroutine locks the same key
	keyPerGoroutine                // each goroutine has a key of its own
	keyPerOp                       // every acquisition locks a new key (a new Locker each time)
)

// scenario is one workload. Goroutine g uses client g % clients. With more than one client, each
// is an OS process of its own (see child.go); a single client runs in the harness's process.
type scenario struct {
	name       string
	desc       string
	nodes      int
	clients    int
	goroutines int
	hold       time.Duration
	keys       keyMode
	// handoff makes every unlock pass the lock to a waiter: after Unlock a goroutine waits until
	// someone else has acquired before it calls Lock again.
	handoff bool
	// load is what each acquisition asks for; the zero value is an exclusive lock every time.
	load     load
	adapters []string // the adapters that run it by default, baseline included
	baseline string
}

// load is what a scenario's goroutines ask for. A library without the primitive asked for runs
// the scenario with exclusive locks instead (see lockerFor).
type load struct {
	read       bool    // every acquisition asks for a read lock…
	writeEvery int     // …except every writeEvery-th of each goroutine, a write lock (0: none)
	capacity   int64   // > 0: the key is a semaphore of this capacity, and acquisitions ask for permits
	weights    []int64 // permits: goroutine g asks for weights[g % len(weights)]; nil: 1
}

// access returns what goroutine g's i-th acquisition (from 0) asks for. Each goroutine counts its
// own acquisitions, and their writes are staggered: goroutine g writes when (i+g) % writeEvery is
// 0, so that the goroutines do not all write at once.
func (l load) access(g int, i int64) access {
	switch {
	case l.capacity > 0:
		w := int64(1)
		if len(l.weights) > 0 {
			w = l.weights[g%len(l.weights)]
		}
		return access{mode: permits, weight: w, capacity: l.capacity}
	case l.read && (l.writeEvery <= 0 || (i+int64(g))%int64(l.writeEvery) != 0):
		return access{mode: shared}
	}
	return exclusiveAccess
}

// mixed reports whether acquisitions are of two roles (reads and writes).
func (l load) mixed() bool { return l.read && l.writeEvery > 0 }

// shares reports whether holders may overlap: a readers' or a semaphore's load.
func (l load) shares() bool { return l.read || l.capacity > 0 }

// turns reports whether the run records every holding of the lock as a turn, for the handoff and
// idle figures: exclusive holders of one key, taking turns, each for at least the hold — so a
// round has at most duration/hold turns, and their records fit in the arena.
func (s scenario) turns() bool {
	return s.keys == keyShared && s.hold > 0 && s.goroutines > 1 && !s.load.shares()
}

var single = []string{"quorumsync", "redsync", "redsync-1ms", "redislock", "raw"}
var multi = []string{"quorumsync", "redsync", "raw-quorum"}

// contended adds raw-pass, the raw lock with quorumsync's local pass, to the contended one-key
// scenarios, so that quorumsync is also compared with a poller that passes as it does.
var contended = append(slices.Clone(single), "raw-pass")

// handoffAdapters adds quorumsync's own scripts driven by a 1 ms TryLock poll, which isolates
// what the wake-ups and the queue buy over polling.
var handoffAdapters = []string{"quorumsync", "quorumsync-poll1ms", "redsync", "redsync-1ms", "redislock", "raw", "raw-pass"}

// The variants of a scenario at another client count check quorumsync's goals there; they run
// quorumsync and the baselines only, to keep the default run short (-adapters adds the peers).
var (
	variant          = []string{"quorumsync", "raw"}
	variantContended = []string{"quorumsync", "raw", "raw-pass"}
	variantQuorum    = []string{"quorumsync", "raw-quorum"}
	variantHandoff   = []string{"quorumsync", "quorumsync-poll1ms", "raw", "raw-pass"}
)

// The reader-writer and semaphore scenarios run quorumsync's primitive next to its Mutex (the
// goals compare the two) and the baselines.
var (
	rwAdapters      = []string{"quorumsync-rwmutex", "quorumsync", "raw"}
	semAdapters     = []string{"quorumsync-semaphore", "quorumsync", "raw-sem", "raw"}
	semContAdapters = []string{"quorumsync-semaphore", "raw-sem"}
)

const ms = time.Millisecond

var scenarios = []scenario{
	{name: "same-key", desc: "uncontended: 1 goroutine locks and unlocks the same key", nodes: 1, clients: 1, goroutines: 1, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "distinct-keys", desc: "uncontended: 1 goroutine, a new key (new Locker) for every lock", nodes: 1, clients: 1, goroutines: 1, keys: keyPerOp, adapters: single, baseline: "raw"},
	{name: "parallel-16", desc: "uncontended: 16 goroutines of one client, each on its own key", nodes: 1, clients: 1, goroutines: 16, keys: keyPerGoroutine, adapters: single, baseline: "raw"},
	{name: "parallel-16-c4", desc: "uncontended: 16 goroutines over 4 clients (4 each), each on its own key", nodes: 1, clients: 4, goroutines: 16, keys: keyPerGoroutine, adapters: variant, baseline: "raw"},
	{name: "contend-8-h0-c1", desc: "contended: 8 goroutines of one client on one key, no hold", nodes: 1, clients: 1, goroutines: 8, keys: keyShared, adapters: variantContended, baseline: "raw"},
	{name: "contend-8-h0", desc: "contended: 8 goroutines over 4 clients on one key, no hold", nodes: 1, clients: 4, goroutines: 8, keys: keyShared, adapters: contended, baseline: "raw"},
	{name: "contend-8-h1ms", desc: "contended: 8 goroutines over 4 clients on one key, 1ms hold", nodes: 1, clients: 4, goroutines: 8, hold: ms, keys: keyShared, adapters: contended, baseline: "raw"},
	{name: "contend-4p2-h1ms", desc: "contended across processes: 4 clients (processes) × 2 goroutines on one key, 1ms hold", nodes: 1, clients: 4, goroutines: 8, hold: ms, keys: keyShared, adapters: variantContended, baseline: "raw"},
	{name: "contend-32-h0-c1", desc: "contended: 32 goroutines of one client on one key, no hold", nodes: 1, clients: 1, goroutines: 32, keys: keyShared, adapters: variantContended, baseline: "raw"},
	{name: "contend-32-h0", desc: "contended: 32 goroutines over 4 clients on one key, no hold", nodes: 1, clients: 4, goroutines: 32, keys: keyShared, adapters: contended, baseline: "raw"},
	{name: "contend-32-h1ms", desc: "contended: 32 goroutines over 4 clients on one key, 1ms hold", nodes: 1, clients: 4, goroutines: 32, hold: ms, keys: keyShared, adapters: contended, baseline: "raw"},
	{name: "handoff-1x8", desc: "handoff in one process: 1 client, 8 goroutines, one key, 1ms hold; every unlock passes the lock to another goroutine", nodes: 1, clients: 1, goroutines: 8, hold: ms, keys: keyShared, handoff: true, adapters: variantHandoff, baseline: "raw"},
	{name: "handoff-4x2", desc: "handoff: 4 clients, 2 goroutines each, one key, 1ms hold; every unlock passes the lock to another goroutine, of another client or of the same", nodes: 1, clients: 4, goroutines: 8, hold: ms, keys: keyShared, handoff: true, adapters: variantHandoff, baseline: "raw"},
	{name: "handoff-8", desc: "handoff: 8 clients, 1 goroutine each, one key, 1ms hold; every unlock passes the lock to another client", nodes: 1, clients: 8, goroutines: 8, hold: ms, keys: keyShared, handoff: true, adapters: handoffAdapters, baseline: "raw"},
	{name: "quorum-3", desc: "uncontended on N=3 nodes: 1 goroutine, same key", nodes: 3, clients: 1, goroutines: 1, keys: keyShared, adapters: multi, baseline: "raw-quorum"},
	{name: "quorum-3-c4", desc: "uncontended on N=3 nodes: 4 clients, 1 goroutine each, each on its own key", nodes: 3, clients: 4, goroutines: 4, keys: keyPerGoroutine, adapters: variantQuorum, baseline: "raw-quorum"},
	{name: "quorum-5", desc: "uncontended on N=5 nodes: 1 goroutine, same key", nodes: 5, clients: 1, goroutines: 1, keys: keyShared, adapters: multi, baseline: "raw-quorum"},
	{name: "quorum-5-c4", desc: "uncontended on N=5 nodes: 4 clients, 1 goroutine each, each on its own key", nodes: 5, clients: 4, goroutines: 4, keys: keyPerGoroutine, adapters: variantQuorum, baseline: "raw-quorum"},
	{name: "rw-uncontended", desc: "reader-writer, uncontended: 1 goroutine takes and releases a read lock on one key (the Mutex and raw lock and unlock)", nodes: 1, clients: 1, goroutines: 1, keys: keyShared, load: load{read: true}, adapters: rwAdapters, baseline: "raw"},
	{name: "rw-readers-16", desc: "reader-writer, readers only: 16 goroutines over 4 clients read-lock one key, 1ms hold (the Mutex and raw lock it exclusively)", nodes: 1, clients: 4, goroutines: 16, hold: ms, keys: keyShared, load: load{read: true}, adapters: rwAdapters, baseline: "raw"},
	{name: "rw-mix-10", desc: "reader-writer, mixed: 16 goroutines over 4 clients on one key, 1 acquisition in 10 a write, the rest reads, 1ms hold (the Mutex and raw lock exclusively)", nodes: 1, clients: 4, goroutines: 16, hold: ms, keys: keyShared, load: load{read: true, writeEvery: 10}, adapters: rwAdapters, baseline: "raw"},
	{name: "sem-uncontended-8", desc: "semaphore, uncontended: 1 goroutine acquires and releases 1 permit of a semaphore of capacity 8 (the Mutex and raw lock and unlock)", nodes: 1, clients: 1, goroutines: 1, keys: keyShared, load: load{capacity: 8}, adapters: semAdapters, baseline: "raw"},
	{name: "sem-uncontended-256", desc: "semaphore, uncontended: 1 goroutine acquires and releases 1 permit of a semaphore of capacity 256 (the Mutex and raw lock and unlock)", nodes: 1, clients: 1, goroutines: 1, keys: keyShared, load: load{capacity: 256}, adapters: semAdapters, baseline: "raw"},
	{name: "sem-contend-4", desc: "semaphore, contended: 32 goroutines over 4 clients take 1 permit each of a semaphore of capacity 4, 1ms hold", nodes: 1, clients: 4, goroutines: 32, hold: ms, keys: keyShared, load: load{capacity: 4}, adapters: semContAdapters, baseline: "raw-sem"},
}

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func scenarioNames() string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

// shape describes the scenario's set-up in one line for the report.
func (s scenario) shape() string {
	keys := map[keyMode]string{keyShared: "one key", keyPerGoroutine: "a key per goroutine", keyPerOp: "a new key per lock"}[s.keys]
	asks := "exclusive"
	switch l := s.load; {
	case l.capacity > 0:
		asks = fmt.Sprintf("1 permit of capacity %d", l.capacity)
		if l.weights != nil {
			asks = fmt.Sprintf("%v permits (by goroutine) of capacity %d", l.weights, l.capacity)
		}
	case l.mixed():
		asks = fmt.Sprintf("read, 1 in %d write", l.writeEvery)
	case l.read:
		asks = "read"
	}
	return fmt.Sprintf("N=%d node(s), %d client(s), %d goroutine(s), %s, hold %v, asks %s; baseline %s",
		s.nodes, s.clients, s.goroutines, keys, s.hold, asks, s.baseline)
}
