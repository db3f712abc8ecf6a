package main

import (
	"fmt"
	"sync/atomic"
)

// accessMode is what one acquisition asks for on its key.
type accessMode int

const (
	exclusive accessMode = iota // a mutex, or an RWMutex's write lock: the holder is alone
	shared                      // an RWMutex's read lock: readers overlap each other, never a writer
	permits                     // weight permits of a semaphore of capacity: their sum stays <= capacity
)

// access is one acquisition's request, and also what a Locker grants: a library without the
// requested primitive grants exclusive access instead (see lockerFor), and the exclusion check
// then holds it to that.
type access struct {
	mode     accessMode
	weight   int64 // permits only
	capacity int64 // permits only
}

var exclusiveAccess = access{mode: exclusive}

func (a access) String() string {
	switch a.mode {
	case shared:
		return "read"
	case permits:
		return fmt.Sprintf("%d of %d permits", a.weight, a.capacity)
	default:
		return "exclusive"
	}
}

// occupancy checks exclusion on one key. It counts the holders inside their critical sections:
// writers (exclusive holders) in the high 32 bits, shared units (readers, or permits) in the low 32.
// Every holder adds itself right after its Lock returned and checks the sum the addition returned;
// it takes itself out right before it calls Unlock. Whichever of two overlapping holders enters
// second sees the first, so every overlap the primitive forbids is counted at least once. The word
// lives in the run's arena, shared by every client process (see arena.go).
type occupancy struct{ v *atomic.Int64 }

const (
	writerUnit = int64(1) << 32
	unitsMask  = writerUnit - 1
)

// enter records a holder granted a and reports whether that is allowed with the holders already
// inside, and how many are inside now, itself included (permits in use, for a semaphore).
func (o occupancy) enter(a access) (ok bool, inside int64) {
	var v int64
	switch a.mode {
	case exclusive:
		v = o.v.Add(writerUnit)
		ok = v == writerUnit // nobody else: no writer, no reader, no permit
	case shared:
		v = o.v.Add(1)
		ok = v < writerUnit // no writer
	case permits:
		v = o.v.Add(a.weight)
		ok = v < writerUnit && v <= a.capacity
	}
	return ok, v>>32 + v&unitsMask
}

// leave takes a holder granted a out again.
func (o occupancy) leave(a access) {
	switch a.mode {
	case exclusive:
		o.v.Add(-writerUnit)
	case shared:
		o.v.Add(-1)
	case permits:
		o.v.Add(-a.weight)
	}
}

// role is the kind of acquisition a worker made, for the per-role figures of mixed scenarios.
type role int

const (
	roleRead  role = iota // asked for a read lock
	roleWrite             // asked for a write lock, or an exclusive lock, or permits
	numRoles
)
