package main

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/quorumsync/quorumsync/lease"
)

// The clock every process of a run shares: CLOCK_MONOTONIC is system-wide on Linux, so instants
// taken in different processes compare. It is read with a system call only to calibrate, and then
// advanced with Go's own monotonic clock (the same clock, read through the vDSO). The calibration
// brackets time.Now() between two system calls and keeps the tightest of 50 tries, so that a
// process preempted while calibrating does not skew its clock against the others'.
var (
	monoBase int64
	wallBase time.Time
)

func init() {
	best := int64(-1)
	for range 50 {
		var a, b unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &a); err != nil {
			panic(err)
		}
		now := time.Now()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &b); err != nil {
			panic(err)
		}
		if w := b.Nano() - a.Nano(); best < 0 || w < best {
			best, wallBase, monoBase = w, now, a.Nano()+w/2
		}
	}
}

// mono returns CLOCK_MONOTONIC in nanoseconds.
func mono() int64 { return monoBase + int64(time.Since(wallBase)) }

func sleepUntil(ctx context.Context, t int64) {
	d := time.Duration(t - mono())
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// shm is a page of a file every process of a run maps (MAP_SHARED): slot 0 counts the holders of the
// one contended name, slot 1 the times a holder found another one there, slot 2 is the run's
// phase (set by the parent), slot 3 counts the lockers that have acquired at least once.
type shm struct{ b []byte }

const (
	phaseWarm   = 0
	phaseWindow = 1
	phaseStop   = 2
)

func createShm(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "scale-shm-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return f.Name(), f.Truncate(4096)
}

// newShm creates a shared page in a temporary file and maps it; done unmaps and removes it. The
// children of a row map the same file by its path (openShm).
func newShm() (sh *shm, path string, done func(), err error) {
	if path, err = createShm(""); err != nil {
		return nil, "", nil, err
	}
	if sh, err = openShm(path); err != nil {
		os.Remove(path)
		return nil, "", nil, err
	}
	return sh, path, func() { sh.close(); os.Remove(path) }, nil
}

func openShm(path string) (*shm, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &shm{b: b}, nil
}

func (s *shm) slot(i int) *atomic.Int32 { return (*atomic.Int32)(unsafe.Pointer(&s.b[i*64])) }
func (s *shm) holders() *atomic.Int32   { return s.slot(0) }
func (s *shm) violations() *atomic.Int32 {
	return s.slot(1)
}
func (s *shm) phase() *atomic.Int32  { return s.slot(2) }
func (s *shm) served() *atomic.Int32 { return s.slot(3) }
func (s *shm) close()                { _ = unix.Munmap(s.b) }

// enter and leave bracket a hold of the one name: two holders at once, in any process, count as a
// violation.
func (s *shm) enter() {
	if s.holders().Add(1) > 1 {
		s.violations().Add(1)
	}
}
func (s *shm) leave() { s.holders().Add(-1) }

// tripCounter is a go-redis hook that counts the client's round trips exactly: a command sent alone
// is one, a pipeline is one (its commands are counted apart). Pub/sub traffic does not pass here.
type tripCounter struct {
	single, pipes, piped, maxPipe atomic.Int64

	spans atomic.Pointer[spanLog] // when set, each pipeline's [start, end] on the mono clock
}

type spanLog struct {
	sync.Mutex
	list [][2]int64
}

type tripSnap struct{ single, pipes, piped int64 }

func (t *tripCounter) snap() tripSnap {
	return tripSnap{t.single.Load(), t.pipes.Load(), t.piped.Load()}
}
func (a tripSnap) sub(b tripSnap) tripSnap {
	return tripSnap{a.single - b.single, a.pipes - b.pipes, a.piped - b.piped}
}
func (a tripSnap) add(b tripSnap) tripSnap {
	return tripSnap{a.single + b.single, a.pipes + b.pipes, a.piped + b.piped}
}
func (a tripSnap) trips() int64 { return a.single + a.pipes }

func (t *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (t *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t.single.Add(1)
		return next(ctx, cmd)
	}
}
func (t *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		t.pipes.Add(1)
		n := int64(len(cmds))
		t.piped.Add(n)
		for {
			m := t.maxPipe.Load()
			if n <= m || t.maxPipe.CompareAndSwap(m, n) {
				break
			}
		}
		sl := t.spans.Load()
		if sl == nil {
			return next(ctx, cmds)
		}
		start := mono()
		err := next(ctx, cmds)
		end := mono()
		sl.Lock()
		sl.list = append(sl.list, [2]int64{start, end})
		sl.Unlock()
		return err
	}
}

// bursts groups pipeline spans into renewal batches — spans less than gap apart — and returns
// each batch's length, from its first pipeline's send to its last one's answer.
func bursts(spans [][2]int64, gap int64) []time.Duration {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var out []time.Duration
	for i := 0; i < len(s); {
		first, last := s[i][0], s[i][1]
		j := i + 1
		for ; j < len(s) && s[j][0]-last < gap; j++ {
			last = max(last, s[j][1])
		}
		out = append(out, time.Duration(last-first))
		i = j
	}
	return out
}

// quietLogger drops NewQuorum's start-up warnings (these servers have no persistence, on purpose);
// errors still reach stderr.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// newQuorum makes a one-node quorum over addr with its own client (pool of poolSize; 0: go-redis's
// default), counting its round trips in tc when tc is not nil.
func newQuorum(ctx context.Context, addr string, poolSize int, ttl time.Duration, tc *tripCounter) (*lease.Quorum, *redis.Client, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: poolSize, ContextTimeoutEnabled: true})
	if tc != nil {
		c.AddHook(tc)
	}
	q, err := lease.NewQuorum(ctx, []redis.UniversalClient{c}, lease.WithTTL(ttl), lease.WithLogger(quietLogger))
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return q, c, nil
}
