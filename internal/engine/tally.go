package engine

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// The vote tally and the key layout: the two rules every call of every kind goes through.

// tally is what the nodes said to one call of a claim.
type tally struct {
	answered int         // nodes that answered
	yes      int         // nodes that said yes (for a weighted claim: to every unit asked about, or to any when none were)
	units    []unitVotes // for a weighted claim: the units named, most votes first
	errs     []error     // the failures, as *NodeError, in node order
}

type unitVotes struct {
	unit  int64
	votes int
}

// count tallies the nodes' answers in votes; for a weighted claim, units are the units asked about
// (those held, for a renewal or a release). Failures become typed node errors (and "node.error"
// events on tr, unless the caller's own ctx ended, which is not the node's failure).
func (q *Quorum) count(ctx context.Context, votes []nodeVote, weighted bool, units []int64, tr *telemetry.Acquire) tally {
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
		if v.young {
			continue // the restart guard ignores it: neither yes nor no
		}
		if !weighted {
			if v.reply.OK {
				t.yes++
			}
			continue
		}
		if all := len(v.reply.Units) > 0; all {
			for _, u := range units {
				if !slices.Contains(v.reply.Units, u) {
					all = false
					break
				}
			}
			if all {
				t.yes++
			}
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
	slices.SortFunc(t.units, func(a, b unitVotes) int {
		if a.votes != b.votes {
			return b.votes - a.votes
		}
		return int(a.unit - b.unit)
	})
	return t
}

// votesFor returns how many nodes said yes to unit.
func (t *tally) votesFor(unit int64) int {
	for _, u := range t.units {
		if u.unit == unit {
			return u.votes
		}
	}
	return 0
}

// holds reports whether a quorum said yes: to the claim, or, for a weighted claim, to each of
// units.
func (t *tally) holds(quorum int, weighted bool, units []int64) bool {
	if !weighted {
		return t.yes >= quorum
	}
	for _, u := range units {
		if t.votesFor(u) < quorum {
			return false
		}
	}
	return true
}

// gone reports whether so many nodes answered without the claim (or, for a weighted claim, without
// one of units) that a quorum can no longer hold it: n nodes, quorum needed.
func (t *tally) gone(n, quorum int, weighted bool, units []int64) bool {
	if !weighted {
		return t.answered-t.yes > n-quorum
	}
	for _, u := range units {
		if t.answered-t.votesFor(u) > n-quorum {
			return true
		}
	}
	return false
}

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

func hasUnit(units []int64, u int64) bool {
	_, found := slices.BinarySearch(units, u)
	return found
}

// The engine's keys of a name, at the head of every claim's Keys.
const (
	keyQueue = iota
	keyLiveness
	keyChannel
	engineKeys
)

// keysFor returns the keys of name for kind k: the engine's three, then one per suffix of the
// kind's. They share one backing string and the name's hash tag: two allocations for all.
func keysFor(prefix string, k Kind, name string) []string {
	name = escapeName(name)
	family, suffixes := k.Family(), k.Keys()
	var partsBuf [8]string
	parts := append(partsBuf[:0], ":q", ":qlive", ":wake")
	parts = append(parts, suffixes...)
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
	keys := make([]string, len(parts))
	from := 0
	for i, p := range parts {
		keys[i] = all[from : from+base+len(p)]
		from += base + len(p)
	}
	return keys
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
