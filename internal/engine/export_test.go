package engine

// TestScript is a script's full source (with the prelude it needs), its hash, and the text of its
// own file, for the test that loads each into a real server.
type TestScript struct{ Src, Hash, File string }

// ScriptsForTest returns every script of the package by file name.
func ScriptsForTest() map[string]TestScript {
	return map[string]TestScript{
		"acquire.lua":   {acquireScript.src, acquireScript.Hash(), acquireLua},
		"renew.lua":     {renewScript.src, renewScript.Hash(), renewLua},
		"release.lua":   {releaseScript.src, releaseScript.Hash(), releaseLua},
		"leave.lua":     {leaveScript.src, leaveScript.Hash(), leaveLua},
		"fence.lua":     {fenceScript.src, fenceScript.Hash(), fenceLua},
		"fastfence.lua": {fastFenceScript.src, fastFenceScript.Hash(), fastFenceLua},
		"queue.lua":     {queueLua, "", queueLua},
		"exclusive.lua": {exclusiveLua, "", exclusiveLua},
	}
}

// SetWokenForTest sets a function called when a wake-up reaches a waiter of q, before the waiter
// acts on it: it may pause the waiter, and false makes the waiter ignore the wake-up, as if lost.
func SetWokenForTest(q *Quorum, f func() bool) { q.woken = f }

// ProcChannelForTest is what follows a name's wake-up channel for this process's waiters.
var ProcChannelForTest = procChannel

// GatesForTest returns how many local gates q keeps.
func GatesForTest(q *Quorum) int {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	return len(q.gates)
}

// KeysForTest returns the keys of name for kind k under prefix.
func KeysForTest(prefix string, k Kind, name string) []string { return keysFor(prefix, k, name) }

// OwedForTest returns how many cleanups each node of q is owed.
func OwedForTest(q *Quorum) []int {
	out := make([]int, len(q.nodes))
	for i, n := range q.nodes {
		out[i] = n.owes()
	}
	return out
}
