package engine

import (
	"context"
	"runtime"
	"strings"
	"sync"
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
	if calledFromNotifier() {
		return
	}
	select {
	case <-n.done:
	case <-ctx.Done(): // a handler blocks: the notifier exits once it returns
	}
}

// notifierFunc is the function whose frame marks the notifier's goroutine on the stack.
var notifierFunc = func() string {
	pc, _, _, _ := runtime.Caller(0)
	name := runtime.FuncForPC(pc).Name() // ".../lease.init.func1"
	return name[:strings.LastIndex(name, "/engine.")] + "/engine.(*notifier).run"
}()

// calledFromNotifier reports whether the notifier's run loop is on the caller's stack: there is no
// goroutine identity in Go, but the stack tells whether we are inside a handler it called.
func calledFromNotifier() bool {
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n < len(pcs) {
			pcs = pcs[:n]
			break
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function == notifierFunc {
			return true
		}
		if !more {
			return false
		}
	}
}
