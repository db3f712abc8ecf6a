package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Workload says what a client does: critical sections on a few names, one of them hot.
type Workload struct {
	// Names are the contended names; Names[0] is the hot one.
	Names []string `json:"names"`
	// HotShare is the share of sections on Names[0]; the rest spread evenly over the others.
	HotShare float64 `json:"hotShare"`
	// HoldMin and Hold bound the pause between a section's read and its write (uniform in
	// [HoldMin, Hold]).
	HoldMin time.Duration `json:"holdMin,omitempty"`
	Hold    time.Duration `json:"hold"`
	// LongShare is the share of long sections (on names other than the hot one), which hold for
	// 0.5–1.5× LongHold: long enough to be renewed (and, under faults, to lose the lease). A long section is careful: it looks at
	// the lease just before its write and abandons the write if Done has closed or less than
	// CarefulMargin of validity is left.
	LongShare     float64       `json:"longShare,omitempty"`
	LongHold      time.Duration `json:"longHold,omitempty"`
	CarefulMargin time.Duration `json:"carefulMargin,omitempty"`
	// AcquireTimeout bounds one acquire; a client that times out tries again.
	AcquireTimeout time.Duration `json:"acquireTimeout"`
	// Claim is the mode of every claim (Exclusive for a mutex); Weight and Capacity for Weighted.
	Mode     Mode `json:"mode"`
	Weight   int  `json:"weight,omitempty"`
	Capacity int  `json:"capacity,omitempty"`
	// WriteShare, when positive, mixes modes (an rwmutex): that share of claims is Exclusive, the
	// rest Shared. MaxWeight, when positive, draws each Weighted claim's weight in [1, MaxWeight].
	WriteShare float64 `json:"writeShare,omitempty"`
	MaxWeight  int     `json:"maxWeight,omitempty"`
	// FencedWriters says the writers of a name (an rwmutex's) use the fenced counter, so that its
	// readers read that one.
	FencedWriters bool `json:"fencedWriters,omitempty"`
	// MaxNames, when positive, makes claims multi claims (PrimMulti): 1 to MaxNames distinct names,
	// the first drawn as a single claim's name is, the others uniformly, listed in a random order.
	// SingleShare of the claims stay single claims of one name (a mutex.Mutex).
	MaxNames    int     `json:"maxNames,omitempty"`
	SingleShare float64 `json:"singleShare,omitempty"`
}

// Client runs a workload with one Locker and records every section it enters.
type Client struct {
	ID     string
	Locker Locker
	Res    *Resource
	Work   Workload
	Rng    *rand.Rand
	// OnEnter, if set, is called when a section is entered (Exit still 0), before any write;
	// process clients journal it, so that a section cut short by a kill still shows.
	OnEnter func(Section)
	// OnRead, if set, is called once the section has read the resource, before any write;
	// process clients journal it, so that a section killed before its write shows what it read.
	OnRead func(Section)
	// OnExit is called with every section once it has ended, before the release.
	OnExit func(Section)
	// OnLong, if set, is called with the name and true when a long section starts holding, and
	// with false when it stops: the nemesis cuts such holders off (see HolderCut), and pollers
	// try for the name.
	OnLong func(name string, on bool)
	// Poll, if set, makes Run a poller: it tries (TryAcquire) every millisecond for a name that
	// Poll returns, else for the usual pick, so that it enters within about a round trip of the
	// moment the name's holder lets go or its lease expires on the servers. Its failed tries are
	// not counted as failed acquires. A writer polling an rwmutex's name waits instead (a try
	// leaves no writer intent, so a stream of new readers would keep it out): the library's
	// waiter also retries within about a round trip of the last reader's expiry.
	Poll func() (Claim, bool)

	seq, attempts    int
	Failed, Released atomic.Int64 // acquires that failed; releases that returned an error
}

// Run enters sections until ctx ends.
func (c *Client) Run(ctx context.Context) {
	if c.Poll != nil {
		for ctx.Err() == nil {
			claim, ok := c.Poll()
			if !ok {
				claim = c.pick()
			}
			try := !ok || c.Work.WriteShare == 0 || claim.Mode != Exclusive
			if _, err := c.section(ctx, claim, try); err != nil {
				pause(ctx, time.Millisecond)
			}
		}
		return
	}
	for ctx.Err() == nil {
		if _, err := c.Section(ctx, c.pick()); err != nil && ctx.Err() == nil {
			c.Failed.Add(1)
			pause(ctx, 5*time.Millisecond)
		}
	}
}

