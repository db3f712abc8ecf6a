package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Held is the life of one lease after [Acquire.End] reported it acquired: renewals, loss and
// release. It keeps the acquire span's SpanContext so that the spans it records later, from
// other goroutines and other traces, link back to the acquire. A nil *Held is valid and records
// nothing. Its methods are safe for concurrent use.
//
// The hold ends at the first of [Held.Released] and [Held.Lost]: that is when
// quorumsync.hold.duration is recorded and quorumsync.leases.held goes down, once.
type Held struct {
	in         *Instrumentation
	s          *series
	name       string
	metricName string
	sc         trace.SpanContext
	since      time.Time

	ended     atomic.Bool
	lost      atomic.Bool
	lostEvent atomic.Bool
	attached  atomic.Pointer[attachment]
}

// attachment is the holder's span, boxed so that a detach removes only its own.
type attachment struct{ span trace.Span }

// Renewed counts a renewal in quorumsync.renewals, with outcome "ok" when err is nil, else
// "failed". A failed renewal also makes a short "<primitive>.renew" span with status Error,
// linked to the acquire span, and a "lease.renew_failed" event on the attached span, if any.
func (h *Held) Renewed(err error) {
	if h == nil {
		return
	}
	r := renewOK
	if err != nil {
		r = renewBad
	}
	h.in.renewals.Add(context.Background(), 1, h.s.addOpts(h.s.renew[r], h.metricName, renewResults[r])...)
	if err != nil {
		h.event("lease.renew_failed", err)
		h.failure(h.s.renewSpanName, err)
	}
}

// Lost reports that the lease was lost (err says why): it adds a "lease.lost" event to the
// attached span, if any (see [Held.LostEvent]), counts quorumsync.leases.lost, ends the hold, and
// makes a short "<primitive>.lost" span with status Error and error.type, linked to the acquire
// span. Calls after the first do nothing.
func (h *Held) Lost(err error) {
	if h == nil || !h.lost.CompareAndSwap(false, true) {
		return
	}
	h.LostEvent(err)
	h.in.leasesLost.Add(context.Background(), 1, h.s.baseOpts(h.metricName)...)
	h.end(lost)
	h.failure(h.s.lostSpanName, err)
}

// LostEvent adds the "lease.lost" event to the attached span, if any, once: whichever of
// [Held.Lost] and the holder comes first adds it. A holder that sees the loss itself (its work
// was cancelled by it) calls it before it detaches its span, so the event is there even when Lost
// runs later, on another goroutine.
func (h *Held) LostEvent(err error) {
	if h == nil || !h.lostEvent.CompareAndSwap(false, true) {
		return
	}
	h.event("lease.lost", err)
}

// Released reports that the holder released the lease. It ends the hold unless [Held.Lost]
// ended it first.
func (h *Held) Released() {
	if h != nil {
		h.end(released)
	}
}

// Attach remembers the span of ctx, the holder's span while it works under the lock, so that a
// failed renewal or the loss of the lease also shows up there, as an event. It returns detach,
// which forgets that span (if it is still the attached one); call it before ending the span.
// When ctx holds no recording span, Attach does nothing.
func (h *Held) Attach(ctx context.Context) (detach func()) {
	if h == nil || ctx == nil {
		return nop
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return nop
	}
	at := &attachment{span: span}
	h.attached.Store(at)
	return func() { h.attached.CompareAndSwap(at, nil) }
}

func nop() {}

// end ends the hold once, whichever of release and loss comes first.
func (h *Held) end(how int) {
	if !h.ended.CompareAndSwap(false, true) {
		return
	}
	ctx := context.Background()
	h.in.holdDuration.Record(ctx, time.Since(h.since).Seconds(),
		h.s.recordOpts(h.s.hold[how], h.metricName, holdEnds[how])...)
	h.in.leasesHeld.Add(ctx, -1, h.s.baseOpts(h.metricName)...)
}

// event adds an event about err to the attached span, if any.
func (h *Held) event(name string, err error) {
	if at := h.attached.Load(); at != nil {
		at.span.AddEvent(name, trace.WithAttributes(
			LockNameKey.String(h.name), errorType(err), ErrorKey.String(errorText(err))))
	}
}

// failure records a short failed span linked to the acquire span. The span starts a trace of its
// own: it happens long after the acquire's trace may have ended.
func (h *Held) failure(spanName string, err error) {
	_, span := h.in.tracer.Start(context.Background(), spanName,
		trace.WithLinks(trace.Link{SpanContext: h.sc}),
		trace.WithAttributes(h.s.primitive, h.s.operation, LockNameKey.String(h.name), errorType(err)))
	if err != nil {
		span.RecordError(err)
	}
	span.SetStatus(codes.Error, errorText(err))
	span.End()
}
