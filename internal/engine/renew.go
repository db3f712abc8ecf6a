package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/mutation"
	"github.com/quorumsync/quorumsync/internal/watchdog"
)

// maxRenewBatch is the most leases one pipeline renews. The watchdog coalesces renewals into about
// one batch per TTL/3; a batch of more leases goes out as several pipelines, a few at once, so
// that one per-node timeout cannot fail all of it. 2,000 renewals take a few milliseconds of a
// node's time, far inside any per-node timeout; 10,000 leases cost 5 pipelines per node per tick.
const maxRenewBatch = 2000

// renewBatch is the watchdog's RenewFunc: one pipeline per node renews every lease in the batch,
// each with its kind's renew call. A lease counts as renewed only if a quorum renewed it (every
// unit of a weighted claim) and the new validity, measured from before the first request, is still
// ahead.
func (q *Quorum) renewBatch(ctx context.Context, batch []watchdog.Renewal) {
	start := time.Now()
	calls := make([]Call, len(batch))
	leases := make([]*Lease, len(batch))
	for j := range batch {
		l := batch[j].Entry.Owner().(*Lease)
		leases[j] = l
		calls[j] = l.kind.Renew(l.snapshot(), batch[j].TTL)
	}
	// votes[i*len(batch)+j] is node i's answer for lease j.
	votes := make([]nodeVote, len(q.nodes)*len(batch))
	q.fanout(ctx, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		mine := votes[n.index*len(batch) : (n.index+1)*len(batch)]
		if c == nil {
			err := n.skipped()
			for j := range mine {
				mine[j].err = err
			}
			return
		}
		if q.cfg.ackReplicas > 0 {
			q.renewAcked(ctx, c, calls, leases, mine)
			return
		}
		cmds, err := pipelined(ctx, c, calls)
		readRenewals(cmds, err, leases, mine)
	}))
	now := time.Now()
	column := make([]nodeVote, len(q.nodes))
	renewQuorum := q.quorum
	if mutation.On(mutation.RenewMinority) {
		renewQuorum = max(1, (len(q.nodes)-1)/2)
	}
	for j := range batch {
		r := &batch[j]
		l := leases[j]
		for i := range q.nodes {
			column[i] = votes[i*len(batch)+j]
		}
		// The units held now: one given up meanwhile (a partial release) is no renewal's business.
		t := q.count(ctx, column, l.units(), nil)
		until := validUntil(start, r.TTL)
		switch {
		case t.holds(renewQuorum) && now.Before(until):
			r.OK, r.Until = true, until
		case t.gone(len(q.nodes), q.quorum):
			detail := fmt.Sprintf("renewal found it held on %d of %d nodes", t.least, len(q.nodes))
			if broken := brokenVotes(column); broken > 0 {
				detail = fmt.Sprintf("broken by an administrator (Quorum.Break) on %d of %d nodes", broken, len(q.nodes))
			}
			r.Final, r.Err = true, &opError{sentinel: l.errs.NotHeld, name: l.claim.Name, detail: detail}
		case t.holds(q.quorum):
			r.Err = fmt.Errorf("renewed on %d of %d nodes, but only after the validity it would give had passed", t.least, len(q.nodes))
		default:
			r.Err = Join(append([]error{fmt.Errorf("renewed on %d of %d nodes, %d needed", t.least, len(q.nodes), q.quorum)}, t.errs...)...)
		}
		l.renewed(r.Err)
	}
}

// readRenewals reads one node's replies to a batch of renewals (or its pipeline's error) into
// its votes.
func readRenewals(cmds []*redis.Cmd, err error, leases []*Lease, mine []nodeVote) {
	for j := range mine {
		v := &mine[j]
		v.sent = true
		switch {
		case err != nil:
			v.err = err
		case cmds[j].Err() != nil && cmds[j].Err() != redis.Nil:
			v.err = cmds[j].Err()
		default:
			v.reply, v.err = leases[j].kind.Read(OpRenew, cmds[j], &leases[j].claim)
		}
	}
}

// renewAcked renews a batch on one node with replica acknowledgement: the renewals go, per server
// (a Cluster node's shards), in one pipeline on one connection ending with a WAIT, and count only
// where it confirms them — a failover to a replica that missed a renewal would let the key expire
// before the validity the renewal gave.
func (q *Quorum) renewAcked(ctx context.Context, c redis.UniversalClient, calls []Call, leases []*Lease, mine []nodeVote) {
	groups := map[*redis.Client][]int{}
	var order []*redis.Client
	for j := range calls {
		rc, err := ackClient(ctx, c, leases[j].claim.Keys[0])
		if err != nil {
			mine[j].sent, mine[j].err = true, err
			continue
		}
		if _, seen := groups[rc]; !seen {
			order = append(order, rc)
		}
		groups[rc] = append(groups[rc], j)
	}
	for _, rc := range order {
		idx := groups[rc]
		part := make([]Call, 0, len(idx))
		for _, j := range idx {
			part = append(part, calls[j])
		}
		cmds, acked, err := q.ackedPipeline(ctx, c, rc, leases[idx[0]].claim.Keys[0], part)
		partLeases := make([]*Lease, len(idx))
		partVotes := make([]nodeVote, len(idx))
		for k, j := range idx {
			partLeases[k] = leases[j]
		}
		readRenewals(cmds, err, partLeases, partVotes)
		for k, j := range idx {
			v := partVotes[k]
			if v.err == nil && len(v.reply.Units) > 0 && acked < int64(q.cfg.ackReplicas) {
				v.err = &notReplicated{acked: acked, want: int64(q.cfg.ackReplicas), timeout: q.cfg.ackTimeout}
			}
			mine[j] = v
		}
	}
}

// brokenVotes counts the nodes whose renew reply says an administrator broke the claim.
func brokenVotes(column []nodeVote) int {
	n := 0
	for _, v := range column {
		if v.err == nil && v.reply.Broken {
			n++
		}
	}
	return n
}

// renewed reports a renewal's outcome to telemetry: a success is counted at once (a counter, on the
// watchdog's goroutine); a failure's span goes through the notifier.
func (l *Lease) renewed(err error) {
	h := l.held.Load()
	if h == nil {
		return
	}
	if err == nil {
		h.Renewed(nil)
		return
	}
	l.q.notes.post(func() { h.Renewed(err) })
}

// pipelined sends calls in one pipeline on c, scripts by EVALSHA, and returns their commands. If
// the node lost its script cache (a restart, SCRIPT FLUSH), it loads the scripts and sends the
// pipeline once more. A script error on one command leaves the others valid; a transport error
// fails them all.
func pipelined(ctx context.Context, c caller, calls []Call) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	for attempt := 0; ; attempt++ {
		pipe := c.Pipeline()
		for j, call := range calls {
			cmds[j] = queue(ctx, pipe, call)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		if attempt == 0 && noScript(cmds) {
			loaded := map[*redis.Script]bool{}
			for _, call := range calls {
				if s := call.Script; s != nil && !loaded[s] {
					loaded[s] = true
					if err := s.Load(ctx, c).Err(); err != nil {
						return nil, err
					}
				}
			}
			continue
		}
		if ctx.Err() != nil || !allReplyErrors(cmds) {
			return nil, err
		}
		return cmds, nil
	}
}

// noScript reports whether a command failed because the node does not have its script.
func noScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}

// allReplyErrors reports whether every failed command got an error reply from the server, rather
// than no reply at all.
func allReplyErrors(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && err != redis.Nil && isTransportError(err) {
			return false
		}
	}
	return true
}
