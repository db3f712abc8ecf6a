package engine

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The server-side code of the package, one script per file under lua/. Each script checks the
// token before it changes anything, and all keys of one name share its hash tag, so every script
// also runs on Redis Cluster.
//
// queue.lua holds the engine's waiter-queue helpers, after clock.lua's now(); [NewScript] prepends
// them to the scripts of every kind, this package's and others'. exclusive.lua holds the exclusive kind's grant and
// handoff, which its acquire, release and leave share.
var (
	//go:embed lua/clock.lua
	clockLua string
	//go:embed lua/queue.lua
	queueHelpersLua string
	// queueLua is what a script with the queue helpers starts with.
	queueLua = clockLua + queueHelpersLua
	//go:embed lua/exclusive.lua
	exclusiveLua string
	//go:embed lua/acquire.lua
	acquireLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/release_fast.lua
	releaseFastLua string
	//go:embed lua/leave.lua
	leaveLua string
	//go:embed lua/fence.lua
	fenceLua string
	//go:embed lua/fastfence.lua
	fastFenceLua string
	//go:embed lua/probe.lua
	probeLua string
	//go:embed lua/inspect.lua
	inspectLua string
	//go:embed lua/inspect_exclusive.lua
	inspectExclusiveLua string
	//go:embed lua/broken.lua
	brokenLua string
)

// Script is a script with its full source, for loading it ahead of use.
type script struct {
	*redis.Script
	src string
}

func newScript(parts ...string) script {
	var src string
	for _, p := range parts {
		src += p
	}
	return script{redis.NewScript(src), src}
}

// NewScript returns a script for a [Kind]: src with the engine's clock and queue helpers
// (lua/clock.lua: now; lua/queue.lua: waiter, head, join, dequeue, handover) prepended, so that it can queue waiters and hand
// what it frees over to them in the engine's order. The script must take the engine's three keys
// first (see [Kind]).
func NewScript(src string) *redis.Script { return redis.NewScript(queueLua + src) }

// NewFastScript is [NewScript] with fast, a fast path run before the queue helpers are defined: a
// run that returns from it defines none of them (nor anything of src), which costs a few
// microseconds of the server's time on every run. fast may call now() (lua/clock.lua) and Redis;
// when it does not return, src runs as it would under NewScript, and may read fast's top-level
// locals.
func NewFastScript(fast, src string) *redis.Script { return redis.NewScript(fastScript(fast, src)) }

func fastScript(fast, src string) string { return clockLua + fast + queueHelpersLua + src }

// The exclusive kind's scripts.
var (
	acquireScript   = newScript(queueLua, exclusiveLua, acquireLua)
	renewScript     = newScript(renewLua)
	releaseScript   = newScript(fastScript(releaseFastLua, exclusiveLua+releaseLua))
	leaveScript     = newScript(queueLua, exclusiveLua, leaveLua)
	fenceScript     = newScript(fenceLua)
	fastFenceScript = newScript(fastFenceLua)
	inspectScript   = newScript(queueLua, inspectLua, inspectExclusiveLua)
	brokenScript    = newScript(brokenLua)
	// probeScript tries every command the scripts run, on keys of the prefix no name uses (see
	// Quorum.probeKeys): NewQuorum runs it to check the ACL, and an acquire that a node refused
	// runs it to say which command the ACL lacks.
	probeScript = newScript(probeLua)

	// exclusiveScripts are loaded into every node at start-up; other kinds' scripts load on first
	// use.
	exclusiveScripts = []script{acquireScript, renewScript, releaseScript, leaveScript, fenceScript, fastFenceScript}
)
