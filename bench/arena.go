package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The state the clients of one run share, whether they are goroutines of this process or child
// processes: the exclusion check of every key, the turn counter of a one-key lock, and the record
// of every turn. It lives in a memfd that the harness creates and maps, and passes to every child,
// which maps it too (MAP_SHARED), so the same atomic words back the check in every process: two
// holders in two processes are seen exactly as two goroutines of one process would be.

// arena is one run's shared mapping.
type arena struct {
	file *os.File
	mem  []byte
	// turn counts the turns opened so far (see scenario.turns); it is also the futex word that
	// the handoff scenarios' goroutines sleep on until someone else has acquired.
	turn *atomic.Uint32
	// occ are the exclusion checks: occ[0] is the shared key's, occ[1+g] goroutine g's own keys'.
	occ []atomic.Int64
	// turns[t-1] is turn t's record; turns beyond its length are not recorded.
	turns []turnRecord
}

// turnRecord is one holding of a one-key lock, written by its holder: its client, and when (on
// the machine-wide clock, monoNow) its Lock returned, it left the critical section (right before
// calling Unlock), and its Unlock returned.
type turnRecord struct {
	client                 int64
	locked, left, unlocked int64
}

// arenaShape is what an arena holds; the harness and the children derive it from the same plan.
type arenaShape struct{ slots, turns int }

const (
	turnWordSize   = 8 // the uint32 turn word, padded so the slots stay 8-byte aligned
	slotSize       = int(unsafe.Sizeof(atomic.Int64{}))
	turnRecordSize = int(unsafe.Sizeof(turnRecord{}))
)

func shapeOf(sc scenario, d time.Duration) arenaShape {
	s := arenaShape{slots: 1 + sc.goroutines}
	if sc.turns() {
		// Each turn lasts at least the hold, so a correct lock opens at most d/hold turns, plus
		// one per goroutine that acquired just before the deadline; twice that leaves room for a
		// broken one, whose extra turns are not recorded (only counted as violations).
		s.turns = 2*int(d/sc.hold) + sc.goroutines + 64
	}
	return s
}

func (s arenaShape) size() int { return turnWordSize + s.slots*slotSize + s.turns*turnRecordSize }

// newArena creates a zeroed arena of shape s.
func newArena(s arenaShape) (*arena, error) {
	fd, err := unix.MemfdCreate("quorumsync-bench-arena", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "arena")
	if err := f.Truncate(int64(s.size())); err != nil {
		f.Close()
		return nil, err
	}
	return mapArena(f, s)
}

// mapArena maps f, an arena of shape s, shared.
func mapArena(f *os.File, s arenaShape) (*arena, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, s.size(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mmap arena: %w", err)
	}
	// mmap returns page-aligned memory, so every offset below is aligned for its atomics.
	a := &arena{file: f, mem: mem, turn: (*atomic.Uint32)(unsafe.Pointer(&mem[0]))}
	a.occ = unsafe.Slice((*atomic.Int64)(unsafe.Pointer(&mem[turnWordSize])), s.slots)
	if s.turns > 0 {
		a.turns = unsafe.Slice((*turnRecord)(unsafe.Pointer(&mem[turnWordSize+s.slots*slotSize])), s.turns)
	}
	return a, nil
}

func (a *arena) close() {
	_ = unix.Munmap(a.mem)
	_ = a.file.Close()
}

// occupancy returns the exclusion check in slot i.
func (a *arena) occupancy(i int) occupancy { return occupancy{&a.occ[i]} }

// Futex operations (linux/futex.h); without FUTEX_PRIVATE_FLAG, so they work across processes
// on a shared mapping.
const (
	futexWait = 0
	futexWake = 1
)

// openTurn opens the next turn for the holder that just acquired and returns it; with wake, it
// wakes the goroutines that wait in awaitTurnAfter, in every process.
func (a *arena) openTurn(wake bool) uint32 {
	t := a.turn.Add(1)
	if wake {
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(a.turn)), futexWake, math.MaxInt32, 0, 0, 0)
	}
	return t
}

