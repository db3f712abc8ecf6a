package engine

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind says what a claim on a name means on the servers: which keys it uses, which script runs for
// each step, how one node's reply reads, how the process admits its own goroutines, and (in its
// scripts) whom a release wakes. The engine — the [Quorum] — does the rest: it fans each call out
// to the nodes, tallies the votes, measures validity, undoes a failed round, renews, releases,
// queues waiters and wakes them, and admits the goroutines of its process locally. It knows one
// thing of what claims mean: a claim is one unit (exclusive or shared) or, for AdmitWeighted
// kinds, several, each needing its own majority, which the tally, the grant and partial release
// count.
//
// A kind is a value without state: one serves every claim of its sort. Its methods must not block
// or do I/O; they build [Call]s and read replies. Package lease provides [Exclusive], the kind of
// a plain lease and of package mutex; packages rwmutex and semaphore define their own.
//
// The conventions every kind keeps:
//   - Keys: a claim's Keys are the engine's three, in this order — the waiter queue (a sorted set
//     of waiting tokens by arrival), the waiters' liveness (a hash), the wake-up channel — then
//     the kind's own, one per suffix of [Kind.Keys], and last the broken marker (a hash of the
//     tokens an administrator broke with Quorum.Break, suffix ":broken"). All share the name's
//     hash tag.
//   - A renew that finds the token gone checks the broken marker (KEYS[#KEYS]), and says so in
//     its reply ([Reply.Broken]). Other calls leave the marker out ([Claim.CallKeys]).
//   - Scripts are made with [NewScript], which prepends the engine's queue helpers (see
//     lua/queue.lua), and check the claim's token before they change anything.
//   - A release (and a leave) that frees what waiters wait for hands it over in the order they
//     queued — reserving it for each waiter it serves, or, for a kind that offers it, granting
//     it outright ([Attempt.Seq]) — and publishes their tokens, separated by spaces, on the
//     channel followed by each waiter's process ("@host:pid", see lua/queue.lua's handover):
//     only the processes of the waiters served hear it, and only the waiters named wake.
//   - Every key a claim creates expires, or is deleted when the last claim and waiter are gone.
type Kind interface {
	// Family names the kind's keys and local gate. Claims on one name whose kinds share a family
	// use the same keys and the same local gate (an rwmutex's readers and writers); claims of
	// different families never meet. The exclusive kind's family is "".
	Family() string
	// Keys returns the suffixes of the kind's own keys; the engine builds each as the key prefix
	// + "{" + name + "}" + Family() + suffix.
	Keys() []string
	// Admission is how goroutines of one process are admitted to a name before they talk to Redis.
	Admission() Admission
	// Acquire returns the call of one acquire attempt.
	Acquire(a *Attempt) Call
	// Renew returns the call that extends a held claim to ttl from now. For a weighted claim it
	// names the units held ([Claim.Units]), and also lets go of any other unit the token holds
	// on the node (the engine uses it to trim what a round granted beyond the units kept).
	Renew(c *Claim, ttl time.Duration) Call
	// Release returns the call that gives the claim up on a node, whatever part of it the node
	// holds, takes the token out of the queue, and hands what it frees to the waiters. The
	// engine also uses it to undo a failed round (a [Requeuer]'s Requeue instead, for a waiter
	// that goes on waiting).
	Release(c *Claim) Call
	// Leave returns the call that takes a waiter that gives up out of the queue (and passes on a
	// reservation made for it).
	Leave(c *Claim) Call
	// Read reads one node's reply to the call the kind made for op. It is called only when the
	// node answered (cmd.Err() is nil or redis.Nil); an error it returns counts as that node's
	// failure.
	Read(op Op, cmd *redis.Cmd, c *Claim) (Reply, error)
}

