package lease

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The server-side code of the package, one script per file under lua/. Each script checks the
// token before it changes anything. All keys of one name share its hash tag, so every script also
// runs on Redis Cluster. queue.lua holds the waiter-queue helpers that three scripts share; it is
// prepended to each of them.
var (
	//go:embed lua/queue.lua
	queueLua string
	//go:embed lua/acquire.lua
	acquireLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/leave.lua
	leaveLua string

	acquireScript = redis.NewScript(queueLua + acquireLua)
	renewScript   = redis.NewScript(renewLua)
	releaseScript = redis.NewScript(queueLua + releaseLua)
	leaveScript   = redis.NewScript(queueLua + leaveLua)
)

// sources lists every script's source, for loading them into each node at start-up.
var sources = []string{queueLua + acquireLua, renewLua, queueLua + releaseLua, queueLua + leaveLua}

// The keys of a name, in the order the scripts take them (acquire takes the first three, renew
// the first, release and leave all four).
const (
	keyLock = iota
	keyQueue
	keyLiveness
	keyChannel
)

// keysFor returns the keys of a name. They share one backing string: one allocation for the four.
func keysFor(prefix, name string) []string {
	lock := len(prefix) + len(name) + 2
	all := prefix + "{" + name + "}:q" + prefix + "{" + name + "}:qlive" + prefix + "{" + name + "}:wake"
	q := all[:lock+2]
	live := all[lock+2 : 2*lock+8]
	wake := all[2*lock+8:]
	return []string{q[:lock], q, live, wake}
}
