package election

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/internal/primitive"
	"github.com/quorumsync/quorumsync/lease"
)

// Election is one candidate in the election of a name, held through a [lease.Quorum]: it
// campaigns, leads, resigns, and reads or observes who leads. Create it with [New]; the zero
// value is not usable: Campaign, Resign and Leader return an error matching
// lease.ErrInvalidArgument, Observe a closed channel, and Err says it does not lead.
//
// An Election is safe for concurrent use by many goroutines, and is one candidate: a second
// Campaign while it campaigns or leads returns [ErrCampaigning]. Make one Election per candidate;
// Leader and Observe work on any Election of the name, candidate or not.
type Election struct {
	s       primitive.Shell
	base    engine.Request // the campaign's request, but for its label (the value)
	channel string         // where new leaders are announced

	mu          sync.Mutex
	campaigning bool
	lead        *engine.Lease // the leader's lease, while this candidate leads
}

// Leadership is who leads a name: the value its leader campaigned with, its term and its process.
type Leadership struct {
	// Value is what the leader campaigned with (an address, an instance name).
	Value string
	// Term is the leader's term: its lease's fencing token, larger than the term of every leader
	// before it, over all the nodes.
	Term uint64
	// Holder is the leader's process: its host, pid, and when it began to campaign; its Label is
	// the Value.
	Holder lease.Holder
}

// New returns a candidate in the election of name on q. Any non-empty name works; bad arguments
// (a nil q, an empty name, a bad TTL) are reported by the methods as lease.ErrInvalidArgument.
//
// The election of a name is a fenced mutex of that name (package mutex, with WithFencing), whose
// holder's label is the leader's value: `quorumsync inspect NAME` shows the leader, and a Mutex
// of the same name would take part in the election. Give elections names of their own.
func New(q *lease.Quorum, name string, opts ...Option) *Election {
	e := &Election{s: primitive.New(q, name, errs, opts)}
	e.base = e.s.Request(engine.Exclusive)
	e.base.Fencing, e.base.Wait, e.base.Operation, e.base.OnLost = true, true, "Campaign", e.s.Report
	if e.s.Q != nil && name != "" {
		e.channel = e.s.Q.Channel(name, ":leader")
	}
	return e
}

// Name returns the election's name.
func (e *Election) Name() string {
	if e == nil {
		return ""
	}
	return e.s.Name
}

var errNil = errs.Invalid("election", "nil")

// check returns what makes e unusable for a call, if anything.
func (e *Election) check(ctx context.Context) error {
	switch {
	case e == nil:
		return errNil
	case e.s.Q == nil:
		return errs.Invalid("election", "not made by New, or made with a nil quorum")
	case e.s.Name == "":
		return errs.Invalid("name", "empty")
	case ctx == nil:
		return errs.InvalidFor(e.s.Name, "ctx", "nil")
	}
	return nil
}

