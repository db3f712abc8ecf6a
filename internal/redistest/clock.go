package redistest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// WithClockRate runs every node's wall clock at rate times real time (1.009: 0.9% fast), from the
// moment Start is called; a restarted node goes on along the same fast timeline. Redis expires
// keys and answers TIME by its wall clock, so a fast node lets lock keys go early by real time: the
// clock drift a lease's validity must allow for (DESIGN §2), which servers sharing one machine's
// clock never show otherwise. It preloads a small library into redis-server that scales
// gettimeofday, time and clock_gettime(CLOCK_REALTIME) (monotonic clocks are left alone), built
// from C on first use with the system's C compiler; Start fails the test when it cannot be built.
func WithClockRate(rate float64) Option {
	return optionFunc(func(c *config) { c.clockRate = rate })
}

// WithClockJumps lets a test step each node's wall clock at run time ([Node.JumpClock]), as an
// NTP step or an operator's date(1) would: it preloads the library of [WithClockRate] (at the rate
// given there, else real time), which adds an offset the node reads from a shared page on every
// reading of the clock.
func WithClockJumps() Option {
	return optionFunc(func(c *config) { c.clockJumps = true })
}

// JumpClock steps n's wall clock by d (forward when d > 0), at once, for every later reading; the
// steps add up. The node must have been started WithClockJumps.
func (n *Node) JumpClock(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offset == nil {
		n.t.Fatalf("redistest: JumpClock on node %s, started without WithClockJumps", n.Addr())
	}
	atomic.AddInt64(n.offset, int64(d))
}

// fastClockC is the preloaded library. It reads the time with the raw system call, never through
// the C library or the dynamic linker, which the allocator may call into while it starts up.
const fastClockC = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double rate = 1.0;
static int64_t epoch;
static volatile int64_t *offset; // a step the test sets at run time (REDISTEST_CLOCK_OFFSET_FILE)

__attribute__((constructor)) static void init(void) {
	const char *r = getenv("REDISTEST_CLOCK_RATE"), *e = getenv("REDISTEST_CLOCK_EPOCH_NS");
	const char *o = getenv("REDISTEST_CLOCK_OFFSET_FILE");
	if (r) rate = strtod(r, NULL);
	if (e) epoch = strtoll(e, NULL, 10);
	if (o) {
		int fd = (int)syscall(SYS_open, o, O_RDWR);
		if (fd >= 0) {
			void *p = (void *)syscall(SYS_mmap, NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p != MAP_FAILED) offset = (volatile int64_t *)p;
			syscall(SYS_close, fd);
		}
	}
}

static int64_t wall_ns(void) {
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (epoch != 0 && rate != 1.0) ns = epoch + (int64_t)((double)(ns - epoch) * rate);
	if (offset) ns += *offset;
	return ns;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
	if (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE) return syscall(SYS_clock_gettime, id, ts);
	int64_t ns = wall_ns();
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	return 0;
}

int gettimeofday(struct timeval *tv, void *tz) {
	(void)tz;
	int64_t ns = wall_ns();
	tv->tv_sec = ns / 1000000000;
	tv->tv_usec = (ns % 1000000000) / 1000;
	return 0;
}

time_t time(time_t *t) {
	time_t s = (time_t)(wall_ns() / 1000000000);
	if (t) *t = s;
	return s;
}
`

var fastClock struct {
	once sync.Once
	path string
	err  error
}

// fastClockLib builds the preloaded library once (it is kept in the temporary directory, named
// after its source, for every later test process) and returns its path.
func fastClockLib() (string, error) {
	fastClock.once.Do(func() {
		sum := sha256.Sum256([]byte(fastClockC))
		lib := filepath.Join(os.TempDir(), fmt.Sprintf("redistest-fastclock-%x.so", sum[:8]))
		if _, err := os.Stat(lib); err == nil {
			fastClock.path = lib
			return
		}
		if _, err := exec.LookPath("cc"); err != nil {
			fastClock.err = fmt.Errorf("a C compiler (cc) is needed to build the fast-clock library: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "redistest-clock")
		if err != nil {
			fastClock.err = err
			return
		}
		defer os.RemoveAll(dir)
		src, tmp := filepath.Join(dir, "fastclock.c"), filepath.Join(dir, "fastclock.so")
		if err := os.WriteFile(src, []byte(fastClockC), 0o644); err != nil {
			fastClock.err = err
			return
		}
		if out, err := exec.Command("cc", "-O2", "-shared", "-fPIC", "-o", tmp, src).CombinedOutput(); err != nil {
			fastClock.err = fmt.Errorf("build the fast-clock library: %v: %s", err, out)
			return
		}
		// A rename is atomic: test processes building it at once each put a whole library there.
		if err := os.Rename(tmp, lib); err != nil {
			fastClock.err = err
			return
		}
		fastClock.path = lib
	})
	return fastClock.path, fastClock.err
}

// clockEnv returns the environment that runs a node's clock at the configured rate from epoch,
// stepped by the offset in offsetFile ("" without WithClockJumps).
func (c *config) clockEnv(offsetFile string) ([]string, error) {
	if (c.clockRate == 0 || c.clockRate == 1) && !c.clockJumps {
		return nil, nil
	}
	lib, err := fastClockLib()
	if err != nil {
		return nil, err
	}
	env := []string{"LD_PRELOAD=" + lib}
	if c.clockRate != 0 && c.clockRate != 1 {
		env = append(env, "REDISTEST_CLOCK_RATE="+strconv.FormatFloat(c.clockRate, 'f', -1, 64),
			"REDISTEST_CLOCK_EPOCH_NS="+strconv.FormatInt(c.clockEpoch.UnixNano(), 10))
	}
	if offsetFile != "" {
		env = append(env, "REDISTEST_CLOCK_OFFSET_FILE="+offsetFile)
	}
	return env, nil
}

// clockOffset makes the shared page a node started WithClockJumps reads its clock's step from, in
// the node's directory, and maps it: the returned pointer is the step, in nanoseconds.
func clockOffset(dir string) (file string, offset *int64, err error) {
	file = filepath.Join(dir, "clock-offset")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(os.Getpagesize())); err != nil {
		return "", nil, err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return "", nil, err
	}
	return file, (*int64)(unsafe.Pointer(&mem[0])), nil
}