// Requeuer is a [Kind] whose waiters keep their place in the queue when a round fails. A blocking
// acquire's round that some nodes granted and too few (a split vote) is undone; with the kind's
// release, the undo would take the waiter out of those nodes' queues and hand what it gave back to
// the next in line, while the nodes that refused it may serve it next. Two waiters can then trade
// places between the nodes, each granted where the other is refused, round after round. The
// engine uses Requeue instead when the waiter goes on waiting, fewer than a quorum granted, and a
// quorum answered (the waiter joined the queue of each node that refused it, unless that node
// said the name is held by a key with no TTL).
type Requeuer interface {
	// Requeue returns the call that gives back, on a node, what the attempt's round was granted,
	// as Release does, but first puts the waiter back in the node's queue at its arrival, counting
	// for its TTL, so that what is handed over is offered to those who arrived before it, then to
	// it, before any that arrived after it. Where the grant is gone, it changes nothing. A waiter
	// served by its own requeue is not woken: its next round finds what was reserved for it.
	Requeue(a *Attempt) Call
}

// Admission is how a [Kind]'s claims admit the goroutines of one process to a name: they queue
// FIFO on a local gate per name and family, and only those admitted talk to Redis, so at most the
// goroutines that could hold together do. A waiter is never overtaken by a later one: a claim
// that does not fit waits at the head of the queue, and those behind it wait too.
type Admission uint8

const (
	// AdmitOne admits one claim at a time, and none while shared claims hold (a mutex, an rwmutex
	// writer).
	AdmitOne Admission = iota
	// AdmitShared admits any number of claims together while no AdmitOne claim of the family is
	// admitted (rwmutex readers).
	AdmitShared
	// AdmitWeighted admits claims while their weights add up to at most the request's Capacity
	// (semaphore permits).
	AdmitWeighted
)

// Op names the step of a claim a call is for.
type Op int

// The steps of a claim.
const (
	OpAcquire Op = iota
	OpRenew
	OpRelease
	OpLeave
	OpFence // the second round of a fenced acquire (see Fencer)
)

func (op Op) String() string {
	switch op {
	case OpAcquire:
		return "acquire"
	case OpRenew:
		return "renew"
	case OpRelease:
		return "release"
	case OpLeave:
		return "leave"
	case OpFence:
		return "fence"
	}
	return "op?"
}

// Call is one request to one node: a script with its keys and arguments, or, when Script is nil, a
// plain command whose words are Args (for example SET key token PX ttl NX).
type Call struct {
	Script *redis.Script
	Keys   []string
	Args   []any
	// KeyArgs, if not nil, are Keys boxed as script arguments (see [Claim.KeyArgs]): the engine
	// then does not box them on every call.
	KeyArgs []any
}

// Reply is one node's answer to a call, as its kind reads it.
type Reply struct {
	// Units lists the units the node granted (acquire), renewed (renew), released (release) or
	// fenced (fence), or, for a leave, [One] if it had the waiter queued. For a claim of one unit
	// it is [One] or nil.
	Units []int64
	// Retry is, for an acquire the node did not grant, the longest the caller should wait before
	// it tries again (the holder's remaining TTL, or the reservation's); 0 when the node cannot
	// tell, which makes the caller back off.
	Retry time.Duration
	// Fences are, for an acquire of a fenced claim ([Claim.Fencing]) that the node granted, the
	// values of the node's fencing counters after the grant incremented them, one per unit, in the
	// order of Units.
	Fences []uint64
	// Broken is set on a renew's reply by a node where an administrator broke the claim
	// (Quorum.Break): the renewal failed, and the lease's loss will say why.
	Broken bool
}

// Fencer is the interface of a [Kind] whose claims can carry fencing tokens. With fencing on
// ([Request.Fencing]) the kind's acquire increments a counter per unit, one that outlives the
// claim, on every node that grants, and reports it ([Reply.Fences]); the engine takes, per unit,
// the highest value the granting nodes reported, and, with more than one node, sends the call
// Fence returns to every node: it raises the unit's counter to that value where the claim is
// still the token's (and replies 1 then, 0 where it is not). The token counts only if a quorum
// did; otherwise the round fails and is undone.
type Fencer interface {
	Fence(c *Claim, fences []uint64) Call
}

