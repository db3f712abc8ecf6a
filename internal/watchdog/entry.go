package watchdog

import (
	"sync"
	"time"
)

// Entry is one lease watched by a [Watchdog]. Its methods are safe for concurrent use. Its times
// are monotonic instants (mono, 8 bytes where a time.Time takes 24), so that an entry, made for
// every lease held, fits a smaller size class.
type Entry struct {
	w   *Watchdog
	ttl time.Duration

	// next and index belong to the watchdog's renewal queue, expAt and expIndex to its loss queue;
	// all four are guarded by Watchdog.mu.
	next, expAt     mono
	index, expIndex int32

	mu sync.Mutex
	// until is the end of its validity as last renewed, exactly as given (a time.Time: callers
	// compare it); holdUntil caps the lease (0: no cap).
	until     time.Time
	holdUntil mono
	owner     any
	onLost    func(error)
	// done is made on the first call of Done (most leases are released without anyone waiting
	// on it); doneClosed says it is closed, or would be.
	done chan struct{}
	err  error
	// capped is set once a renewal is cut short by the max hold time: the lease then ends with
	// ErrMaxHold. last is set once such a renewal succeeded: there is nothing left to renew.
	doneClosed, capped, last, ended bool
}

// mono is an instant on the monotonic clock: the time since epoch.
type mono time.Duration

// epoch is the origin of mono.
var epoch = time.Now()

// monoOf returns t as a mono. A t without a monotonic reading is placed by its wall clock. It is
// clamped to ±2^62 ns (146 years) from epoch, so that the difference of two monos never overflows.
func monoOf(t time.Time) mono {
	const limit = 1 << 62
	return mono(min(max(t.Sub(epoch), -limit), limit))
}

// sub returns m − t.
func (m mono) sub(t time.Time) time.Duration { return time.Duration(m - monoOf(t)) }

// Owner returns the owner given to [Watchdog.Add], or to the latest [Entry.Rebind].
func (e *Entry) Owner() any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.owner
}

// Rebind gives the entry a new owner and onLost (nil: the owner's Lost, if it is a
// [LossHandler]): a lease passed from one holder to the next keeps
// its entry, renewals and validity, and the new holder hears of a loss from then on. The Done
// channel handed out so far is the old owner's: it closes now (for that owner the lease ended),
// and Done makes a new one for the new owner. It reports false, and changes nothing, when the
// entry has ended (lost or stopped): there is nothing to pass, and a loss already under way goes
// to the owner it was found under.
func (e *Entry) Rebind(owner any, onLost func(error)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return false
	}
	e.owner, e.onLost = owner, onLost
	if e.done != nil {
		close(e.done)
		e.done = nil
	}
	return true
}

// Until returns the end of the lease's validity as last renewed. Past it, the lease is lost.
func (e *Entry) Until() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.until
}

// Done returns a channel that is closed when the entry ends: lost, stopped or closed. When lost,
// it closes before onLost is called, and Err already says why.
func (e *Entry) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done == nil {
		if e.doneClosed {
			return closedChan
		}
		e.done = make(chan struct{})
	}
	return e.done
}

// closedChan is the Done of an entry that ended before anyone asked for it.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Err returns nil while the entry lives, then why it ended: the stop error given to [Entry.Stop],
// [ErrExpired], [ErrMaxHold], [ErrClosed], or the final error a renewal reported.
func (e *Entry) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Stop ends the entry with err as its Err, without calling onLost, and stops its renewals: once
// Stop returns no renewal result is applied to it. If the entry had already ended, Stop changes
// nothing and returns the error it ended with; otherwise it returns nil.
//
// Callers stop the entry before releasing the lease on the servers, so that no renewal is
// scheduled after the release. (A renewal already on the wire is harmless: the renew script checks
// the token, and the released key no longer holds it.)
func (e *Entry) Stop(err error) error {
	e.mu.Lock()
	if e.ended {
		prev := e.err
		e.mu.Unlock()
		return prev
	}
	e.endLocked(err)
	e.mu.Unlock()
	e.afterEnd(err, false)
	return nil
}

