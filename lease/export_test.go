package lease

// TestScript is a script's source and hash, for the test that loads each into a real server.
type TestScript struct{ Src, Hash string }

// ScriptsForTest returns every script of the package by file name.
func ScriptsForTest() map[string]TestScript {
	return map[string]TestScript{
		"acquire.lua": {acquireSrc, acquireScript.Hash()},
		"renew.lua":   {renewSrc, renewScript.Hash()},
		"release.lua": {releaseSrc, releaseScript.Hash()},
	}
}

// GatesForTest returns how many local gates q keeps.
func GatesForTest(q *Quorum) int {
	q.gmu.Lock()
	defer q.gmu.Unlock()
	return len(q.gates)
}
