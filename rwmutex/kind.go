package rwmutex

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
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
	readers lease.Kind = kind{shared: true}
	writers lease.Kind = kind{}
)

type kind struct{ shared bool }

var suffixes = []string{":w", ":r", ":iw", ":fence"}

// The indices of the writer key and the writers' fencing counter in a claim's Keys.
const (
	keyWriter = 3
	keyFence  = 6
)

func (kind) Family() string { return ":rw" }
func (kind) Keys() []string { return suffixes }

func (k kind) Admission() lease.Admission {
	if k.shared {
		return lease.AdmitShared
	}
	return lease.AdmitOne
}

var argYes, argNo any = "1", "0"

func (k kind) Acquire(a *lease.Attempt) lease.Call {
	join, fenced := argNo, argNo
	if a.Queue && !a.Fast {
		join = argYes
	}
	if a.Fencing {
		fenced = argYes
	}
	s := wacquireScript
	if k.shared {
		s = racquireScript
	}
	return lease.Call{Script: s, Keys: a.Keys, KeyArgs: a.KeyArgs(), Args: append(a.ArgBuf(), a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, fenced)}
}

// Fence is the second round of a fenced write lock (readers are not fenced: they do not write).
func (kind) Fence(c *lease.Claim, fences []uint64) lease.Call {
	return lease.FenceCall(c.Keys[keyWriter], c.Keys[keyFence], c, fences[0])
}

func (kind) Renew(c *lease.Claim, ttl time.Duration) lease.Call {
	return lease.Call{Script: renewScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg(), ttl.Milliseconds()}}
}

func (kind) Release(c *lease.Claim) lease.Call {
	return lease.Call{Script: releaseScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg()}}
}

func (kind) Leave(c *lease.Claim) lease.Call {
	return lease.Call{Script: leaveScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg()}}
}

func (kind) Read(op lease.Op, cmd *redis.Cmd, _ *lease.Claim) (lease.Reply, error) {
	if v, ok := cmd.Val().([]any); ok && op == lease.OpAcquire { // a fenced grant: {0, counter}
		if f, ok := v[1].(int64); len(v) == 2 && ok && f > 0 {
			return lease.Reply{OK: true, Fences: []uint64{uint64(f)}}, nil
		}
	}
	n, err := cmd.Int64()
	if err != nil {
		return lease.Reply{}, fmt.Errorf("unexpected reply to %v: %w", op, err)
	}
	switch {
	case op != lease.OpAcquire:
		return lease.Reply{OK: n == 1}, nil
	case n == 0:
		return lease.Reply{OK: true}, nil
	case n > 0:
		return lease.Reply{Retry: time.Duration(n) * time.Millisecond}, nil
	}
	return lease.Reply{}, nil // the writer key has no TTL: back off
}
