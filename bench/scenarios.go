package main

import (
	"fmt"
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

// scenario is one workload. Goroutine g uses client g % clients; clients are separate connection
// pools and library instances, as separate processes would be.
type scenario struct {
	name       string
	desc       string
	nodes      int
	clients    int
	goroutines int
	hold       time.Duration
	keys       keyMode
	// handoff makes every unlock pass the lock to a waiter of another client: after Unlock a
	// goroutine waits until someone else has acquired before it calls Lock again.
	handoff  bool
	adapters []string // the adapters that run it by default, baseline included
	baseline string
}

var single = []string{"quorumsync", "redsync", "redsync-1ms", "redislock", "raw"}
var multi = []string{"quorumsync", "redsync", "raw-quorum"}

// handoffAdapters adds quorumsync's own scripts driven by a 1 ms TryLock poll, which isolates
// what the wake-ups and the queue buy over polling.
var handoffAdapters = []string{"quorumsync", "quorumsync-poll1ms", "redsync", "redsync-1ms", "redislock", "raw"}

var scenarios = []scenario{
	{name: "same-key", desc: "uncontended: 1 goroutine locks and unlocks the same key", nodes: 1, clients: 1, goroutines: 1, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "distinct-keys", desc: "uncontended: 1 goroutine, a new key (new Locker) for every lock", nodes: 1, clients: 1, goroutines: 1, keys: keyPerOp, adapters: single, baseline: "raw"},
	{name: "parallel-16", desc: "uncontended: 16 goroutines of one client, each on its own key", nodes: 1, clients: 1, goroutines: 16, keys: keyPerGoroutine, adapters: single, baseline: "raw"},
	{name: "contend-8-h0", desc: "contended: 8 goroutines over 4 clients on one key, no hold", nodes: 1, clients: 4, goroutines: 8, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "contend-8-h1ms", desc: "contended: 8 goroutines over 4 clients on one key, 1ms hold", nodes: 1, clients: 4, goroutines: 8, hold: time.Millisecond, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "contend-32-h0", desc: "contended: 32 goroutines over 4 clients on one key, no hold", nodes: 1, clients: 4, goroutines: 32, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "contend-32-h1ms", desc: "contended: 32 goroutines over 4 clients on one key, 1ms hold", nodes: 1, clients: 4, goroutines: 32, hold: time.Millisecond, keys: keyShared, adapters: single, baseline: "raw"},
	{name: "handoff-8", desc: "handoff: 8 clients, 1 goroutine each, one key, 1ms hold; every unlock passes the lock to another client", nodes: 1, clients: 8, goroutines: 8, hold: time.Millisecond, keys: keyShared, handoff: true, adapters: handoffAdapters, baseline: "raw"},
	{name: "quorum-3", desc: "uncontended on N=3 nodes: 1 goroutine, same key", nodes: 3, clients: 1, goroutines: 1, keys: keyShared, adapters: multi, baseline: "raw-quorum"},
	{name: "quorum-5", desc: "uncontended on N=5 nodes: 1 goroutine, same key", nodes: 5, clients: 1, goroutines: 1, keys: keyShared, adapters: multi, baseline: "raw-quorum"},
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
	return fmt.Sprintf("N=%d node(s), %d client(s), %d goroutine(s), %s, hold %v; baseline %s",
		s.nodes, s.clients, s.goroutines, keys, s.hold, s.baseline)
}
