// Package watchdog keeps leases alive: one goroutine renews every lease it watches at a third of
// the lease's TTL, and ends each lease that is not renewed before its validity runs out.
//
// The watchdog knows nothing of Redis. Its owner (package lease) supplies a [RenewFunc] that renews
// a batch of leases on the servers; the watchdog decides when, and what a result means.
//
// # Guarantees
//
//   - One goroutine per [Watchdog], whatever the number of leases. Renewals that fall due within a
//     short window of each other (see [WithBatchWindow]) are handed to the RenewFunc as one batch,
//     so the owner can send them as one pipeline per node.
//   - A lease ends no later than its validity: every [Entry] has a timer at [Entry.Until] that runs
//     independently of the renewal goroutine, so a renewal stuck on a slow node cannot delay the
//     loss. [Entry.Done] closes and [Entry.Err] says why.
//   - A late reply never revives a lease: results for an ended entry are dropped.
//   - A failed renewal leaves the old validity and is retried, sooner and sooner, while time
//     remains.
//   - [Entry.Stop] stops renewals before the owner releases the lease; after it returns no result
//     is applied to the entry.
//   - With a max hold time, renewals never extend a lease past it, and the lease then ends with
//     [ErrMaxHold].
//   - [Watchdog.Close] cancels a renewal under way, waits for the goroutine, and ends every entry
//     with [ErrClosed].
//
// # Caveats
//
// The watchdog measures time on the local monotonic clock; it cannot see the servers' clocks. How
// validity is computed from a renewal (start + TTL − drift) is the RenewFunc's business.
package watchdog
