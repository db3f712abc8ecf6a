package semaphore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
)

// slots is the semaphore's kind of claim: a permit of weight n is n of the semaphore's C slots,
// each an exclusive claim of its own on a quorum, taken all or none in one script run per node.
// Locally, goroutines are admitted by weight, up to the capacity, in arrival order.
//
// Per node, beside the engine's queue: the slots held or reserved (a sorted set scored by when each
// expires, by the server's clock), a hash of each slot's holder and each token's slots (with the
// capacity and a watermark), and the free slots below the watermark. See lua/sem.lua.
var slots lease.Kind = kind{}

type kind struct{}

var suffixes = []string{":h", ":k", ":f", ":fence"}

func (kind) Family() string             { return ":sem" }
func (kind) Keys() []string             { return suffixes }
func (kind) Admission() lease.Admission { return lease.AdmitWeighted }

var argYes, argNo any = "1", "0"

func (kind) Acquire(a *lease.Attempt) lease.Call {
	join, fenced := argNo, argNo
	if a.Queue && !a.Fast {
		join = argYes
	}
	if a.Fencing {
		fenced = argYes
	}
	return lease.Call{Script: acquireScript, Keys: a.Keys, KeyArgs: a.KeyArgs(), Args: append(a.ArgBuf(),
		a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, a.Capacity, a.Weight, unitList(a.Prefer), fenced)}
}

// Fence is the second round of a fenced acquire: each slot's counter raised to its token.
func (kind) Fence(c *lease.Claim, fences []uint64) lease.Call {
	var b strings.Builder
	for i, u := range c.Units {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(u, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(fences[i], 10))
	}
	return lease.Call{Script: fenceScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg(), b.String()}}
}

func (kind) Renew(c *lease.Claim, ttl time.Duration) lease.Call {
	return lease.Call{Script: renewScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg(), ttl.Milliseconds(), unitList(c.Units)}}
}

func (kind) Release(c *lease.Claim) lease.Call {
	return lease.Call{Script: releaseScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg()}}
}

func (kind) Leave(c *lease.Claim) lease.Call {
	return lease.Call{Script: leaveScript, Keys: c.Keys, KeyArgs: c.KeyArgs(), Args: []any{c.TokenArg()}}
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

func (kind) Read(op lease.Op, cmd *redis.Cmd, c *lease.Claim) (lease.Reply, error) {
	if op == lease.OpLeave || op == lease.OpFence {
		n, err := cmd.Int64()
		return lease.Reply{OK: n == 1}, err
	}
	vals, err := cmd.Int64Slice()
	if err != nil {
		return lease.Reply{}, fmt.Errorf("unexpected reply to %v: %w", op, err)
	}
	if op != lease.OpAcquire {
		return lease.Reply{Units: vals}, nil
	}
	switch {
	case len(vals) == 0:
		return lease.Reply{}, fmt.Errorf("empty reply to %v", op)
	case vals[0] == 0 && c.Fencing:
		n := (len(vals) - 1) / 2
		fences := make([]uint64, n)
		for i, f := range vals[1+n:] {
			fences[i] = uint64(f)
		}
		return lease.Reply{Units: vals[1 : 1+n], Fences: fences}, nil
	case vals[0] == 0:
		return lease.Reply{Units: vals[1:]}, nil
	case vals[0] == -2 && len(vals) == 2:
		return lease.Reply{}, lease.Permanent(&CapacityError{Name: c.Name, Capacity: c.Capacity, Stored: vals[1]})
	default:
		return lease.Reply{Retry: time.Duration(vals[0]) * time.Millisecond}, nil
	}
}
