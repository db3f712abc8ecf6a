package mutex_test

import (
	"testing"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/crashtest"
	"github.com/quorumsync/quorumsync/mutex"
)

func init() {
	childproc.Register("crash", crashChild)
}

// crashChild locks and unlocks a mutex for ever (see crashtest.Loop).
func crashChild(args []string) error {
	a, err := crashtest.ParseArgs(args)
	if err != nil {
		return err
	}
	q, err := a.Quorum()
	if err != nil {
		return err
	}
	var opts []mutex.Option
	if a.Fenced {
		opts = append(opts, mutex.WithFencing())
	}
	m := mutex.New(q, a.Name, append(opts, mutex.WithErrorHandler(func(error) {}))...)
	return crashtest.Loop(a.TTL, m.Lock, m.Unlock)
}

// Holders killed while holding, while queued, and between a release and the next acquire leave
// nothing behind that outlives their TTL: every key of the name has a TTL while they run, and none
// is left once the TTLs have passed (the fencing counter aside).
func TestKilledHoldersAndWaitersLeaveNoKeyBehind(t *testing.T) {
	crashtest.Test(t, "crash")
}
