package lease

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Exclusive is the kind of a plain lease, and of package mutex: one holder of a name at a time.
//
// Per node a claim is one key, prefix + "{" + name + "}", holding the holder's token (with its
// identity: see [ParseHolder]) and the TTL, beside the engine's queue. Its fast acquire is a plain
// SET NX PX; when that fails the waiter comes back through a script that queues it. A release that
// finds waiters reserves the key for the first live one ("r:" and its token, expiring with its
// liveness) and wakes it alone; newcomers' SET NX fails meanwhile, so processes are served in the
// order they queued.
var Exclusive Kind = exclusive{}

type exclusive struct{}

// keyLock is the index of the lock key in an exclusive claim's Keys.
const keyLock = engineKeys

var exclusiveSuffixes = []string{""}

func (exclusive) Family() string       { return "" }
func (exclusive) Keys() []string       { return exclusiveSuffixes }
func (exclusive) Admission() Admission { return AdmitOne }

// Script arguments that never change, boxed once.
var (
	argSet, argPX, argNX any = "set", "px", "nx"
	argJoin, argTry      any = "1", "0"
)

func (exclusive) Acquire(a *Attempt) Call {
	if a.Fast {
		return Call{Args: []any{argSet, a.Keys[keyLock], a.TokenArg(), argPX, a.TTLArg(), argNX}}
	}
	join := argTry
	if a.Queue {
		join = argJoin
	}
	return Call{Script: acquireScript.Script, Keys: a.Keys, Args: []any{a.TokenArg(), a.TTLArg(), join, a.ArrivalArg}}
}

func (exclusive) Renew(c *Claim, ttl time.Duration) Call {
	var ms any = c.ttlArg
	if ttl != c.TTL {
		ms = ttl.Milliseconds()
	}
	return Call{Script: renewScript.Script, Keys: c.Keys[keyLock : keyLock+1], Args: []any{c.TokenArg(), ms}}
}

func (exclusive) Release(c *Claim) Call {
	return Call{Script: releaseScript.Script, Keys: c.Keys, Args: []any{c.TokenArg()}}
}

func (exclusive) Leave(c *Claim) Call {
	return Call{Script: leaveScript.Script, Keys: c.Keys, Args: []any{c.TokenArg()}}
}

func (exclusive) Read(op Op, cmd *redis.Cmd, _ *Claim) (Reply, error) {
	switch v := cmd.Val().(type) {
	case nil: // SET NX that did not set: redis.Nil
		return Reply{}, nil
	case string: // SET NX: "OK"
		return Reply{OK: true}, nil
	case int64:
		if op != OpAcquire {
			return Reply{OK: v == 1}, nil
		}
		switch {
		case v == 0:
			return Reply{OK: true}, nil
		case v > 0:
			return Reply{Retry: time.Duration(v) * time.Millisecond}, nil
		default: // the key has no TTL
			return Reply{}, nil
		}
	}
	return Reply{}, fmt.Errorf("unexpected reply %v to %v", cmd.Val(), op)
}
