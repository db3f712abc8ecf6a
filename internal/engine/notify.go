package engine

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// notifier runs what a lease's loss or failed renewal sets off beyond the safety signal — the
// tracing spans, the holder's OnLost, the error handlers — on one goroutine of the quorum's, in
// order. The goroutines that detect a loss (the watchdog's renewal goroutine and its loss clock) only close Done and
// hand the rest over: nothing a user supplies (a handler, a span exporter) can delay a Done or a
// renewal, and a handler may call Quorum.Close.
type notifier struct {
	mu     sync.Mutex
	queue  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}
	goid   atomic.Uint64 // the id of the goroutine that runs the handlers (see goid)
}

func newNotifier() *notifier {
	n := &notifier{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go n.run()
	return n
}

// post queues f. After close it runs f on the caller's goroutine: nothing is dropped.
func (n *notifier) post(f func()) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		f()
		return
	}
	n.queue = append(n.queue, f)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	n.goid.Store(goid())
	defer close(n.done)
	for {
		n.mu.Lock()
		batch := n.queue
		n.queue = nil
		closed := n.closed
		n.mu.Unlock()
		for _, f := range batch {
			f()
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			<-n.wake
		}
	}
}

// close runs what is queued, then stops the goroutine and waits for it — unless close is called
// from that goroutine (a handler that closes the quorum), which would wait for itself: the
// goroutine then stops as soon as the handler returns.
func (n *notifier) close(ctx context.Context) {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	if goid() == n.goid.Load() {
		return // a handler called Close: the goroutine stops as soon as the handler returns
	}
	select {
	case <-n.done:
	case <-ctx.Done(): // a handler blocks: the notifier exits once it returns
	}
}

// goid returns the id of the calling goroutine, from the first line of its stack trace
// ("goroutine 123 [running]:"). Go gives goroutines no identity on purpose; the notifier needs one
// for a single question — is Close being called by a loss handler it runs? — since Close must not
// wait for the goroutine it runs on. It costs a short stack trace, once per Close.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	fields := strings.Fields(string(buf[:n]))
	if len(fields) < 2 {
		return 0
	}
	id, _ := strconv.ParseUint(fields[1], 10, 64)
	return id
}
