package mutex_test

import (
	"context"
	"testing"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/crashtest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

func init() {
	// A child that locks and unlocks a mutex for ever (see crashtest.Loop).
	childproc.Register("crash", crashtest.Child(func(q *lease.Quorum, a crashtest.Args) (acquire, release func(context.Context) error) {
		opts := []mutex.Option{mutex.WithErrorHandler(func(error) {})}
		if a.Fenced {
			opts = append(opts, mutex.WithFencing())
		}
		m := mutex.New(q, a.Name, opts...)
		return m.Lock, m.Unlock
	}))
}

// Holders killed while holding, while queued, and between a release and the next acquire leave
// nothing behind that outlives their TTL: every key of the name has a TTL while they run, and none
// is left once the TTLs have passed (the fencing counter aside).
func TestKilledHoldersAndWaitersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash")
}

func init() {
	// A child that locks and unlocks three names with one Multi for ever.
	childproc.Register("crash-multi", crashtest.Child(func(q *lease.Quorum, a crashtest.Args) (acquire, release func(context.Context) error) {
		opts := []mutex.Option{mutex.WithErrorHandler(func(error) {})}
		if a.Fenced {
			opts = append(opts, mutex.WithFencing())
		}
		m := mutex.NewMulti(q, []string{a.Name + "-c", a.Name, a.Name + "-b"}, opts...)
		return m.Lock, m.Unlock
	}))
}

// The same for holders of several names: a Multi killed while it holds, while it waits (holding
// some of its names, maybe), and between a release and the next acquire leaves no key without a
// TTL, and nothing once the TTLs have passed.
func TestKilledMultiHoldersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash-multi")
}
