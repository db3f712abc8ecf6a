// Package mutation plants named bugs in a test build of the library, so that the chaos suite can
// show it catches them (a mutation test). The shipped code path never has one: without the build
// tag quorumsync_mutation, [On] is the constant false and the compiler drops every planted branch.
//
// With the tag, the environment variable QUORUMSYNC_MUTATION names the one bug planted in this
// process (and in the child processes it starts, which inherit it); unset, nothing is planted. A
// name that is not in [Names] stops the process at start-up, so a typo cannot pass for a bug the
// suite missed.
package mutation

// Env names the environment variable that selects the mutation.
const Env = "QUORUMSYNC_MUTATION"

// The bugs that can be planted.
const (
	// ValidityLong makes a lease valid 1% of its TTL longer than the rule allows.
	ValidityLong = "validity-1pct-long"
	// NoDrift removes the drift margin from the validity rule.
	NoDrift = "no-drift"
	// RenewMinority counts a renewal that a minority of the nodes granted.
	RenewMinority = "renew-minority"
	// ReaderExpiry scores an rwmutex reader's expiry on the server 1% of the TTL early (a later
	// score is the safe direction: the reader is only kept longer). The drift margin still covers
	// it on servers that share the client's clock; with a node's clock running fast it lets a
	// writer in while the reader's lease is valid.
	ReaderExpiry = "rw-reader-expiry-1pct"
	// SlotFreeEarly counts a semaphore slot free on the server one renewal (TTL/3) before its
	// holder's validity ends.
	SlotFreeEarly = "sem-slot-free-early"
	// FenceOneRound skips the second round of a fenced acquire (the tokens are then the maximum of
	// one round, which goes backwards under changing majorities).
	FenceOneRound = "fence-one-round"
)

// Names lists every mutation, in the order the suite's table shows them.
var Names = []string{ValidityLong, NoDrift, RenewMinority, ReaderExpiry, SlotFreeEarly, FenceOneRound}
