// Package rwkind is the reader-writer kind of claim (package rwmutex), apart from the package so
// that the quorum's lookup and break calls (lease.Quorum.Inspect, Break) know it too.
package rwkind

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// The two kinds of claim of an RWMutex: readers and the writer share a family, so they use the
// same keys on the servers and the same local gate (where readers are admitted together, and a
// waiting writer holds up the readers behind it).
//
// Per node, beside the engine's queue: the writer key (the writer's token, or "r:" and the token of
// the writer it is reserved for), the readers (a sorted set of tokens scored by when each expires,
// by the server's clock), and the waiting writers (a sorted set by arrival: the writer-intent
// marker). See lua/rw.lua.
var (
	Readers engine.Kind = kind{shared: true}
	Writers engine.Kind = kind{}
)

type kind struct{ shared bool }

var suffixes = []string{":w", ":r", ":iw", ":fence"}

// The positions of the writer key and the writers' fencing counter among the kind's own keys
// (see suffixes and engine.Claim.Own).
const (
	ownWriter = 0
	ownFence  = 3
)

func (kind) Family() string { return ":rw" }
func (kind) Keys() []string { return suffixes }

func (k kind) Admission() engine.Admission {
	if k.shared {
		return engine.AdmitShared
	}
	return engine.AdmitOne
}

var argYes, argNo any = "1", "0"

func (k kind) Acquire(a *engine.Attempt) engine.Call {
	join, fenced := argNo, argNo
	if a.Queue && !a.Fast {
		join = argYes
	}
	if a.Fencing {
		fenced = argYes
	}
	if k.shared {
		queued := argYes // a reader's first attempt cannot be queued yet: its script skips the dequeue
		if a.Fast {
			queued = argNo
		}
		return engine.Call{Script: racquireScript, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(), Args: append(a.ArgBuf(), a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, fenced, queued)}
	}
	return engine.Call{Script: wacquireScript, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(), Args: append(a.ArgBuf(), a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, fenced)}
}

// Fence is the second round of a fenced write lock (readers are not fenced: they do not write).
func (kind) Fence(c *engine.Claim, fences []uint64) engine.Call {
	return engine.FenceCall(c.Own()[ownWriter], c.Own()[ownFence], c, fences[0])
}

func (kind) Renew(c *engine.Claim, ttl time.Duration) engine.Call {
	return engine.Call{Script: renewScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg(), ttl.Milliseconds()}}
}

func (kind) Release(c *engine.Claim) engine.Call {
	return engine.Call{Script: releaseScript, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

var demandRead, demandWrite any = "r", "w"

func (k kind) Requeue(a *engine.Attempt) engine.Call {
	demand := demandWrite
	if k.shared {
		demand = demandRead
	}
	return engine.Call{Script: releaseScript, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(),
		Args: []any{a.TokenArg(), a.ArrivalArg, a.TTLArg(), demand}}
}

func (kind) Inspect(c *engine.Claim) engine.Call {
	return engine.Call{Script: inspectScript, Keys: c.CallKeys()}
}

func (kind) Leave(c *engine.Claim) engine.Call {
	return engine.Call{Script: leaveScript, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

func (kind) Read(op engine.Op, cmd *redis.Cmd, _ *engine.Claim) (engine.Reply, error) {
	return engine.ReadOne(op, cmd)
}
