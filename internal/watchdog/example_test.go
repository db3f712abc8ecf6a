package watchdog_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// A watchdog with a RenewFunc whose servers stop answering: the lease ends at its validity.
func Example() {
	var down atomic.Bool // the RenewFunc runs on the watchdog's goroutine
	renew := func(ctx context.Context, batch []watchdog.Renewal) {
		for i := range batch {
			r := &batch[i]
			if !down.Load() {
				r.OK, r.Until = true, time.Now().Add(r.TTL)
			} else {
				r.Err = errors.New("servers unreachable")
			}
		}
	}
	w := watchdog.New(renew)
	defer w.Close()

	start := time.Now()
	e, err := w.Add(watchdog.Spec{TTL: 60 * time.Millisecond, Start: start, Until: start.Add(60 * time.Millisecond)})
	if err != nil {
		panic(err)
	}
	time.Sleep(150 * time.Millisecond) // two TTLs: alive only because it was renewed
	fmt.Println("after 150ms:", e.Err())

	down.Store(true)
	<-e.Done()
	fmt.Println("then:", e.Err())
	// Output:
	// after 150ms: <nil>
	// then: watchdog: lease expired before it could be renewed
}
