package mutex_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

func init() {
	childproc.Register("guard-holder", guardHolder)
	childproc.Register("guard-contender", guardContender)
}

// guardQuorum makes the quorum of a restart-guard child. args: the TTL, the guard (0: none), then
// the node addresses.
func guardQuorum(args []string) (*lease.Quorum, error) {
	ttl, err := time.ParseDuration(args[0])
	if err != nil {
		return nil, err
	}
	guard, err := time.ParseDuration(args[1])
	if err != nil {
		return nil, err
	}
	var clients []redis.UniversalClient
	for _, a := range args[2:] {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true}))
	}
	opts := []lease.Option{lease.WithTTL(ttl), lease.WithNodeTimeout(50 * time.Millisecond),
		lease.WithLogger(slog.New(slog.DiscardHandler))}
	if guard > 0 {
		opts = append(opts, lease.WithRestartGuard(guard))
	}
	return lease.NewQuorum(context.Background(), clients, opts...)
}

// guardHolder takes the lock "restart" and holds it until killed. It prints "held", then
// "until <t>" each time its lease's Until moves (t on [childproc.Mono]), and "lost" when the lease
// is lost. args: see guardQuorum.
func guardHolder(args []string) error {
	q, err := guardQuorum(args)
	if err != nil {
		return err
	}
	m := mutex.New(q, "restart", mutex.WithErrorHandler(func(error) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := m.Obtain(ctx)
	if err != nil {
		return err
	}
	fmt.Println("held")
	var last time.Time
	for {
		if u := l.Until(); !u.Equal(last) {
			last = u
			fmt.Printf("until %d\n", childproc.MonoOf(u))
		}
		select {
		case <-l.Done():
			fmt.Println("lost")
			select {}
		case <-time.After(time.Millisecond):
		}
	}
}

// guardContender tries for the lock "restart" every 5ms and holds it 1ms each time it gets it. It
// prints "ready" once its quorum is made, and "enter <t>" for every section it enters (t on
// [childproc.Mono], taken once the lock is held). args: see guardQuorum.
func guardContender(args []string) error {
	q, err := guardQuorum(args)
	if err != nil {
		return err
	}
	m := mutex.New(q, "restart", mutex.WithErrorHandler(func(error) {}))
	fmt.Println("ready")
	for {
		if err := m.TryLock(context.Background()); err == nil {
			fmt.Printf("enter %d\n", childproc.Mono())
			time.Sleep(time.Millisecond)
			_ = m.Unlock(context.Background())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restartRound is one restart of a node under a held lock, seen from separate processes: a holder
// on the bare majority {0, 1} (node 2 is paused while it acquires), two contenders trying all the
// time, and node 1 restarted empty at the given fraction of a wall-clock second (where the server
// starts within its second decides how its uptime_in_seconds rounds). It returns when the holder's
// lease ended, after the contenders got in or the watch ran out, and how many sections the
// contenders entered in all.
type restartRound struct {
	restart   int64   // when node 1 was killed, on childproc.Mono
	until     int64   // the holder's last Until
	entries   []int64 // when contenders entered, in order
	holderLog []string
}

func runRestartRound(t *testing.T, nodes []*redistest.Node, ttl, guard time.Duration, frac float64, watch time.Duration) restartRound {
	t.Helper()
	args := []string{ttl.String(), guard.String()}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	nodes[2].Stop()
	holder := childproc.Start(t, "guard-holder", args...)
	holder.WaitLine("held", 20*time.Second)
	nodes[2].Continue()
	var contenders []*childproc.Proc
	for range 2 {
		c := childproc.Start(t, "guard-contender", args...)
		c.WaitLine("ready", 10*time.Second)
		contenders = append(contenders, c)
	}
	time.Sleep(300 * time.Millisecond) // the contenders are refused: the holder has {0, 1}

	now := time.Now()
	at := now.Truncate(time.Second).Add(time.Duration(frac * float64(time.Second)))
	if !at.After(now) {
		at = at.Add(time.Second)
	}
	time.Sleep(time.Until(at))
	r := restartRound{restart: childproc.Mono()}
	nodes[1].RestartEmpty()

	deadline := time.Now().Add(watch)
	for time.Now().Before(deadline) && !entered(contenders) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	holder.Kill()
	for _, c := range contenders {
		c.Kill()
		for _, line := range c.Printed() {
			if v, ok := strings.CutPrefix(line, "enter "); ok {
				at, err := strconv.ParseInt(v, 10, 64)
				require.NoError(t, err, "contender line %q", line)
				r.entries = append(r.entries, at)
			}
		}
	}
	slices.Sort(r.entries)
	r.holderLog = holder.Printed()
	for _, line := range r.holderLog {
		if v, ok := strings.CutPrefix(line, "until "); ok {
			u, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, "holder line %q", line)
			r.until = max(r.until, u)
		}
	}
	require.NotZero(t, r.until, "the holder printed no Until: %q", r.holderLog)
	return r
}

func entered(contenders []*childproc.Proc) bool {
	for _, c := range contenders {
		if strings.HasPrefix(c.Last(), "enter ") {
			return true
		}
	}
	return false
}

// overlaps describes the contenders' entries that fall inside the holder's validity ("" if none).
func (r restartRound) overlaps() string {
	var n int
	var first int64
	for _, e := range r.entries {
		if e < r.until {
			if n == 0 {
				first = e
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d sections inside the holder's lease, the first %v after the restart, %v before the lease ended",
		n, time.Duration(first-r.restart).Round(time.Millisecond), time.Duration(r.until-first).Round(time.Millisecond))
}

// waitSurelyUp waits until the node reports an uptime of at least secs.
func waitSurelyUp(t *testing.T, n *redistest.Node, secs int) {
	t.Helper()
	c := n.Client()
	defer c.Close()
	for range 200 {
		info, err := c.Info(context.Background(), "server").Result()
		require.NoError(t, err)
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "uptime_in_seconds:"); ok {
				if up, _ := strconv.Atoi(v); up >= secs {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %s not up for %ds after 10s", n.Addr(), secs)
}

// The restart guard across processes, as DESIGN §7 promises it: TTL 1s, the guard 1s, a holder on
// a bare majority {0, 1}, node 1 restarted empty at several points of the wall-clock second, and
// two contender processes trying all the time. No contender may enter while the holder's lease is
// valid, however the server rounds its uptime; once the guard is over they get in. Without the
// guard they get in at once, inside the holder's lease (the caveat the guard closes).
func TestRestartGuardHoldsAcrossProcessesWhereverTheRestartFallsInTheSecond(t *testing.T) {
	const ttl = time.Second
	nodes := redistest.Start(t, 3)

	t.Run("no guard", func(t *testing.T) {
		r := runRestartRound(t, nodes, ttl, 0, 0.5, 3*time.Second)
		assert.NotEmpty(t, r.overlaps(), "without the guard the restarted node's vote should give a contender the lock while the holder's is valid; entries %d, holder %q", len(r.entries), r.holderLog)
	})
	t.Run("guard", func(t *testing.T) {
		for _, frac := range []float64{0.05, 0.3, 0.55, 0.8} {
			// Every node must count before the holder can take its majority: the guard's 1s plus
			// drift, surely passed once a node reports 3s.
			for _, n := range nodes {
				waitSurelyUp(t, n, 3)
			}
			r := runRestartRound(t, nodes, ttl, ttl, frac, 5*time.Second)
			assert.Empty(t, r.overlaps(), "restart at %.2fs into the second: contenders inside the holder's lease", frac)
			assert.NotEmpty(t, r.entries, "restart at %.2fs into the second: no contender got in once the guard and the lease were over", frac)
			t.Logf("restart at %.2fs into the second: holder's lease ended %v after the restart; first contender in %v after it; %d sections",
				frac, time.Duration(r.until-r.restart).Round(time.Millisecond), firstAfter(r), len(r.entries))
		}
	})
}

func firstAfter(r restartRound) time.Duration {
	if len(r.entries) == 0 {
		return -1
	}
	return time.Duration(r.entries[0] - r.restart).Round(time.Millisecond)
}
