// Package watchdog (internal) keeps leases alive: one goroutine renews every lease it watches at a third of
// the lease's TTL, and a second, the loss clock, ends each lease that is not renewed before its
// validity runs out.
//
// The watchdog knows nothing of Redis. Its owner (the engine under package lease) supplies a [RenewFunc] that renews
// a batch of leases on the servers; the watchdog decides when, and what a result means.
//
// # Guarantees
//
//   - Two goroutines per [Watchdog], whatever the number of leases: one renews, one ends what
//     was not renewed in time (below). When a renewal falls due, every
//     lease due within its early window (half its renewal interval by default, see
//     [WithEarlyRenewal] and [WithBatchWindow]) is renewed with it, in one batch the owner sends as
//     one pipeline per node. Leases renewed together stay together, so any number of leases settle
//     into about one batch per renewal interval; [WithMaxBatch] splits a huge batch into chunks so
//     that one slow reply cannot fail all of it.
//   - A lease ends no later than its validity: a second goroutine, the loss clock, ends every
//     [Entry] at its [Entry.Until] on a timer of its own, independently of the renewal goroutine,
//     so a renewal stuck on a slow node cannot delay the loss. [Entry.Done] closes first, with [Entry.Err] already saying why; the owner's OnLost
//     runs after it.
//   - A late reply never revives a lease: results for an ended entry are dropped.
//   - A failed renewal leaves the old validity and is retried, sooner and sooner, while time
//     remains.
//   - [Entry.Stop] stops renewals before the owner releases the lease; after it returns no result
//     is applied to the entry.
//   - With a max hold time, renewals never extend a lease past it, and the lease then ends with
//     [ErrMaxHold]. A renewal cut short by it brings Until down before it is sent (see
//     [WithDrift]), so the lease never counts as valid after the servers let it go.
//   - [Watchdog.Close] cancels a renewal under way, waits for the goroutine, and ends every entry
//     with [ErrClosed].
//
// # Caveats
//
// The watchdog measures time on the local monotonic clock; it cannot see the servers' clocks. How
// validity is computed from a renewal (start + TTL − drift) is the RenewFunc's business.
package watchdog
