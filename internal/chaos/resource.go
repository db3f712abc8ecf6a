package chaos

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The resource the critical sections protect: counters on a Redis server of its own, which is no
// member of any quorum and never has faults injected. A section reads a counter and writes it back
// plus one, so two sections that overlap lose an update.
//
// Unfenced, that is GET then SET. Fenced, the read and the write both go through scripts that
// refuse a token below the highest the counter has seen (lua/fenced_read.lua and
// lua/fenced_write.lua): a stale holder that wakes up after a newer one read cannot write. The
// tokens come from the lock (DESIGN §6): a mutex's or an rwmutex writer's, or a semaphore slot's.
var (
	//go:embed lua/fenced_read.lua
	fencedReadLua string
	//go:embed lua/fenced_write.lua
	fencedWriteLua string

	fencedRead  = redis.NewScript(fencedReadLua)
	fencedWrite = redis.NewScript(fencedWriteLua)
)

// ErrFenced is returned by a fenced read or write that the resource refused: a holder with a newer
// token had been there.
var ErrFenced = errors.New("chaos: refused by the fence: a newer token was seen")

// Resource is a handle on the counters.
type Resource struct{ c redis.UniversalClient }

// NewResource wraps a client of the resource server.
func NewResource(c redis.UniversalClient) *Resource { return &Resource{c: c} }

// fenceKey is where the highest token seen by a fenced counter is kept. Its prefix differs from the
// counters' ("fenced:", "unfenced:"), which Finals lists.
func fenceKey(key string) string { return "fence-max:" + key }

// Read returns the counter key (see [ResourceKey]). With a token, the read is fenced: it raises
// the counter's fence to the token, or returns ErrFenced when a higher one was seen; without one
// (0) it is a plain GET.
func (r *Resource) Read(ctx context.Context, key string, token uint64) (int64, error) {
	if token == 0 {
		v, err := r.c.Get(ctx, key).Int64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return v, err
	}
	res, err := fencedRead.Run(ctx, r.c, []string{key, fenceKey(key)}, token).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("chaos: fenced read replied %v", res)
	}
	if res[0] == 0 {
		return 0, fmt.Errorf("%w (token %d, highest %d)", ErrFenced, token, res[1])
	}
	return res[1], nil
}

// Write sets the counter key to v; with a token the write is fenced, and returns ErrFenced when
// refused.
func (r *Resource) Write(ctx context.Context, key string, token uint64, v int64) error {
	if token == 0 {
		return r.c.Set(ctx, key, v, 0).Err()
	}
	ok, err := fencedWrite.Run(ctx, r.c, []string{key, fenceKey(key)}, token, v).Int64()
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("%w (token %d)", ErrFenced, token)
	}
	return nil
}

// Finals returns every counter's value, keyed as [ResourceKey] names them.
func (r *Resource) Finals(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, pattern := range []string{"unfenced:*", "fenced:*"} {
		iter := r.c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			s, err := r.c.Get(ctx, key).Result()
			if err != nil {
				return nil, fmt.Errorf("get %s: %w", key, err)
			}
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s holds %q: %w", key, s, err)
			}
			out[key] = v
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