// turnWaitSlice bounds one futex sleep, so that a wait notices a ctx cancelled before its
// deadline; at the deadline itself the sleep ends on time.
const turnWaitSlice = 50 * time.Millisecond

// awaitTurnAfter blocks until a turn after turn has opened (another holder acquired), or ctx
// ends.
func (a *arena) awaitTurnAfter(ctx context.Context, turn uint32) {
	for a.turn.Load() == turn && ctx.Err() == nil {
		wait := turnWaitSlice
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d))
		}
		if wait <= 0 {
			return
		}
		ts := unix.NsecToTimespec(int64(wait))
		// The kernel sleeps only while the word still equals turn. EAGAIN (it moved on), EINTR
		// and ETIMEDOUT all mean: look again.
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(a.turn)), futexWait, uintptr(turn),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
}

// record stores turn's record.
func (a *arena) record(turn uint32, r turnRecord) {
	if int(turn) <= len(a.turns) {
		a.turns[turn-1] = r
	}
}

// turnFigures computes from the turn records the handoffs to another client and within one (the
// previous holder's Unlock returning → the next holder's Lock returning, 0 and early when the
// next Lock returned first) and the lock's idle time between holders (the previous holder leaving
// its critical section → the next one entering it). Call it once every client has finished.
func (a *arena) turnFigures() (cross, local, idle handoffFigures) {
	n := min(int(a.turn.Load()), len(a.turns))
	var hc, hl, hi handoffHist
	for t := 1; t < n; t++ {
		prev, cur := &a.turns[t-1], &a.turns[t]
		h := &hl
		if cur.client != prev.client {
			h = &hc
		}
		if d := cur.locked - prev.unlocked; d >= 0 {
			h.lat.record(time.Duration(d))
		} else {
			h.lat.record(0)
			h.early++
		}
		// Negative only when the two overlapped, which the exclusion check counts.
		hi.lat.record(time.Duration(max(cur.locked-prev.left, 0)))
	}
	return hc.figures(), hl.figures(), hi.figures()
}

// The machine-wide clock. Go's time.Now carries a monotonic reading, but relative to this
// process's start, so it does not compare across processes; CLOCK_MONOTONIC is one clock for the
// whole machine. Go reads that same clock for its monotonic readings (vDSO, CLOCK_MONOTONIC on
// Linux), so a raw reading and a time.Time taken at the same instant fix the offset between the
// two for the life of the process, and monoNow costs a time.Since (~30ns) rather than a
// clock_gettime syscall (~1.5µs on a VM).
var monoBase, timeBase = calibrateMono()

// rawMono reads CLOCK_MONOTONIC with a syscall.
func rawMono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // cannot fail on Linux
	}
	return ts.Nano()
}

// calibrateMono pairs a raw reading with time.Now, taken between two raw readings; of several
// tries it keeps the tightest pair, so the offset is off by at most half of that gap (~1µs).
func calibrateMono() (int64, time.Time) {
	var base int64
	var at time.Time
	gap := int64(math.MaxInt64)
	for range 16 {
		r0 := rawMono()
		t := time.Now()
		r1 := rawMono()
		if r1-r0 < gap {
			gap, base, at = r1-r0, r0+(r1-r0)/2, t
		}
	}
	return base, at
}

// monoNow is CLOCK_MONOTONIC in ns, comparable between the processes of the machine.
func monoNow() int64 { return monoOf(time.Now()) }

// monoOf converts t, read in this process, to the machine-wide clock.
func monoOf(t time.Time) int64 { return monoBase + int64(t.Sub(timeBase)) }

// monoTime converts a machine-wide instant to a time.Time of this process.
func monoTime(ns int64) time.Time { return timeBase.Add(time.Duration(ns - monoBase)) }