// Campaign blocks until this candidate leads, ctx ends, or the quorum closes. value (at most 128
// bytes) is what [Election.Leader] and [Election.Observe] show of this leader. Candidates in line
// are served in the order they queued (see the package doc). Once it returns nil, Campaign has
// announced the new leader to the observers (an announcement no node took goes to the error
// handler), [Election.Term] is the new term, and [Election.Done] closes if the leadership is lost.
//
// Its errors are the acquire outcomes of package lease (lease.ErrNotAcquired with ctx's error,
// lease.ErrUnavailable, lease.ErrMisconfigured: see mutex.Mutex.Lock); a Campaign that fails
// leaves nothing behind on any node. A second Campaign while this one campaigns or leads returns
// [ErrCampaigning]; once a leadership is lost, Campaign may run again.
func (e *Election) Campaign(ctx context.Context, value string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if len(value) > engine.MaxLabel {
		return errs.InvalidFor(e.s.Name, "value", "%d bytes, more than %d", len(value), engine.MaxLabel)
	}
	e.mu.Lock()
	if e.campaigning || (e.lead != nil && e.lead.Err() == nil) {
		e.mu.Unlock()
		return fmt.Errorf("%w %q", ErrCampaigning, e.s.Name)
	}
	old := e.lead
	e.lead, e.campaigning = nil, true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.campaigning = false
		e.mu.Unlock()
	}()
	if old != nil {
		_ = old.Release(ctx) // a lost leadership: what is left of it goes (the loss was reported)
	}
	r := e.base
	r.Label = value
	e.s.Q.Prepare(&r)
	l, err := e.s.Claim(ctx, errs, &r)
	if err != nil {
		return err
	}
	term, err := l.Fence()
	if err != nil { // cannot happen: the request is fenced
		return engine.Join(err, l.Release(ctx))
	}
	// The announcement goes out even if ctx ends now: the leader leads.
	msg := strconv.FormatUint(term, 10) + " " + engine.Record(l)
	if err := e.s.Q.Publish(context.WithoutCancel(ctx), e.channel, msg); err != nil {
		e.s.Report(fmt.Errorf("election: announce the leader of %q (term %d): %w", e.s.Name, term, err))
	}
	e.mu.Lock()
	e.lead = l
	e.mu.Unlock()
	return nil
}

// Resign gives up the leadership, at once: the next candidate in line leads as soon as the
// release reaches the nodes, with no wait for the lease to expire. It returns [ErrNotLeader] if
// this candidate does not lead (never won, or resigned already), and otherwise what
// lease.Lease.Release returns: an error matching lease.ErrLost if the leadership had been lost
// before. Resign does not stop a Campaign under way: cancel its ctx.
func (e *Election) Resign(ctx context.Context) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	l := e.lead
	e.lead = nil
	e.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%w %q", ErrNotLeader, e.s.Name)
	}
	return l.Release(ctx)
}

// leader returns the leader's lease, nil when this candidate does not lead.
func (e *Election) leader() *engine.Lease {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lead
}

// Term returns this candidate's term while it leads (it stays readable after a loss, until the
// next Campaign or Resign), and 0 when it does not lead.
func (e *Election) Term() uint64 {
	t, _ := e.leader().Fence()
	return t
}

// Done returns a channel that is closed when this candidate's leadership ends: lost (no later
// than its lease's Until), resigned, or the quorum closed. It is closed when the candidate does
// not lead.
func (e *Election) Done() <-chan struct{} { return e.leader().Done() }

// Err returns nil while this candidate leads; after a loss, an error matching lease.ErrLost that
// says why; when it does not lead (never won, or resigned), an error matching [ErrNotLeader].
func (e *Election) Err() error {
	l := e.leader()
	if l == nil {
		return fmt.Errorf("%w %q", ErrNotLeader, e.Name())
	}
	return l.Err()
}

// Lease returns the lease that holds this candidate's leadership (its Until, Valid and Fence),
// or nil when it does not lead. Resign, not the lease's Release, ends a leadership.
func (e *Election) Lease() *lease.Lease { return (*lease.Lease)(e.leader()) }

// Leader returns who leads the election now, as the servers hold it: the candidate that holds
// the name on a majority of the nodes, with its value and its term (the counter a majority of
// those nodes agree on: see the package doc). It reads every node (one round trip each). With no
// leader it returns an error matching [ErrNoLeader]; when too few nodes answer to tell, or those
// that hold the leader do not agree on its term yet, an error matching lease.ErrUnavailable.
func (e *Election) Leader(ctx context.Context) (Leadership, error) {
	if err := e.check(ctx); err != nil {
		return Leadership{}, err
	}
	st, err := e.s.Q.Inspect(ctx, e.s.Name, leaderKinds)
	if err != nil {
		return Leadership{}, fmt.Errorf("election: leader of %q: %w", e.s.Name, err)
	}
	need := e.s.Q.Quorum()
	for _, h := range st.Holders {
		on := 0
		for _, ttl := range h.TTL {
			if ttl != 0 {
				on++
			}
		}
		if on < need {
			continue
		}
		// The term is the counter a majority of the nodes that hold the leader agree on: the
		// fencing round set it there. A node can read more (the grant's request ran there late,
		// on top of failed rounds) or less (the round did not reach it).
		term, ok := engine.AgreedFence(h, need)
		if !ok {
			return Leadership{}, fmt.Errorf("%w %q: the nodes that hold its leader do not agree on its term yet (a grant being settled, or nodes that did not answer)",
				errs.Unavailable, e.s.Name)
		}
		return Leadership{Value: h.Label, Term: term, Holder: lease.Holder(h.Holder)}, nil
	}
	return Leadership{}, fmt.Errorf("%w %q", ErrNoLeader, e.s.Name)
}

