package rwkind

import (
	_ "embed"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/mutation"
)

// The server-side code of the package, one script per file under lua/. rw.lua holds the state
// helpers and the handoff every script shares; engine.NewScript prepends the engine's queue helpers
// to each. Every script checks the token before it changes anything, and all keys of a name share
// its hash tag.
var (
	//go:embed lua/rw.lua
	rwLua string
	//go:embed lua/racquire.lua
	racquireLua string
	//go:embed lua/racquire_fast.lua
	racquireFastLua string
	//go:embed lua/wacquire.lua
	wacquireLua string
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

	racquireScript = engine.NewFastScript(readerExpiry(racquireFastLua), rwLua+readerExpiry(racquireLua))
	wacquireScript = engine.NewScript(rwLua + wacquireLua)
	renewScript    = engine.NewScript(rwLua + mutation.Lua(mutation.ReaderExpiry, renewLua,
		"now() + ttl, ARGV[1])", "now() + ttl - math.floor(ttl / 100), ARGV[1])"))
	releaseScript = engine.NewFastScript(releaseFastLua, rwLua+releaseLua)
	leaveScript   = engine.NewScript(rwLua + leaveLua)
	inspectScript = engine.NewInspectScript(inspectLua)
)

// readerExpiry plants mutation.ReaderExpiry in a read acquire's source, fast path or general.
func readerExpiry(src string) string {
	return mutation.Lua(mutation.ReaderExpiry, src,
		"redis.call('ZADD', KEYS[5], now() + ttl, ARGV[1])", "redis.call('ZADD', KEYS[5], now() + ttl - math.floor(ttl / 100), ARGV[1])")
}
