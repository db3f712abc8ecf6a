// Package watchdog names why a lease ended without its holder's release: the causes that
// lease.Lease.Err carries (inside an error matching lease.ErrLost), to match with errors.Is.
//
// Each quorum keeps its leases alive from one renewal goroutine: every held lease is renewed at a
// third of its TTL, in batches (leases due within half their renewal interval go together, as one
// pipeline per node), and a second goroutine, the loss clock, ends each lease at the end of its
// validity if no renewal succeeded by then, independently of any network call: Done closes
// first, with Err already saying why. A late reply never revives a lease. A failed renewal leaves
// the old validity and is retried, sooner and sooner, while time remains.
package watchdog
