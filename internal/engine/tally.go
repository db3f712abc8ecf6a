package engine

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// The vote tally and the key layout: the two rules every call of every kind goes through.

// One is the units of a claim of one unit (an exclusive or a shared claim): the unit 0. A kind's
// Read returns it as Reply.Units for a node that granted, renewed, released, fenced or queued
// such a claim. It is shared and never written.
var One = []int64{0}

// tally is what the nodes said to one call of a claim. A claim is a set of units, each held where
// a quorum granted it; a claim of one unit is the set One.
type tally struct {
	answered int         // nodes that answered
	least    int         // for the units asked about: the fewest nodes that said yes to any one of them
	units    []unitVotes // with no units asked about (an acquire whose units the servers pick): every unit named, most votes first
	errs     []error     // the failures, as *NodeError, in node order
}

type unitVotes struct {
	unit  int64
	votes int
}

// count tallies the nodes' answers in votes to a call about asked, the claim's units: nil for the
// acquire of a claim whose units the servers pick (a semaphore's), for which it ranks every unit
// the nodes named instead. Failures become typed node errors (and "node.error" events on tr,
// unless the caller's own ctx ended, which is not the node's failure). A node the restart guard
// ignores answered, but says neither yes nor no.
func (q *Quorum) count(ctx context.Context, votes []nodeVote, asked []int64, tr *telemetry.Acquire) tally {
	var t tally
	for i := range votes {
		v := &votes[i]
		if v.err != nil {
			ne := q.nodeError(ctx, q.nodes[i], v.err)
			t.errs = append(t.errs, ne)
			if tr != nil && ctx.Err() == nil {
				tr.NodeFailed(i, ne.Addr, ne.Err)
			}
			continue
		}
		t.answered++
		if v.young || asked != nil {
			continue
		}
		for _, u := range v.reply.Units {
			j := slices.IndexFunc(t.units, func(x unitVotes) bool { return x.unit == u })
			if j < 0 {
				t.units = append(t.units, unitVotes{unit: u})
				j = len(t.units) - 1
			}
			t.units[j].votes++
		}
	}
	if asked == nil {
		slices.SortFunc(t.units, func(a, b unitVotes) int {
			if a.votes != b.votes {
				return b.votes - a.votes
			}
			return int(a.unit - b.unit)
		})
		return t
	}
	for k, u := range asked {
		yes := 0
		for i := range votes {
			if v := &votes[i]; v.err == nil && !v.young && slices.Contains(v.reply.Units, u) {
				yes++
			}
		}
		if k == 0 || yes < t.least {
			t.least = yes
		}
	}
	return t
}

// holds reports whether a quorum said yes to every unit asked about.
func (t *tally) holds(quorum int) bool { return t.least >= quorum }

// gone reports whether so many nodes answered without one of the units asked about that a quorum
// can no longer hold it: n nodes, quorum needed.
func (t *tally) gone(n, quorum int) bool { return t.answered-t.least > n-quorum }

// quorate returns the weight units with most votes among those a quorum granted, in increasing
// order, or nil when fewer than weight were.
func (t *tally) quorate(quorum int, weight int64) []int64 {
	var keep []int64
	for _, u := range t.units {
		if int64(len(keep)) == weight || u.votes < quorum {
			break
		}
		keep = append(keep, u.unit)
	}
	if int64(len(keep)) < weight {
		return nil
	}
	slices.Sort(keep)
	return keep
}

// ranked returns the units named, most votes first, in buf's storage. Units with as many votes as
// each other come in a random order: when two nodes each granted a different unit, asking for the
// same order again could split the vote again, for ever; a random order converges.
func (t *tally) ranked(buf []int64) []int64 {
	buf = buf[:0]
	for i := 0; i < len(t.units); {
		j := i
		for j < len(t.units) && t.units[j].votes == t.units[i].votes {
			j++
		}
		tied := t.units[i:j]
		rand.Shuffle(len(tied), func(a, b int) { tied[a], tied[b] = tied[b], tied[a] })
		for _, u := range tied {
			buf = append(buf, u.unit)
		}
		i = j
	}
	return buf
}

// The engine's keys of a name, at the head of every claim's Keys.
const (
	keyQueue = iota
	keyLiveness
	keyChannel
	engineKeys
)

// keysFor returns the keys of name for kind k: the engine's three, then one per suffix of the
// kind's, then the broken marker. They share one backing string and the name's hash tag: two allocations for all.
func keysFor(prefix string, k Kind, name string) []string { return appendKeys(nil, prefix, k, name) }

// appendKeys appends the keys of name for kind k (see keysFor) to dst, in one allocation when dst
// has room for them.
func appendKeys(dst []string, prefix string, k Kind, name string) []string {
	name = escapeName(name)
	family, suffixes := k.Family(), k.Keys()
	var partsBuf [8]string
	parts := append(partsBuf[:0], ":q", ":qlive", ":wake")
	parts = append(parts, suffixes...)
	parts = append(parts, ":broken")
	base := len(prefix) + len(name) + 2 + len(family)
	size := 0
	for _, p := range parts {
		size += base + len(p)
	}
	var b strings.Builder
	b.Grow(size)
	for _, p := range parts {
		b.WriteString(prefix)
		b.WriteByte('{')
		b.WriteString(name)
		b.WriteByte('}')
		b.WriteString(family)
		b.WriteString(p)
	}
	all := b.String()
	from := 0
	for _, p := range parts {
		dst = append(dst, all[from:from+base+len(p)])
		from += base + len(p)
	}
	return dst
}

// escapeName keeps a name inside its hash tag. Redis Cluster hashes the text between the first '{'
// and the first '}' after it; a name that starts with '}' would make that empty, and then every
// key of the name would hash on its own (the scripts fail with CROSSSLOT). Such a name gets a '~'
// in front, and so does a name that starts with '~', so that no two names share keys. Every other
// name is used as it is.
func escapeName(name string) string {
	if name[0] == '}' || name[0] == '~' {
		return "~" + name
	}
	return name
}
