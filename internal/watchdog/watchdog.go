package watchdog

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Renewal is one lease's part in a batch handed to a [RenewFunc]. The watchdog fills Entry and
// TTL; the RenewFunc fills the result fields.
type Renewal struct {
	Entry *Entry
	// TTL is the lifetime to ask the servers for. It is the entry's TTL, or less when a max hold
	// time caps it.
	TTL time.Duration

	// OK reports that a quorum renewed the lease and Until is still in the future.
	OK bool
	// Until is the new end of validity (renewal start + TTL − drift) when OK.
	Until time.Time
	// Err, when not OK, says why. With Final set the lease can never be renewed again (for
	// example the key is gone on a majority) and ends at once with Err as its cause; otherwise the
	// watchdog retries while time remains.
	Err   error
	Final bool
}

// RenewFunc renews a batch of leases that fell due together. It is called from the watchdog
// goroutine, one batch at a time, except that the chunks of a batch larger than the max batch
// ([WithMaxBatch]) go out up to [parallelChunks] at once, from goroutines the watchdog waits for;
// it must return once ctx is done. It reports each lease's result in place.
type RenewFunc func(ctx context.Context, batch []Renewal)

// Watchdog renews the leases added to it at a third of their TTL, from one goroutine (and, for a
// batch larger than the max batch, goroutines it starts and waits for, one per chunk), and ends
// each lease that is not renewed in time, from another (the loss clock). Create it with [New]; stop it with [Watchdog.Close].
// It is safe for concurrent use.
type Watchdog struct {
	renew RenewFunc
	cfg   config

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewal goroutine has returned
	// The loss clock: one goroutine that ends each entry at its Until, on a timer of its own,
	// whatever the renewal goroutine is waiting for.
	expDone chan struct{}
	// timer wakes the renewal goroutine and expTimer the loss clock. Both are reset only under mu,
	// by their goroutine or by Add and rearm, which move a sleeping goroutine's wake-up earlier
	// by resetting its timer rather than waking it to do so.
	timer, expTimer *time.Timer

	mu      sync.Mutex
	queue   entryQueue
	expiry  expiryQueue
	entries map[*Entry]struct{}
	closed  bool
	// maxWindow is the widest early window of any entry added: how far ahead the batch collector
	// has to look.
	maxWindow time.Duration
	// While the goroutine sleeps, sleeping is set and wakeAt is when its timer fires (zero: no
	// timer). Add moves the timer only for an entry due before that, so a steady stream of
	// short-held leases does not cost a goroutine wake-up each.
	sleeping bool
	wakeAt   mono
}

// New starts a watchdog whose goroutine calls renew for the leases that fall due. Close must be
// called to stop it.
func New(renew RenewFunc, opts ...Option) *Watchdog {
	cfg := config{window: defaultWindow, early: defaultEarly}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.drift == nil {
		cfg.drift = func(time.Duration) time.Duration { return 0 }
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watchdog{
		renew:   renew,
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		expDone: make(chan struct{}),
		entries: make(map[*Entry]struct{}),
	}
	w.timer, w.expTimer = stoppedTimer(), stoppedTimer()
	go w.loop()
	go w.lossClock()
	return w
}

// Spec describes a lease to watch.
type Spec struct {
	// Owner is the caller's handle for the lease, given back by [Entry.Owner] (the RenewFunc uses
	// it to find what to renew).
	Owner any
	// TTL is the lease's lifetime on the servers; renewals come every TTL/3 from Start.
	TTL time.Duration
	// Start is when the acquisition began; Until is when its validity ends.
	Start, Until time.Time
	// HoldUntil, when not zero, caps the lease: renewals never extend it past HoldUntil, and the
	// lease ends with [ErrMaxHold] then.
	HoldUntil time.Time
	// OnLost, if not nil, is called once if the lease ends for any reason other than [Entry.Stop],
	// after Done has closed, from the goroutine that found the loss (the watchdog's renewal
	// goroutine, or its loss clock). It must not block: hand slow work to a goroutine of your own.
	OnLost func(error)
}

// LossHandler is an owner ([Spec.Owner]) told of its lease's loss, as [Spec.OnLost] would be, when
// OnLost is nil: an owner that has the method needs no func value bound to it (an allocation per
// lease).
type LossHandler interface{ Lost(err error) }

// Add starts watching a lease. It returns [ErrClosed] after Close.
func (w *Watchdog) Add(s Spec) (*Entry, error) {
	e := &Entry{
		w:        w,
		owner:    s.Owner,
		ttl:      s.TTL,
		until:    s.Until,
		onLost:   s.OnLost,
		index:    -1,
		expIndex: -1,
		// The renewal schedule counts from when the acquisition began, not from now: validity was
		// measured from there, and so is every later renewal.
		next: monoOf(s.Start.Add(s.TTL / 3)),
	}
	if !s.HoldUntil.IsZero() {
		e.holdUntil = monoOf(s.HoldUntil)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, ErrClosed
	}
	w.entries[e] = struct{}{}
	heap.Push(&w.queue, e)
	w.maxWindow = max(w.maxWindow, w.window(e))
	if w.sleeping && (w.wakeAt == 0 || e.next < w.wakeAt) {
		w.wakeAt = e.next
		w.timer.Reset(e.next.sub(time.Now()))
	}
	e.expAt = monoOf(s.Until)
	heap.Push(&w.expiry, e)
	if e.expIndex == 0 {
		w.expTimer.Reset(e.expAt.sub(time.Now()))
	}
	w.mu.Unlock()
	return e, nil
}

// stoppedTimer returns a timer that has not been started.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// window is how far ahead of its due time e may join a batch.
func (w *Watchdog) window(e *Entry) time.Duration {
	return max(w.cfg.window, time.Duration(w.cfg.early*float64(e.ttl/3)))
}

// Len reports how many leases the watchdog holds.
func (w *Watchdog) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries)
}

