package engine

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Exclusive is the kind of a plain lease, and of package mutex: one holder of a name at a time.
//
// Per node a claim is one key, prefix + "{" + name + "}", holding the holder's token (with its
// identity: see [ParseHolder]) and the TTL, beside the engine's queue. Its fast acquire is a plain
// SET NX PX; when that fails the waiter comes back through a script that queues it and marks the
// holder's value ("q:" before it). The release of an unmarked value is a plain delete; a marked
// one is handed to the first live waiter — made its holder outright when the waiter asked for a
// direct grant ([Attempt.Seq]), else reserved for it ("r:" and its token, expiring with its
// liveness) — and that waiter alone is woken; newcomers' SET NX fails meanwhile, so processes are
// served in the order they queued.
var Exclusive Kind = exclusive{}

type exclusive struct{}

// keyLock and keyFence are the indices of the lock key and of the fencing counter in an exclusive
// claim's Keys.
const (
	keyLock = engineKeys + iota
	keyFence
)

var exclusiveSuffixes = []string{"", ":fence"}

// grantsDirectly: its release can make a waiter the holder (see directGranter, lua/exclusive.lua).
func (exclusive) grantsDirectly() {}

func (exclusive) Family() string       { return "" }
func (exclusive) Keys() []string       { return exclusiveSuffixes }
func (exclusive) Admission() Admission { return AdmitOne }

// Script arguments that never change, boxed once.
var (
	argSet, argPX, argNX any = "set", "px", "nx"
	argYes, argNo        any = "1", "0"
	argNone              any = ""
)

func (exclusive) Acquire(a *Attempt) Call {
	fenced := argNo
	switch {
	case a.Fast && a.Fencing:
		// SET NX and the counter's increment, in a script as small as it gets.
		return Call{Script: fastFenceScript.Script, Keys: a.Keys[keyLock : keyFence+1], KeyArgs: sub(a.KeyArgs(), keyLock, keyFence+1),
			Args: append(a.ArgBuf(), a.TokenArg(), a.TTLArg())}
	case a.Fast:
		var key any // boxed per name when prepared (a conversion here would allocate)
		if ka := a.KeyArgs(); ka != nil {
			key = ka[keyLock]
		} else {
			key = a.Keys[keyLock]
		}
		return Call{Args: append(a.ArgBuf(), argSet, key, a.TokenArg(), argPX, a.TTLArg(), argNX)}
	case a.Fencing:
		fenced = argYes
	}
	join := argNo
	if a.Queue && !a.Fast {
		join = argYes
	}
	seq := argNone
	if a.Seq != nil && a.Queue {
		seq = a.Seq
	}
	return Call{Script: acquireScript.Script, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(), Args: append(a.ArgBuf(), a.TokenArg(), a.TTLArg(), join, a.ArrivalArg, fenced, seq)}
}

// yes is the reply of a node that said yes (ok) or no to a call about a claim of one unit.
func yes(ok bool) Reply {
	if ok {
		return Reply{Units: One}
	}
	return Reply{}
}

// Yes is the reply of a node that said yes (ok) or no to a call about a claim of one unit: Units
// is [One] or nil.
func Yes(ok bool) Reply { return yes(ok) }

// sub returns args[i:j], capped (an append copies), or nil for nil args.
func sub(args []any, i, j int) []any {
	if args == nil {
		return nil
	}
	return args[i:j:j]
}

func (exclusive) Fence(c *Claim, fences []uint64) Call {
	return FenceCall(c.Keys[keyLock], c.Keys[keyFence], c, fences[0])
}

// FenceCall returns the second-round call of a fenced claim whose grant is a key holding its token
// (an exclusive lease, an rwmutex writer): it raises the fencing counter at counter to fence if,
// and only if, lock still holds the claim's token; the reply is 1 then, else 0 (see [Fencer]).
func FenceCall(lock, counter string, c *Claim, fence uint64) Call {
	return Call{Script: fenceScript.Script, Keys: []string{lock, counter}, Args: []any{c.TokenArg(), fence}}
}

func (exclusive) Renew(c *Claim, ttl time.Duration) Call {
	var ms any = c.ttlArg
	if ttl != c.TTL {
		ms = ttl.Milliseconds()
	}
	// The lock key to the broken marker: the end of Keys, three keys rather than six.
	return Call{Script: renewScript.Script, Keys: c.Keys[keyLock:], KeyArgs: sub(c.KeyArgs(), keyLock, len(c.Keys)), Args: []any{c.TokenArg(), ms}}
}

func (exclusive) Release(c *Claim) Call {
	return Call{Script: releaseScript.Script, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

func (exclusive) Requeue(a *Attempt) Call {
	return Call{Script: releaseScript.Script, Keys: a.CallKeys(), KeyArgs: a.CallKeyArgs(), Args: []any{a.TokenArg(), a.ArrivalArg, a.TTLArg()}}
}

func (exclusive) Inspect(c *Claim) Call {
	return Call{Script: inspectScript.Script, Keys: c.CallKeys()}
}

func (exclusive) Leave(c *Claim) Call {
	return Call{Script: leaveScript.Script, Keys: c.CallKeys(), KeyArgs: c.CallKeyArgs(), Args: c.TokenArgs()}
}

func (exclusive) Read(op Op, cmd *redis.Cmd, _ *Claim) (Reply, error) {
	switch cmd.Val().(type) {
	case nil: // SET NX that did not set: redis.Nil
		return Reply{}, nil
	case string: // SET NX: "OK"
		return Reply{Units: One}, nil
	}
	return ReadOne(op, cmd)
}

// ReadOne reads a node's reply to a call about a claim of one unit, in the convention of the
// scripts of every such kind (exclusive, rwmutex readers and writers): to an acquire, 0 when
// granted, {0, counter} when granted with fencing, a positive number of milliseconds to wait
// before trying again, or a negative number when the holder's key has no TTL (the caller backs
// off); to a renew, -1 when an administrator broke the claim (Quorum.Break); to any other call, 1
// for yes and 0 for no.
func ReadOne(op Op, cmd *redis.Cmd) (Reply, error) {
	switch v := cmd.Val().(type) {
	case []any:
		if f, ok := v[1].(int64); len(v) == 2 && ok && f > 0 && op == OpAcquire {
			return Reply{Units: One, Fences: []uint64{uint64(f)}}, nil
		}
	case int64:
		switch {
		case op == OpRenew && v == -1:
			return Reply{Broken: true}, nil
		case op != OpAcquire:
			return yes(v == 1), nil
		case v == 0:
			return Reply{Units: One}, nil
		case v > 0:
			return Reply{Retry: time.Duration(v) * time.Millisecond}, nil
		default: // the key has no TTL
			return Reply{}, nil
		}
	}
	return Reply{}, fmt.Errorf("unexpected reply %v to %v", cmd.Val(), op)
}