// RunN enters n sections (failed acquires do not count), or stops when ctx ends.
func (c *Client) RunN(ctx context.Context, n int) {
	for done := 0; done < n && ctx.Err() == nil; {
		if _, err := c.Section(ctx, c.pick()); err != nil {
			c.Failed.Add(1)
			pause(ctx, 5*time.Millisecond)
			continue
		}
		done++
	}
}

func (c *Client) pick() Claim {
	w := c.Work
	name := w.Names[0]
	if len(w.Names) > 1 && c.Rng.Float64() >= w.HotShare {
		name = w.Names[1+c.Rng.IntN(len(w.Names)-1)]
	}
	claim := Claim{Name: name, Mode: w.Mode, Weight: w.Weight, Capacity: w.Capacity}
	if w.WriteShare > 0 {
		claim.Mode = Shared
		if c.Rng.Float64() < w.WriteShare {
			claim.Mode = Exclusive
		}
	}
	if w.MaxWeight > 0 {
		claim.Weight = 1 + c.Rng.IntN(w.MaxWeight)
	}
	if w.MaxNames > 0 && c.Rng.Float64() >= w.SingleShare {
		k := min(1+c.Rng.IntN(w.MaxNames), len(w.Names))
		claim.Names = []string{name}
		for _, i := range c.Rng.Perm(len(w.Names)) {
			if len(claim.Names) == k {
				break
			}
			if w.Names[i] != name {
				claim.Names = append(claim.Names, w.Names[i])
			}
		}
		c.Rng.Shuffle(len(claim.Names), func(i, j int) { claim.Names[i], claim.Names[j] = claim.Names[j], claim.Names[i] })
		claim.Name = strings.Join(claim.Names, "+")
	}
	return claim
}

// names returns the names claim holds: its Names, or its Name.
func (claim Claim) names() []string {
	if len(claim.Names) > 0 {
		return claim.Names
	}
	return []string{claim.Name}
}

// plan says what a section uses of the resource: an exclusive claim, the name's counter, fenced
// with its token when it has one; a reader, the counter its name's writers write (fenced when
// Work.FencedWriters), read only; a permit, one counter per slot it holds, fenced with each slot's
// token when it has them.
func (c *Client) plan(s Section) []Op {
	switch s.Mode {
	case Exclusive:
		if len(s.Names) > 0 {
			// A multi claim: each name's counter, fenced with that name's token.
			ops := make([]Op, len(s.Names))
			for i, name := range s.Names {
				ops[i] = Op{Key: ResourceKey(name, s.Fenced, -1)}
				if s.Fenced {
					ops[i].Fence = s.Fences[i]
				}
			}
			return ops
		}
		op := Op{Key: ResourceKey(s.Name, s.Fenced, -1)}
		if s.Fenced {
			op.Fence = s.Fence
		}
		return []Op{op}
	case Shared:
		return []Op{{Key: ResourceKey(s.Name, c.Work.FencedWriters, -1)}}
	case Weighted:
		ops := make([]Op, len(s.Slots))
		for i, u := range s.Slots {
			fenced := len(s.SlotFences) == len(s.Slots)
			ops[i] = Op{Key: ResourceKey(s.Name, fenced, u)}
			if fenced {
				ops[i].Fence = s.SlotFences[i]
			}
		}
		return ops
	}
	return nil
}

// Section acquires claim, reads the resource, pauses up to Hold, writes the value read plus one,
// and releases; it records the section. It returns the acquire's error, if any (then nothing was
// recorded). The write is blind — no look at the lease before it — as most code under a lock is:
// that is what the unfenced resource is for (a long section is careful, and looks first). What it
// reads and writes is the plan's.
func (c *Client) Section(ctx context.Context, claim Claim) (Section, error) {
	return c.section(ctx, claim, false)
}

