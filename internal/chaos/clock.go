package chaos

import (
	"time"

	"golang.org/x/sys/unix"
)

// Mono returns CLOCK_MONOTONIC in nanoseconds. Every process on the machine reads the same clock,
// so times recorded by the test process and by its child processes compare directly, which Go's
// own monotonic readings (relative to each process's start) do not.
func Mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("chaos: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // cannot fail on Linux
	}
	return ts.Nano()
}

// MonoOf converts t (for example a lease's Until, which carries Go's monotonic reading) to the
// [Mono] clock: now on Mono plus how far t is from now.
func MonoOf(t time.Time) int64 {
	now := time.Now()
	return Mono() + int64(t.Sub(now))
}

// ms formats a Mono duration in milliseconds for messages.
func ms(d int64) string { return time.Duration(d).Round(10 * time.Microsecond).String() }
