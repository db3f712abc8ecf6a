package semkind

import (
	_ "embed"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/mutation"
)

// The server-side code of the package, one script per file under lua/. sem.lua holds the slot
// bookkeeping and the handoff every script shares; engine.NewScript prepends the engine's queue
// helpers to each. Every script checks the token before it changes a slot, and all keys of a name
// share its hash tag.
var (
	//go:embed lua/sem.lua
	semLua string
	//go:embed lua/acquire.lua
	acquireLua string
	//go:embed lua/acquire_fast.lua
	acquireFastLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/release_fast.lua
	releaseFastLua string
	//go:embed lua/leave.lua
	leaveLua string
	//go:embed lua/inspect.lua
	inspectLua string
	//go:embed lua/fence.lua
	fenceLua string

	acquireScript = engine.NewFastScript(slotFreeEarly(acquireFastLua), semLua+slotFreeEarly(acquireLua))
	renewScript   = engine.NewScript(semLua + mutation.Lua(mutation.SlotFreeEarly, renewLua,
		"KEYS[4], now() + ttl, s)", "KEYS[4], now() + ttl - math.floor(ttl / 3), s)"))
	releaseScript = engine.NewFastScript(releaseFastLua, semLua+releaseLua)
	leaveScript   = engine.NewScript(semLua + leaveLua)
	inspectScript = engine.NewInspectScript(inspectLua)
	fenceScript   = engine.NewScript(semLua + fenceLua)
)

// slotFreeEarly plants mutation.SlotFreeEarly in an acquire's source, fast path or general.
func slotFreeEarly(src string) string {
	return mutation.Lua(mutation.SlotFreeEarly, src,
		"local until_ms = now() + ttl", "local until_ms = now() + ttl - math.floor(ttl / 3)")
}
