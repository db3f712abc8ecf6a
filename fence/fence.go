package fence

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/check.lua
	checkLua string
	//go:embed lua/set.lua
	setLua string

	setScript = NewScript(setLua)
)

// ErrStale is returned for a write whose fencing token is lower than the highest that has written
// the resource: a later holder of the lock has written since, so this writer's lock is gone.
// Nothing was written.
var ErrStale = errors.New("fence: stale fencing token")

// ErrInvalidArgument reports bad input; the error names the argument.
var ErrInvalidArgument = errors.New("fence: invalid argument")

// Script is a script of yours that runs behind the fence: the check and your code are one script,
// so the check and the write are atomic. Make it with [NewScript].
type Script struct{ s *redis.Script }

// NewScript returns src behind the fence check. In src, KEYS[1] is the fence key and ARGV[1] the
// writer's fencing token (the check has run by then, and recorded the token); the script's own
// keys and arguments follow: KEYS[2], ..., ARGV[2], .... On Redis Cluster every key, the fence key
// included, must share a hash tag, such as "{order:42}:fence" and "{order:42}:state".
func NewScript(src string) *Script { return &Script{redis.NewScript(checkLua + src)} }

// Run runs the script on c for a writer holding fencing token token: it returns [ErrStale], having
// written nothing, when a higher token has written behind fenceKey; otherwise what the script
// returned.
func (s *Script) Run(ctx context.Context, c redis.Scripter, fenceKey string, token uint64, keys []string, args ...any) (any, error) {
	if s == nil || s.s == nil {
		return nil, fmt.Errorf("%w script: nil", ErrInvalidArgument)
	}
	if ctx == nil {
		return nil, fmt.Errorf("%w ctx: nil", ErrInvalidArgument)
	}
	if c == nil {
		return nil, fmt.Errorf("%w client: nil", ErrInvalidArgument)
	}
	if fenceKey == "" {
		return nil, fmt.Errorf("%w fence key: empty", ErrInvalidArgument)
	}
	if token == 0 {
		return nil, fmt.Errorf("%w token: 0 is no fencing token (they start at 1)", ErrInvalidArgument)
	}
	v, err := s.s.Run(ctx, c, append([]string{fenceKey}, keys...), append([]any{token}, args...)...).Result()
	if err != nil && redis.HasErrorPrefix(err, "STALE") {
		return nil, fmt.Errorf("%w: %s", ErrStale, err.Error())
	}
	return v, err
}

// Set writes value at key for a writer holding fencing token token, with a TTL (0 for none),
// unless a higher token has written behind fenceKey: then it returns [ErrStale] and writes
// nothing. The check and the write are one script. On Redis Cluster key and fenceKey must share a
// hash tag.
func Set(ctx context.Context, c redis.Scripter, fenceKey string, token uint64, key string, value any, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("%w ttl: %v is negative", ErrInvalidArgument, ttl)
	}
	_, err := setScript.Run(ctx, c, fenceKey, token, []string{key}, value, ttl.Milliseconds())
	return err
}
