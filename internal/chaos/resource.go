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
// fenced path needs tokens from the lock (DESIGN §6), which do not exist yet: until then it is
// exercised by its own test with tokens chosen by hand.
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

// fenceKey is where the highest token seen by a name's fenced counter is kept. Its prefix differs
// from the counters' ("fenced:", "unfenced:"), which Finals lists.
func fenceKey(name string) string { return "fence-max:" + name }

// Read returns the counter s writes to (see [Section.Resource]); a fenced read raises the fence to
// s.Fence, or returns ErrFenced.
func (r *Resource) Read(ctx context.Context, s *Section) (int64, error) {
	if !s.Fenced {
		v, err := r.c.Get(ctx, s.Resource()).Int64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return v, err
	}
	res, err := fencedRead.Run(ctx, r.c, []string{s.Resource(), fenceKey(s.Name)}, s.Fence).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("chaos: fenced read replied %v", res)
	}
	if res[0] == 0 {
		return 0, fmt.Errorf("%w (token %d, highest %d)", ErrFenced, s.Fence, res[1])
	}
	return res[1], nil
}

// Write sets the counter s writes to; a fenced write returns ErrFenced when refused.
func (r *Resource) Write(ctx context.Context, s *Section, v int64) error {
	if !s.Fenced {
		return r.c.Set(ctx, s.Resource(), v, 0).Err()
	}
	ok, err := fencedWrite.Run(ctx, r.c, []string{s.Resource(), fenceKey(s.Name)}, s.Fence, v).Int64()
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("%w (token %d)", ErrFenced, s.Fence)
	}
	return nil
}

// Finals returns every counter's value, keyed as [Section.Resource] names them.
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
