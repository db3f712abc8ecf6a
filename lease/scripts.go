package lease

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The server-side code of the package, one script per file under lua/. Each script checks the
// token before it changes anything. All keys of one name share its hash tag, so every script also
// runs on Redis Cluster.
var (
	//go:embed lua/acquire.lua
	acquireSrc    string
	acquireScript = redis.NewScript(acquireSrc)

	//go:embed lua/renew.lua
	renewSrc    string
	renewScript = redis.NewScript(renewSrc)

	//go:embed lua/release.lua
	releaseSrc    string
	releaseScript = redis.NewScript(releaseSrc)
)

// sources lists every script's source, for loading them into each node at start-up.
var sources = []string{acquireSrc, renewSrc, releaseSrc}
