package engine

import (
	"context"
	"errors"
)

// The function run under a held lease (mutex.Do, rwmutex.RDo, semaphore.Do), written once here.

// Run runs fn while l (a [Lease], or a [Group] of them) is held, then calls release, and folds the outcomes into one error on one
// line, so that the caller of a primitive's Do can tell them apart:
//   - fn ran and l held to its end: fn's own result, as it is;
//   - l was lost while fn ran (fn's ctx was cancelled then, with l's error as its cause), or the
//     release found it gone: an error matching [ErrLost] or [ErrNotHeld], joined with fn's error
//     when fn failed for another reason (the loss is said once, not again for fn);
//   - fn succeeded but the release reached too few nodes: the release's error, matching
//     [ErrNotReleased] (what is left expires by itself).
//
// l's validity is read from the monotonic clock ([Lease.Valid]) before fn starts and as soon as
// it returns, not only from Done: a process paused (GC, a stopped VM) past the validity wakes with
// Done still open for a moment. A lease not valid before fn runs it not at all; one that ran out
// while fn ran makes the result match [ErrLost] even if no timer had said so yet.
//
// fn's ctx derives from ctx, and its span records the loss (see [Lease.Observe]). release gets ctx
// itself: a release ignores ctx's cancellation (a cancelled caller must not leave the lease
// behind), and the per-node timeout bounds it.
// mark, if not nil, may add values to fn's ctx (rwmutex marks it so that an upgrade attempt inside
// fn is refused).
func Run(ctx context.Context, l Held, fn func(context.Context) error, release func(context.Context) error, mark func(context.Context) context.Context) error {
	if !l.Valid() {
		return Join(l.invalid("before fn could start"), release(ctx))
	}
	fctx, cancel := context.WithCancelCause(ctx)
	if mark != nil {
		fctx = mark(fctx)
	}
	observed := l.Observe(ctx)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-l.Done():
			cancel(l.Err())
		case <-stop:
		}
	}()
	fnErr := fn(fctx)
	valid := l.Valid()
	close(stop)
	<-watched
	cancel(nil)
	observed()
	rerr := release(ctx)
	if !valid && rerr == nil {
		rerr = l.invalid("while fn ran")
	}
	switch {
	case rerr == nil:
		return fnErr
	case (errors.Is(rerr, ErrLost) || errors.Is(rerr, ErrNotHeld)) && (fnErr == nil || errors.Is(fnErr, ErrLost)):
		// fn returned the loss it was cancelled with, or nothing: say it once.
		return rerr
	default:
		return Join(fnErr, rerr)
	}
}

// IsPermanent reports whether err, an acquire's error, cannot heal by retrying: the quorum is
// closed, the input is invalid, or a node refused for good (misconfigured).
func IsPermanent(err error) bool { return isPermanent(err) }

// invalid is the loss of a lease whose validity ran out, by the clock, when.
func (l *Lease) invalid(when string) error {
	return &opError{sentinel: l.errs.Lost, name: l.claim.Name, detail: "its validity ran out " + when}
}
