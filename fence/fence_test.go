package fence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &redisAddr)) }

var redisAddr = "localhost:6379"

// A lower token is refused and writes nothing; the same or a higher token writes.
func TestSetRefusesALowerToken(t *testing.T) {
	c := redistest.Start(t, 1)[0].Client()
	ctx := context.Background()
	require.NoError(t, fence.Set(ctx, c, "{r}:fence", 5, "{r}:v", "five", 0))
	require.NoError(t, fence.Set(ctx, c, "{r}:fence", 5, "{r}:v", "five again", 0), "the same holder writes again")
	require.NoError(t, fence.Set(ctx, c, "{r}:fence", 7, "{r}:v", "seven", 0))
	err := fence.Set(ctx, c, "{r}:fence", 6, "{r}:v", "six, late", 0)
	require.ErrorIs(t, err, fence.ErrStale)
	assert.Contains(t, err.Error(), "6 < 7")
	assert.Equal(t, "seven", c.Get(ctx, "{r}:v").Val(), "a stale write got through")
	assert.Equal(t, "7", c.Get(ctx, "{r}:fence").Val())
}

// A script of your own runs behind the same check, atomically.
func TestScriptOfYourOwnIsFenced(t *testing.T) {
	c := redistest.Start(t, 1)[0].Client()
	ctx := context.Background()
	// An increment of a counter field, fenced: KEYS[2] and ARGV[2] are the script's own.
	incr := fence.NewScript(`return redis.call('HINCRBY', KEYS[2], 'n', ARGV[2])`)
	v, err := incr.Run(ctx, c, "{acct}:fence", 3, []string{"{acct}:balance"}, 10)
	require.NoError(t, err)
	assert.EqualValues(t, 10, v)
	_, err = incr.Run(ctx, c, "{acct}:fence", 4, []string{"{acct}:balance"}, 5)
	require.NoError(t, err)
	_, err = incr.Run(ctx, c, "{acct}:fence", 3, []string{"{acct}:balance"}, 1000)
	require.ErrorIs(t, err, fence.ErrStale)
	assert.Equal(t, "15", c.HGet(ctx, "{acct}:balance", "n").Val())
}

// A script that fails for its own reasons returns its own error, not ErrStale.
func TestScriptErrorsAreTheScripts(t *testing.T) {
	c := redistest.Start(t, 1)[0].Client()
	s := fence.NewScript(`return redis.error_reply('NOPE not today')`)
	_, err := s.Run(context.Background(), c, "{x}:fence", 1, nil)
	require.Error(t, err)
	assert.False(t, errors.Is(err, fence.ErrStale))
	var re redis.Error
	assert.ErrorAs(t, err, &re)
}

func TestBadInputsAreTyped(t *testing.T) {
	c := redistest.Start(t, 1)[0].Client()
	ctx := context.Background()
	var nilScript *fence.Script
	_, err := nilScript.Run(ctx, c, "f", 1, nil)
	assert.ErrorIs(t, err, fence.ErrInvalidArgument)
	assert.ErrorIs(t, fence.Set(ctx, c, "", 1, "k", "v", 0), fence.ErrInvalidArgument)
	assert.ErrorIs(t, fence.Set(ctx, c, "f", 0, "k", "v", 0), fence.ErrInvalidArgument, "token 0")
	assert.ErrorIs(t, fence.Set(ctx, c, "f", 1, "k", "v", -1), fence.ErrInvalidArgument)
	assert.ErrorIs(t, fence.Set(nil, c, "f", 1, "k", "v", 0), fence.ErrInvalidArgument) //nolint:staticcheck // a nil ctx is refused
	assert.ErrorIs(t, fence.Set(ctx, nil, "f", 1, "k", "v", 0), fence.ErrInvalidArgument)
	assert.Zero(t, c.Exists(ctx, "k", "f").Val(), "a refused write wrote")
}

func ExampleSet() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	defer rdb.Del(ctx, "{orders:42}:fence", "{orders:42}:state")

	// A holder with token 12 writes; then one with 11 (paused past its lease, say) tries.
	fmt.Println(fence.Set(ctx, rdb, "{orders:42}:fence", 12, "{orders:42}:state", "shipped", 0))
	err := fence.Set(ctx, rdb, "{orders:42}:fence", 11, "{orders:42}:state", "paid", 0)
	fmt.Println(errors.Is(err, fence.ErrStale), rdb.Get(ctx, "{orders:42}:state").Val())
	// Output:
	// <nil>
	// true shipped
}