// Claim is one acquisition, as its [Kind] sees it. The engine fills it in; kinds only read it.
type Claim struct {
	// Name is the name claimed, as the caller gave it.
	Name string
	// Keys are the engine's three keys of the name (queue, liveness, channel) and then the kind's.
	Keys []string
	// Token identifies this acquisition on the servers: 128 random bits, hex-encoded, followed by
	// the holder's identity (see [ParseHolder]). It never contains a space.
	Token string
	// TTL is how long the claim lives on the servers without renewal, and how long a waiter
	// stays queued without a new attempt.
	TTL time.Duration
	// Weight is how many units the claim needs (1 but for weighted kinds).
	Weight int64
	// Capacity is the total weight a weighted kind admits (the request's Capacity).
	Capacity int64
	// Units are the units of the claim, in increasing order: [One] for a claim of one unit; for
	// an AdmitWeighted claim, whose units the servers pick, those a quorum granted (nil before).
	Units []int64
	// Fencing asks the kind to increment and report its fencing counters on a grant (see
	// [Fencer]).
	Fencing bool

	tokenArgs [1]any // Token, boxed once: script arguments are ...any
	ttlArg    any    // TTL in ms, boxed once
	keyArgs   []any  // Keys, boxed once per name (see Quorum.Prepare), or nil
}

// Own returns the kind's own keys: those after the engine's, one per suffix of [Kind.Keys], in
// that order.
func (c *Claim) Own() []string { return c.Keys[engineKeys : len(c.Keys)-1 : len(c.Keys)-1] }

// CallKeys returns Keys but the broken marker, which only a renew reads: what every other call
// takes. CallKeyArgs is the same, boxed (nil when KeyArgs is).
func (c *Claim) CallKeys() []string { return c.Keys[: len(c.Keys)-1 : len(c.Keys)-1] }

// CallKeyArgs: see [Claim.CallKeys].
func (c *Claim) CallKeyArgs() []any { return sub(c.keyArgs, 0, len(c.Keys)-1) }

// KeyArgs returns Keys boxed as script arguments, or nil when the request was not prepared
// ([Quorum.Prepare]); it is for [Call.KeyArgs], and its subslices for subslices of Keys.
func (c *Claim) KeyArgs() []any { return c.keyArgs }

// TokenArg returns Token as a script argument, boxed once per claim.
func (c *Claim) TokenArg() any { return c.tokenArgs[0] }

// TokenArgs returns Token alone as a call's Args, made once per claim: the arguments of a release
// or a leave. The engine only reads them; neither must anyone else change them.
func (c *Claim) TokenArgs() []any { return c.tokenArgs[:] }

// TTLArg returns TTL in milliseconds as a script argument, boxed once per claim.
func (c *Claim) TTLArg() any { return c.ttlArg }

// Attempt is one acquire attempt of a claim.
type Attempt struct {
	*Claim
	// Fast is set on the first attempt of an acquire that did not wait at the local gate: the
	// kind may send its cheapest request, which need not queue (for [Exclusive], a plain SET NX PX).
	Fast bool
	// Queue asks the node to queue the waiter if it does not grant (a blocking acquire).
	Queue bool
	// Arrival orders the waiter in the queue: milliseconds, the same on every node and every
	// attempt of the acquire. ArrivalArg is the same value boxed.
	Arrival    int64
	ArrivalArg any
	// Prefer lists, for a weighted claim after a round that fell short, the units that most nodes
	// granted, most votes first: asking for them again lets the nodes converge.
	Prefer []int64
	// Seq, when not nil, asks a release that serves this waiter to grant it the claim at once and
	// to publish Seq, the number of this attempt, with its token, so that the waiter holds with no
	// request of its own (a direct grant: package lease's doc states it and its bound); nil asks
	// for a reservation. The
	// engine sets it for a kind of one unit with N = 1 only; a kind may ignore it.
	Seq any

	args [10]any
}

// ArgBuf returns an empty slice with room for 10 script arguments that belongs to the attempt: a
// kind's Acquire may build its Call's Args in it rather than allocate them every round. They are
// valid only for the call the engine makes with that Call: the next Acquire for the attempt reuses
// the room, and the engine recycles it once the acquire returns.
func (a *Attempt) ArgBuf() []any { return a.args[:0] }
