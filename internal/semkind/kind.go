// Package semkind is the semaphore's kind of claim (package semaphore), apart from the package so
// that the quorum's lookup and break calls (lease.Quorum.Inspect, Break) know it too.
package semkind

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Slots is the semaphore's kind of claim: a permit of weight n is n of the semaphore's C slots,
// each an exclusive claim of its own on a quorum, taken all or none in one script run per node.
// Locally, goroutines are admitted by weight, up to the capacity, in arrival order.
//
// Per node, beside the engine's queue: the slots held or reserved (a sorted set scored by when each
// expires, by the server's clock), a hash of each slot's holder and each token's slots (with the
// capacity and a watermark), and the free slots below the watermark. See lua/sem.lua.
var Slots engine.Kind = kind{}

// CapacityError makes the error of an acquire whose capacity (capacity) differs from the one stored
// on a node (stored). Package semaphore sets it to make its own *CapacityError.
var CapacityError = func(name string, capacity, stored int64) error {
	return fmt.Errorf("capacity %d differs from the %d in use", capacity, stored)
}

type kind struct{}

var suffixes = []string{":h", ":k", ":f", ":fence"}

func (kind) Family() string              { return ":sem" }
func (kind) Keys() []string              { return suffixes }
func (kind) Admission() engine.Admission { return engine.AdmitWeighted }

var argYes, argNo any = "1", "0"

func (kind) Acquire(a *engine.Attempt) engine.Call {
	join, fenced := argNo, argNo
	if a.Queue && !a.Fast {
		join = argYes
	}
	if a.Fencing {
		fenced = argYes
	}
	first := argNo
	if a.Fast {
		first = argYes
	}
	return engine.Call{Script: acquireScript, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(), Args: append(a.ArgBuf(),
		a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, a.Capacity, a.Weight, unitList(a.Prefer), fenced, first)}
}

// Fence is the second round of a fenced acquire: each slot's counter raised to its token.
func (kind) Fence(c *engine.Claim, fences []uint64) engine.Call {
	var b strings.Builder
	for i, u := range c.Units {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(u, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(fences[i], 10))
	}
	return engine.Call{Script: fenceScript, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: []any{c.TokenArg(), b.String()}}
}

func (kind) Renew(c *engine.Claim, ttl time.Duration) engine.Call {
	return engine.Call{Script: renewScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg(), ttl.Milliseconds(), unitList(c.Units)}}
}

func (kind) Release(c *engine.Claim) engine.Call {
	return engine.Call{Script: releaseScript, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

func (kind) Requeue(a *engine.Attempt) engine.Call {
	return engine.Call{Script: releaseScript, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(),
		Args: []any{a.TokenArg(), a.ArrivalArg, a.TTLArg(), a.Weight}}
}

func (kind) Inspect(c *engine.Claim) engine.Call {
	return engine.Call{Script: inspectScript, Keys: c.CallKeys()}
}

func (kind) Leave(c *engine.Claim) engine.Call {
	return engine.Call{Script: leaveScript, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

// unitList writes slots as the scripts read them: comma-separated.
func unitList(units []int64) string {
	if len(units) == 0 {
		return ""
	}
	var b strings.Builder
	for i, u := range units {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(u, 10))
	}
	return b.String()
}

func (kind) Read(op engine.Op, cmd *redis.Cmd, c *engine.Claim) (engine.Reply, error) {
	if op == engine.OpLeave || op == engine.OpFence {
		n, err := cmd.Int64()
		return engine.Yes(n == 1), err
	}
	vals, err := cmd.Int64Slice()
	if err != nil {
		return engine.Reply{}, fmt.Errorf("unexpected reply to %v: %w", op, err)
	}
	if op == engine.OpRenew && len(vals) == 1 && vals[0] == -1 {
		return engine.Reply{Broken: true}, nil
	}
	if op != engine.OpAcquire {
		return engine.Reply{Units: vals}, nil
	}
	switch {
	case len(vals) == 0:
		return engine.Reply{}, fmt.Errorf("empty reply to %v", op)
	case vals[0] == 0 && c.Fencing:
		n := (len(vals) - 1) / 2
		fences := make([]uint64, n)
		for i, f := range vals[1+n:] {
			fences[i] = uint64(f)
		}
		return engine.Reply{Units: vals[1 : 1+n], Fences: fences}, nil
	case vals[0] == 0:
		return engine.Reply{Units: vals[1:]}, nil
	case vals[0] == -2 && len(vals) == 2:
		return engine.Reply{}, engine.Permanent(CapacityError(c.Name, c.Capacity, vals[1]))
	default:
		return engine.Reply{Retry: time.Duration(vals[0]) * time.Millisecond}, nil
	}
}
