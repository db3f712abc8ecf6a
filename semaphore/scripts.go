package semaphore

import (
	_ "embed"

	"github.com/quorumsync/quorumsync/lease"
)

// The server-side code of the package, one script per file under lua/. sem.lua holds the slot
// bookkeeping and the handoff every script shares; lease.NewScript prepends the engine's queue
// helpers to each. Every script checks the token before it changes a slot, and all keys of a name
// share its hash tag.
var (
	//go:embed lua/sem.lua
	semLua string
	//go:embed lua/acquire.lua
	acquireLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/leave.lua
	leaveLua string
	//go:embed lua/fence.lua
	fenceLua string

	acquireScript = lease.NewScript(semLua + acquireLua)
	renewScript   = lease.NewScript(semLua + renewLua)
	releaseScript = lease.NewScript(semLua + releaseLua)
	leaveScript   = lease.NewScript(semLua + leaveLua)
	fenceScript   = lease.NewScript(semLua + fenceLua)
)
