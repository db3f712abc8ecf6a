package chaos

import (
	"time"

	"github.com/quorumsync/quorumsync/internal/childproc"
)

// Mono returns CLOCK_MONOTONIC in nanoseconds (see childproc.Mono): every process on the machine
// reads the same clock, so times recorded by the test process and by its child processes compare
// directly.
func Mono() int64 { return childproc.Mono() }

// MonoOf converts t (for example a lease's Until, which carries Go's monotonic reading) to the
// [Mono] clock.
func MonoOf(t time.Time) int64 { return childproc.MonoOf(t) }

// ms formats a Mono duration in milliseconds for messages.
func ms(d int64) string { return time.Duration(d).Round(10 * time.Microsecond).String() }
