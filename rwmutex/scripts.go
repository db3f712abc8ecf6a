package rwmutex

import (
	_ "embed"

	"github.com/quorumsync/quorumsync/lease"
)

// The server-side code of the package, one script per file under lua/. rw.lua holds the state
// helpers and the handoff every script shares; lease.NewScript prepends the engine's queue helpers
// to each. Every script checks the token before it changes anything, and all keys of a name share
// its hash tag.
var (
	//go:embed lua/rw.lua
	rwLua string
	//go:embed lua/racquire.lua
	racquireLua string
	//go:embed lua/wacquire.lua
	wacquireLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/leave.lua
	leaveLua string

	racquireScript = lease.NewScript(rwLua + racquireLua)
	wacquireScript = lease.NewScript(rwLua + wacquireLua)
	renewScript    = lease.NewScript(rwLua + renewLua)
	releaseScript  = lease.NewScript(rwLua + releaseLua)
	leaveScript    = lease.NewScript(rwLua + leaveLua)
)