func (c *Client) section(ctx context.Context, claim Claim, try bool) (Section, error) {
	mode := claim.Mode
	if mode == "" {
		mode = Exclusive
	}
	s := Section{Client: c.ID, Seq: c.seq, Name: claim.Name, Primitive: c.Locker.Primitive(), Mode: mode,
		Weight: claim.Weight, Capacity: claim.Capacity}
	c.attempts++
	claim.Owner, claim.Value = c.ID, LeaderValue(c.ID, c.seq, c.attempts)
	s.AcquireStart = Mono()
	actx, cancel := context.WithTimeout(ctx, c.Work.AcquireTimeout)
	acquire := c.Locker.Acquire
	if try {
		acquire = c.Locker.TryAcquire
	}
	h, err := acquire(actx, claim)
	cancel()
	if err != nil {
		return s, err
	}
	s.Enter = Mono()
	s.Until = MonoOf(h.Until())
	if c.Locker.Primitive() == PrimElection {
		s.Value = claim.Value
	}
	s.Granted = s.Until
	if token, ok := h.Fence(); ok {
		s.Fenced, s.Fence = true, token
	}
	s.Slots, s.SlotFences = h.Slots()
	if names, fences := h.Names(); len(names) > 0 {
		s.Names, s.Name = names, strings.Join(names, "+")
		if len(fences) == len(names) {
			s.Fenced, s.Fences = true, fences
		}
	}
	s.Ops = c.plan(s)
	c.seq++
	if c.OnEnter != nil {
		c.OnEnter(s)
	}

	// Watch Done while the section runs: when it closes before the exit, that is a loss.
	stop := make(chan struct{})
	watched := make(chan struct{})
	var doneAt, doneUntil int64
	go func() {
		defer close(watched)
		select {
		case <-h.Done():
			doneAt, doneUntil = Mono(), MonoOf(h.Until())
		case <-stop:
		}
	}()

	// The resource is never faulted: a generous timeout only guards against a hung test.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	read := false
	for i := range s.Ops {
		op := &s.Ops[i]
		op.ReadCall = Mono()
		v, err := c.Res.Read(rctx, op.Key, op.Fence)
		op.ReadRet = Mono()
		switch {
		case errors.Is(err, ErrFenced):
			op.Read = WriteRefused
		case err != nil:
			op.Read = WriteFailed
		default:
			op.Read, op.Value = WriteOK, v
			read = true
		}
	}
	if c.OnRead != nil && len(s.Ops) > 0 {
		c.OnRead(s)
	}
	if read {
		// Long sections keep off the hot name, whose throughput they would take.
		careful := c.Work.LongShare > 0 && c.Rng.Float64() < c.Work.LongShare && (len(c.Work.Names) == 1 || !slices.Contains(claim.names(), c.Work.Names[0]))
		switch hold := c.Work.Hold - c.Work.HoldMin; {
		case careful:
			if c.OnLong != nil {
				for _, name := range claim.names() {
					c.OnLong(name, true)
				}
			}
			time.Sleep(c.Work.LongHold/2 + time.Duration(c.Rng.Int64N(int64(c.Work.LongHold)+1)))
			if c.OnLong != nil {
				for _, name := range claim.names() {
					c.OnLong(name, false)
				}
			}
		case hold >= 0 && c.Work.Hold > 0:
			time.Sleep(c.Work.HoldMin + time.Duration(c.Rng.Int64N(int64(hold)+1)))
		}
		until, done, now := MonoOf(h.Until()), isClosed(h.Done()), Mono()
		switch {
		case mode == Shared:
			// read-only: nothing written, nothing to check against the lease
		case careful && (done || until-now < int64(c.Work.CarefulMargin)):
			s.Abandoned = true
		default:
			s.UseUntil, s.UseDone = until, done
			for i := range s.Ops {
				op := &s.Ops[i]
				if op.Read != WriteOK {
					continue
				}
				op.WriteCall = Mono()
				if s.UseAt == 0 {
					s.UseAt = op.WriteCall
				}
				err := c.Res.Write(rctx, op.Key, op.Fence, op.Value+1)
				op.WriteRet = Mono()
				switch {
				case err == nil:
					op.Wrote = WriteOK
				case errors.Is(err, ErrFenced):
					op.Wrote = WriteRefused
				default:
					op.Wrote = WriteFailed
				}
			}
		}
	}
	rcancel()
	s.Exit = Mono()
	s.Until = MonoOf(h.Until())
	close(stop)
	<-watched
	s.DoneAt, s.DoneUntil = doneAt, doneUntil
	s.Lost = h.Err() != nil

	// Record before releasing: a process killed between the two must leave a record whose end
	// is its exit, not only its entry line (whose validity would then run on past the release).
	if c.OnExit != nil {
		c.OnExit(s)
	}
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := h.Release(uctx); err != nil {
		c.Released.Add(1) // node errors or a loss: the section's record says which mattered
	}
	ucancel()
	return s, nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// pause sleeps d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