// endLocked ends the entry; e.mu must be held. Done closes in afterEnd, which also takes the entry
// off the watchdog's queues.
func (e *Entry) endLocked(err error) {
	e.ended = true
	e.err = err
}

// finish ends the entry as lost, with err as the cause, unless it has ended already.
func (e *Entry) finish(err error) {
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return
	}
	e.endLocked(err)
	e.mu.Unlock()
	e.afterEnd(err, true)
}

// afterEnd forgets an entry that has just ended and closes Done; then, when it was lost, it tells
// the owner. Done comes first: it is the safety signal, and nothing the owner does in onLost may
// delay it.
func (e *Entry) afterEnd(err error, lost bool) {
	e.w.forget(e)
	e.mu.Lock()
	ch := e.done
	e.doneClosed = true
	onLost, owner := e.onLost, e.owner
	e.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	if !lost {
		return
	}
	if onLost != nil {
		onLost(err)
	} else if h, ok := owner.(LossHandler); ok {
		h.Lost(err)
	}
}

// expire runs on the watchdog's loss clock at the end of validity.
func (e *Entry) expire() {
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return
	}
	if time.Until(e.until) > 0 {
		// A renewal moved validity after the loss clock took the entry but before we got the lock.
		e.w.rearm(e, monoOf(e.until))
		e.mu.Unlock()
		return
	}
	cause := ErrExpired
	if e.capped {
		cause = ErrMaxHold
	}
	e.endLocked(cause)
	e.mu.Unlock()
	e.afterEnd(cause, true)
}

// renewTTL returns the TTL to ask for in a renewal starting at now, and false when the entry must
// not be renewed (ended, or at its max hold time). A renewal capped by the max hold time asks for
// less than the TTL and may shorten the lease on the servers, so Until comes down first, to no
// later than now + that TTL − drift: whether or not the reply comes back, the lease never counts
// as valid longer than the servers keep it.
func (e *Entry) renewTTL(now time.Time, drift func(time.Duration) time.Duration) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended || e.last {
		return 0, false
	}
	ttl := e.ttl
	if e.holdUntil != 0 {
		if left := e.holdUntil.sub(now); left < ttl {
			e.capped = true
			if left <= drift(left) {
				return 0, false
			}
			ttl = left
			if end := now.Add(ttl - drift(ttl)); end.Before(e.until) {
				e.until = end
				e.w.rearm(e, monoOf(end))
			}
		}
	}
	return ttl, true
}

// apply applies a renewal result that was started at start and returned at now. It returns when to
// try next and whether to keep the entry in the queue.
func (e *Entry) apply(r *Renewal, start, now time.Time) (time.Time, bool) {
	e.mu.Lock()
	if e.ended {
		// Lost or stopped while the renewal was on the wire: a late reply never revives a lease.
		e.mu.Unlock()
		return time.Time{}, false
	}
	if r.OK && r.Until.After(now) {
		// A capped renewal sets the end (Until came down before it was sent; the servers now
		// keep the lease until r.Until + drift). Any other only moves Until forward.
		if e.capped || r.Until.After(e.until) {
			e.until = r.Until
			e.w.rearm(e, monoOf(r.Until))
		}
		e.last = e.capped
		last := e.last
		e.mu.Unlock()
		if last {
			return time.Time{}, false
		}
		return start.Add(e.ttl / 3), true
	}
	if r.Final {
		e.mu.Unlock()
		e.finish(r.Err)
		return time.Time{}, false
	}
	// A failed renewal leaves the old validity; retry soon, while time remains. (A capped
	// renewal is retried too, with the cap recomputed from then.)
	left := e.until.Sub(now)
	e.mu.Unlock()
	retry := e.ttl / 10
	if retry > left/2 {
		retry = left / 2
	}
	if retry < time.Millisecond {
		retry = time.Millisecond
	}
	return now.Add(retry), true
}