// Close stops the goroutine, waits for it (cancelling a renewal under way), and ends every lease
// still watched with [ErrClosed]. It is safe to call more than once.
func (w *Watchdog) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		<-w.expDone
		return
	}
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	<-w.done
	<-w.expDone

	w.mu.Lock()
	rest := make([]*Entry, 0, len(w.entries))
	for e := range w.entries {
		rest = append(rest, e)
	}
	w.mu.Unlock()
	for _, e := range rest {
		e.finish(ErrClosed)
	}
}

// rearm moves e's place on the loss clock to at (a renewal moved its Until).
func (w *Watchdog) rearm(e *Entry, at mono) {
	w.mu.Lock()
	if _, watched := w.entries[e]; !watched {
		w.mu.Unlock()
		return
	}
	e.expAt = at
	if e.expIndex >= 0 {
		heap.Fix(&w.expiry, int(e.expIndex))
	} else {
		heap.Push(&w.expiry, e)
	}
	if e.expIndex == 0 {
		w.expTimer.Reset(at.sub(time.Now()))
	}
	w.mu.Unlock()
}

// lossClock ends every entry whose Until has come (expire re-checks, under the entry's lock, that
// no renewal moved it meanwhile), until Close.
func (w *Watchdog) lossClock() {
	defer close(w.expDone)
	var due []*Entry
	for {
		now := monoOf(time.Now())
		due = due[:0]
		w.mu.Lock()
		for len(w.expiry) > 0 && w.expiry[0].expAt <= now {
			due = append(due, heap.Pop(&w.expiry).(*Entry))
		}
		if len(w.expiry) > 0 {
			w.expTimer.Reset(time.Duration(w.expiry[0].expAt - now))
		} else {
			w.expTimer.Stop()
		}
		w.mu.Unlock()
		for _, e := range due {
			e.expire() // may rearm: the timer is then reset for it
		}
		clear(due)
		select {
		case <-w.ctx.Done():
			w.mu.Lock()
			w.expTimer.Stop()
			w.mu.Unlock()
			return
		case <-w.expTimer.C:
		}
	}
}

func (w *Watchdog) loop() {
	defer close(w.done)
	var batch []Renewal
	var later []*Entry
	for {
		now := monoOf(time.Now())
		batch, later = batch[:0], later[:0]
		w.mu.Lock()
		// When a renewal is due, everything due within its own early window joins it in one
		// batch: one pipeline per node rather than a round trip per lease. The window only widens
		// a batch that something due started; otherwise a retry scheduled sooner than the window
		// would be pulled in again at once, in a loop.
		if len(w.queue) > 0 && w.queue[0].next <= now {
			for len(w.queue) > 0 && w.queue[0].next <= now+mono(w.maxWindow) {
				e := heap.Pop(&w.queue).(*Entry)
				if time.Duration(e.next-now) <= w.window(e) {
					batch = append(batch, Renewal{Entry: e})
				} else {
					later = append(later, e)
				}
			}
			for _, e := range later {
				heap.Push(&w.queue, e)
			}
		}
		if len(batch) == 0 {
			w.sleeping, w.wakeAt = true, 0
			if len(w.queue) > 0 {
				w.wakeAt = w.queue[0].next
				w.timer.Reset(time.Duration(w.wakeAt - now))
			}
		}
		w.mu.Unlock()
		clear(later)

		if len(batch) > 0 {
			w.runBatch(batch)
			clear(batch)
			if w.ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case <-w.ctx.Done():
		case <-w.timer.C:
		}
		w.mu.Lock()
		w.sleeping = false
		w.timer.Stop()
		w.mu.Unlock()
		if w.ctx.Err() != nil {
			return
		}
	}
}