// Observe returns a channel that receives the leader when it is called, if there is one, and
// then every new leader, in the order of their terms, until ctx ends or the quorum closes; the
// channel is then closed. It does not poll while nothing changes: new leaders are announced by
// their Campaign over pub/sub on every node, and it reads the servers ([Election.Leader]) when it
// (re)subscribes or a connection fails, when an announcement may have been missed, and every
// second until such a read succeeds. A leader that came and went while the observer was cut off
// from every node is skipped (the terms show the gap); a leader's end, with no successor yet, is
// not reported (see [Election.Leader]); nor is a leader whose term is not above the last one
// reported, which takes terms going back: a node restarted without persistence, the caveat of
// package lease that breaks fencing. A nil ctx gives a closed channel.
//
// The channel is unbuffered: a slow reader holds up only its own observer, which keeps what it
// hears meanwhile, up to a limit past which it reads the servers instead.
func (e *Election) Observe(ctx context.Context) <-chan Leadership {
	ch := make(chan Leadership)
	if e.check(ctx) != nil {
		close(ch)
		return ch
	}
	lst, ok := e.s.Q.Listen(e.channel)
	if !ok {
		close(ch)
		return ch
	}
	go e.observe(ctx, lst, ch)
	return ch
}

// leaderKinds are what Leader reads: the election's name as a mutex holds it.
var leaderKinds = []engine.Kind{engine.Exclusive}

// rereadAfter is how long an observer waits to read the servers again after it could not.
const rereadAfter = time.Second

func (e *Election) observe(ctx context.Context, lst *engine.Listener, ch chan<- Leadership) {
	defer close(ch)
	defer lst.Close()
	var last uint64
	send := func(ld Leadership) bool {
		if ld.Term <= last {
			return true // heard before, from another node, or older than what was sent
		}
		select {
		case ch <- ld:
			last = ld.Term
			return true
		case <-ctx.Done():
		case <-lst.Stopped():
		}
		return false
	}
	var retry <-chan time.Time
	reread := false
	for {
		msgs, missed := lst.Take()
		for _, ld := range announcements(msgs) {
			if !send(ld) {
				return
			}
		}
		if missed || reread {
			reread, retry = false, nil
			ld, err := e.Leader(ctx)
			switch {
			case err == nil:
				if !send(ld) {
					return
				}
			case errors.Is(err, ErrNoLeader):
			default:
				retry = time.After(rereadAfter)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-lst.Stopped():
			return
		case <-lst.C():
		case <-retry:
			reread = true
		}
	}
}

// announcements reads the messages a Campaign publishes ("<term> <holder record>"), in the order
// of their terms; what it cannot read, it skips.
func announcements(msgs []string) []Leadership {
	var out []Leadership
	for _, m := range msgs {
		termText, record, ok := strings.Cut(m, " ")
		term, err := strconv.ParseUint(termText, 10, 64)
		if !ok || err != nil {
			continue
		}
		_, h, ok := engine.ParseHolder(record)
		if !ok {
			continue
		}
		out = append(out, Leadership{Value: h.Label, Term: term, Holder: lease.Holder(h)})
	}
	slices.SortStableFunc(out, func(a, b Leadership) int { return cmp.Compare(a.Term, b.Term) })
	return out
}
