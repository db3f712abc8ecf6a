package lease

// TestScript is a script's full source (with the shared prelude), its hash, and the text of its
// own file, for the test that loads each into a real server.
type TestScript struct{ Src, Hash, File string }

// ScriptsForTest returns every script of the package by file name.
func ScriptsForTest() map[string]TestScript {
	return map[string]TestScript{
		"acquire.lua": {queueLua + acquireLua, acquireScript.Hash(), acquireLua},
		"renew.lua":   {renewLua, renewScript.Hash(), renewLua},
		"release.lua": {queueLua + releaseLua, releaseScript.Hash(), releaseLua},
		"leave.lua":   {queueLua + leaveLua, leaveScript.Hash(), leaveLua},
		"queue.lua":   {queueLua, "", queueLua},
	}
}

// GatesForTest returns how many local gates q keeps.
func GatesForTest(q *Quorum) int {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	return len(q.gates)
}

// KeysForTest exposes keysFor.
var KeysForTest = keysFor