// parallelChunks is how many chunks of one batch are renewed at once: the client's encoding and
// decoding of one chunk's pipeline overlaps the server's work on another's. Measured with 100,000
// leases at TTL 3s on 2 cores (bench/scale): the longest batch took 3.5 s one chunk at a time and
// 1.9 s two at a time; four at a time kept the server busy long enough for other requests (the
// releases) to run past the per-node timeout.
const parallelChunks = 2

// runBatch renews the entries of batch, in chunks of at most maxBatch (up to parallelChunks of them
// at once), and applies each chunk's results as soon as it returns.
func (w *Watchdog) runBatch(batch []Renewal) {
	now := time.Now()
	live := batch[:0]
	for _, r := range batch {
		ttl, ok := r.Entry.renewTTL(now, w.cfg.drift)
		if !ok {
			// Ended meanwhile, or at its max hold time: no more renewals. The lease ends at its
			// current validity on the loss clock.
			continue
		}
		r.TTL = ttl
		live = append(live, r)
	}
	if w.cfg.maxBatch <= 0 || len(live) <= w.cfg.maxBatch {
		w.runChunk(live) // one chunk: no goroutine
		return
	}
	slots := make(chan struct{}, parallelChunks)
	var wg sync.WaitGroup
	for len(live) > 0 && w.ctx.Err() == nil {
		chunk := live[:min(len(live), w.cfg.maxBatch)]
		live = live[len(chunk):]
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runChunk(chunk)
			<-slots
		}()
	}
	wg.Wait()
}

// runChunk renews chunk and applies its results.
func (w *Watchdog) runChunk(chunk []Renewal) {
	if len(chunk) == 0 || w.ctx.Err() != nil {
		return
	}
	start := time.Now()
	w.renew(w.ctx, chunk)
	after := time.Now()
	for i := range chunk {
		r := &chunk[i]
		e := r.Entry
		next, keep := e.apply(r, start, after)
		if !keep {
			continue
		}
		w.mu.Lock()
		if _, watched := w.entries[e]; watched && e.index < 0 {
			e.next = monoOf(next)
			heap.Push(&w.queue, e)
		}
		w.mu.Unlock()
	}
}

// forget removes e from the watchdog's bookkeeping.
func (w *Watchdog) forget(e *Entry) {
	w.mu.Lock()
	delete(w.entries, e)
	if e.index >= 0 {
		heap.Remove(&w.queue, int(e.index))
	}
	if e.expIndex >= 0 {
		heap.Remove(&w.expiry, int(e.expIndex))
	}
	w.mu.Unlock()
}

// entryHeap is a min-heap of entries (container/heap) by one of their times, K's, each entry
// keeping its index in the heap in a field K names. It is guarded by Watchdog.mu.
type entryHeap[K heapKey] []*Entry

// heapKey says which time of an entry a heap orders by, and where the entry keeps its index.
type heapKey interface {
	at(e *Entry) mono
	index(e *Entry) *int32
}

// byNext orders the renewal queue: by next renewal time.
type byNext struct{}

func (byNext) at(e *Entry) mono      { return e.next }
func (byNext) index(e *Entry) *int32 { return &e.index }

// byExpiry orders the loss clock: by the end of validity.
type byExpiry struct{}

func (byExpiry) at(e *Entry) mono      { return e.expAt }
func (byExpiry) index(e *Entry) *int32 { return &e.expIndex }

type (
	entryQueue  = entryHeap[byNext]
	expiryQueue = entryHeap[byExpiry]
)

func (q entryHeap[K]) Len() int { return len(q) }
func (q entryHeap[K]) Less(i, j int) bool {
	var k K
	return k.at(q[i]) < k.at(q[j])
}
func (q entryHeap[K]) Swap(i, j int) {
	var k K
	q[i], q[j] = q[j], q[i]
	*k.index(q[i]) = int32(i)
	*k.index(q[j]) = int32(j)
}
func (q *entryHeap[K]) Push(x any) {
	var k K
	e := x.(*Entry)
	*k.index(e) = int32(len(*q))
	*q = append(*q, e)
}
func (q *entryHeap[K]) Pop() any {
	var k K
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*k.index(e) = -1
	*q = old[:len(old)-1]
	return e
}
