package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Inspector is the interface of a [Kind] whose claims can be looked up ([Quorum.Inspect]) and
// broken ([Quorum.Break]): its Inspect returns the call of a script made with [NewInspectScript]
// that reads the claim's keys (c.Keys; c.Token is empty) and returns the records lua/inspect.lua
// describes. Break releases each holder with the kind's Release call.
type Inspector interface {
	Inspect(c *Claim) Call
}

// NewInspectScript returns a kind's lookup script: src with the engine's queue helpers and the
// lookup's (lua/inspect.lua: held, queued, is_queued, records) prepended.
func NewInspectScript(src string) *redis.Script { return redis.NewScript(queueLua + inspectLua + src) }

// Holding is one holder of a name, or one waiter for it, as Quorum.Inspect sees it over the nodes.
type Holding struct {
	Holder
	Kind   Kind            // the kind of claim (its family says which primitive)
	Mode   string          // what it holds or waits for: "lock", "read", "write", "permits"
	Weight int64           // the permits of a semaphore's holder or waiter (the most any node has); 1 otherwise
	TTL    []time.Duration // per node, in the quorum's order: what is left of it there; 0 where the node does not have it, -1ns where its key has no TTL
	Fence  uint64          // the holder's fencing token, as the nodes that hold it agree (see holderFence)

	record  string   // the token as the servers store it
	arrival int64    // a waiter's place in the queue
	fences  []uint64 // the counters of the nodes that have it
	waiter  bool
}

// NodeState is one node's part of a lookup: its address, and why it did not answer (nil when it
// did).
type NodeState struct {
	Addr string
	Err  error
}

// State is what the servers hold for a name (see Quorum.Inspect).
type State struct {
	Name    string
	Holders []Holding   // oldest first
	Waiters []Holding   // in queue order
	Nodes   []NodeState // in the quorum's order
}

// Inspect reads what the nodes hold for name under each of kinds (one per family: they share
// keys), and returns every holder and waiter any node has, with what is left of each on every
// node. A node that does not answer is in State.Nodes with its error; when they are more than a
// minority the error matches [ErrUnavailable] (the state of the others is still returned).
func (q *Quorum) Inspect(ctx context.Context, name string, kinds []Kind) (State, error) {
	if err := q.adminCheck(ctx); err != nil {
		return State{}, err
	}
	if name == "" {
		return State{}, Invalid("name", "empty")
	}
	st := State{Name: name, Nodes: make([]NodeState, len(q.nodes))}
	claims := make([]*Claim, len(kinds))
	calls := make([]Call, len(kinds))
	for i, k := range kinds {
		claims[i] = &Claim{Name: name, Keys: keysFor(q.cfg.prefix, k, name)}
		calls[i] = k.(Inspector).Inspect(claims[i])
	}
	perNode := make([][][]any, len(q.nodes)) // per node, per kind: the records
	// A node's timeout is typed against the caller's deadline, not the node call's own.
	caller := ctx
	q.fanout(ctx, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		st.Nodes[n.index].Addr = n.addr
		if c == nil {
			st.Nodes[n.index].Err = q.nodeError(ctx, n, n.skipped())
			return
		}
		cmds, err := pipelined(ctx, c, calls)
		if err == nil {
			for _, cmd := range cmds {
				if err = cmd.Err(); err != nil {
					break
				}
			}
		}
		if err != nil {
			st.Nodes[n.index].Err = q.nodeError(caller, n, err)
			return
		}
		perNode[n.index] = make([][]any, len(cmds))
		for j, cmd := range cmds {
			perNode[n.index][j], _ = cmd.Val().([]any)
		}
	}))
	answered := 0
	index := map[string]int{} // "h"/"w" + kind index + record -> position in all
	var all []Holding
	for i, kindsRecords := range perNode {
		if kindsRecords == nil {
			continue
		}
		answered++
		for j, records := range kindsRecords {
			for _, r := range records {
				rec, ok := readRecord(r)
				if !ok {
					continue
				}
				key := rec.role + strconv.Itoa(j) + rec.token
				p, seen := index[key]
				if !seen {
					p = len(all)
					index[key] = p
					h := Holding{Kind: kinds[j], Mode: rec.mode, Weight: rec.weight, TTL: make([]time.Duration, len(q.nodes)),
						record: rec.token, arrival: rec.order, waiter: rec.role == "w"}
					if _, parsed, ok := ParseHolder(rec.token); ok {
						h.Holder = parsed
					} else {
						h.Holder = Holder{Token: rec.token}
					}
					all = append(all, h)
				}
				h := &all[p]
				h.TTL[i] = rec.left
				if h.fences == nil {
					h.fences = make([]uint64, 0, len(q.nodes))
				}
				h.fences = append(h.fences, rec.fence)
				h.Weight = max(h.Weight, rec.weight) // the most any node has (a partial release may be under way)
			}
		}
	}
	for i := range all {
		all[i].Fence = holderFence(all[i].fences, q.quorum)
	}
	for _, h := range all {
		if h.waiter {
			st.Waiters = append(st.Waiters, h)
		} else {
			st.Holders = append(st.Holders, h)
		}
	}
	slices.SortStableFunc(st.Holders, func(a, b Holding) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.record, b.record))
	})
	slices.SortStableFunc(st.Waiters, func(a, b Holding) int {
		return cmp.Or(cmp.Compare(a.arrival, b.arrival), strings.Compare(a.record, b.record))
	})
	if answered < q.quorum {
		return st, q.unavailable(name, st.Nodes) // what the others have is still in st
	}
	return st, nil
}

// AgreedFence returns h's fencing token as a quorum of the nodes that hold it agree (see
// holderFence), and false when no quorum agrees.
func AgreedFence(h Holding, quorum int) (uint64, bool) {
	f := holderFence(h.fences, quorum)
	agree := 0
	for _, g := range h.fences {
		if g == f {
			agree++
		}
	}
	return f, agree >= quorum
}

// Quorum returns how many of q's nodes make a majority.
func (q *Quorum) Quorum() int { return q.quorum }

// holderFence returns a holder's fencing token from the counters of the nodes that hold it: the
// value a quorum of them agree on, which the second round of a fenced grant set on a quorum (DESIGN
// §6). A node can read more — a request of the grant's round that it ran late, after a timeout,
// counted on top of rounds that failed there — or less, where the second round did not arrive;
// when no quorum agrees (the grant is being settled, or nodes were lost), the highest.
func holderFence(fences []uint64, quorum int) uint64 {
	var highest uint64
	for _, f := range fences {
		highest = max(highest, f)
		agree := 0
		for _, g := range fences {
			if g == f {
				agree++
			}
		}
		if agree >= quorum {
			return f
		}
	}
	return highest
}

// record is one line of a lookup script's reply (see lua/inspect.lua).
type record struct {
	token, role, mode string
	weight, order     int64
	left              time.Duration
	fence             uint64
}

func readRecord(v any) (record, bool) {
	f, ok := v.([]any)
	if !ok || len(f) != 7 {
		return record{}, false
	}
	var r record
	r.token, _ = f[0].(string)
	r.role, _ = f[1].(string)
	r.mode, _ = f[2].(string)
	r.weight, _ = f[3].(int64)
	ms, _ := f[4].(int64)
	fence, _ := f[5].(string)
	order, _ := f[6].(string)
	r.fence, _ = strconv.ParseUint(fence, 10, 64)
	r.order, _ = strconv.ParseInt(order, 10, 64)
	if ms < 0 {
		r.left = -1 // the key has no TTL
	} else {
		r.left = max(time.Duration(ms)*time.Millisecond, time.Millisecond)
	}
	return r, r.token != "" && (r.role == "h" || r.role == "w")
}

// brokenFor is how long the broken marker of a claim whose TTL has left outlives it: the time for
// its holder's next renewal to read it, with room for a holder cut off from the nodes a while.
const brokenFor = 10 * time.Minute

// Break is an administrator's force-release of name under each of kinds: it looks the name up
// (see Inspect), then on every node releases each holder found with its kind's Release call, which
// hands what it frees to the waiters and wakes them as a release does, after marking the holder's
// token broken (a hash on the name's keys, expiring brokenFor after the holder's TTL) so that the
// holder's next renewal reports why it lost the lease. Waiters are left queued. It returns the
// state it found, its Holders only those it broke: when tokens are given, only the holders with
// those tokens (the random part, Holder.Token) are broken. The error matches [ErrUnavailable]
// when fewer than a quorum of the nodes answered the lookup (a holder may hold there unseen) or
// ran the break (the holders may then still hold on a quorum).
func (q *Quorum) Break(ctx context.Context, name string, kinds []Kind, tokens ...string) (State, error) {
	st, err := q.Inspect(ctx, name, kinds) // unavailable unless a majority answered: a holder may hold unseen
	if err != nil {
		return st, err
	}
	if len(tokens) > 0 {
		kept := st.Holders[:0]
		for _, h := range st.Holders {
			if slices.Contains(tokens, h.Token) {
				kept = append(kept, h)
			}
		}
		st.Holders = kept
	}
	if len(st.Holders) == 0 {
		return st, nil
	}
	var calls []Call
	now := time.Now().UnixMilli()
	for _, h := range st.Holders {
		c := &Claim{Name: name, Keys: keysFor(q.cfg.prefix, h.Kind, name), Token: h.record}
		c.tokenArgs[0] = h.record
		left := slices.Max(h.TTL)
		broken := c.Keys[len(c.Keys)-1]
		calls = append(calls,
			Call{Script: brokenScript.Script, Keys: []string{broken}, Args: []any{h.record, now, (max(left, 0) + brokenFor).Milliseconds()}},
			h.Kind.Release(c))
	}
	errs := make([]error, len(q.nodes))
	// A node's timeout is typed against the caller's deadline, not the node call's own.
	caller := ctx
	q.fanout(ctx, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		if c == nil {
			errs[n.index] = q.nodeError(ctx, n, n.skipped())
			return
		}
		cmds, err := pipelined(ctx, c, calls)
		if err == nil {
			for _, cmd := range cmds {
				if e := cmd.Err(); e != nil && e != redis.Nil {
					err = e
					break
				}
			}
		}
		if err != nil {
			errs[n.index] = q.nodeError(caller, n, err)
		}
	}))
	done := 0
	for i, err := range errs {
		if err == nil {
			done++
		} else {
			st.Nodes[i].Err = err
		}
	}
	if done < q.quorum {
		return st, q.unavailable(name, st.Nodes)
	}
	return st, nil
}

// unavailable is the error of a lookup or break that too few nodes answered.
func (q *Quorum) unavailable(name string, nodes []NodeState) error {
	var causes []error
	for _, n := range nodes {
		if n.Err != nil {
			causes = append(causes, n.Err)
		}
	}
	return &opError{sentinel: ErrUnavailable, name: name, causes: causes}
}

// adminCheck checks what every operator's call (Inspect, Break, List, Health) shares: the
// quorum, and a ctx neither nil nor ended (a call on an ended ctx could still get answers from a
// pooled connection).
func (q *Quorum) adminCheck(ctx context.Context) error {
	if q == nil || q.wd == nil {
		return Invalid("quorum", "nil")
	}
	if ctx == nil {
		return Invalid("ctx", "nil")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if q.isClosed() {
		return ErrClosed
	}
	return nil
}

// List returns the names that something holds or waits for, under any kind, whose names match
// pattern (a Redis glob: *, ?, [...], \ escapes; "" means "*"), sorted. It scans each node's keys
// with SCAN (a Cluster client: each of its masters), never KEYS. A name whose only key left is a
// fencing counter (kept without a TTL) is not listed. It returns the names the nodes that
// answered have; the error says which nodes did not, and matches [ErrUnavailable] when they were
// more than a minority.
func (q *Quorum) List(ctx context.Context, pattern string) ([]string, error) {
	if err := q.adminCheck(ctx); err != nil {
		return nil, err
	}
	if pattern == "" {
		pattern = "*"
	}
	matches := []string{escapeGlob(q.cfg.prefix) + "{" + pattern + "}*"}
	if strings.ContainsRune("~}*?[\\", rune(pattern[0])) {
		// Names that start with '~' or '}' are stored with a '~' in front (see escapeName).
		matches = append(matches, escapeGlob(q.cfg.prefix)+"{~*}*")
	}
	found := make([][]string, len(q.nodes))
	errs := make([]NodeState, len(q.nodes))
	// A scan takes as long as the keyspace is large: the node timeout bounds each SCAN call, not
	// the whole scan.
	q.fanoutTimeout(ctx, time.Hour, taskFunc(func(ctx context.Context, n *node, c redis.UniversalClient) {
		errs[n.index].Addr = n.addr
		if c == nil {
			errs[n.index].Err = q.nodeError(ctx, n, n.skipped())
			return
		}
		scan := func(ctx context.Context, c *redis.Client) error {
			for _, m := range matches {
				var cursor uint64
				for {
					cctx, cancel := context.WithTimeout(ctx, q.cfg.nodeTimeout)
					keys, next, err := c.Scan(cctx, cursor, m, 1000).Result()
					cancel()
					if err != nil {
						return err
					}
					for _, k := range keys {
						if name, ok := nameOfKey(q.cfg.prefix, k); ok {
							found[n.index] = append(found[n.index], name)
						}
					}
					if cursor = next; cursor == 0 {
						break
					}
				}
			}
			return nil
		}
		var err error
		switch c := c.(type) {
		case *redis.ClusterClient:
			var mu = make(chan struct{}, 1)
			err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				mu <- struct{}{} // one master at a time: found[n.index] is not locked
				defer func() { <-mu }()
				return scan(ctx, m)
			})
		case *redis.Client:
			err = scan(ctx, c)
		default:
			err = fmt.Errorf("a %T cannot be scanned", c)
		}
		if err != nil {
			errs[n.index].Err = q.nodeError(ctx, n, err)
		}
	}))
	var names []string
	answered := 0
	var failed []error
	for i, f := range found {
		if errs[i].Err == nil {
			answered++
		} else {
			failed = append(failed, errs[i].Err)
		}
		names = append(names, f...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// A glob over the escaped keys is a superset (a trailing "*" lets "a" match "a}b"), and a
	// pattern that starts with a wildcard misses escaped names: every name found is matched again.
	kept := names[:0]
	for _, n := range names {
		if globMatch(pattern, n) {
			kept = append(kept, n)
		}
	}
	names = kept
	switch {
	case answered < q.quorum:
		return names, q.unavailable(pattern, errs) // the names it stands for
	case len(failed) > 0:
		return names, Join(failed...)
	}
	return names, nil
}

// globMatch reports whether name matches pattern as Redis's glob-style patterns do: * any run,
// ? one byte, [abc], [a-z] and [^a] classes, and \ escaping the next character.
func globMatch(pattern, name string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 1 && pattern[1] == '*' {
				pattern = pattern[1:]
			}
			if len(pattern) == 1 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if globMatch(pattern[1:], name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(name) == 0 {
				return false
			}
			name = name[1:]
			pattern = pattern[1:]
		case '[':
			if len(name) == 0 {
				return false
			}
			p := pattern[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for len(p) > 0 && p[0] != ']' {
				switch {
				case p[0] == '\\' && len(p) > 1:
					match = match || p[1] == name[0]
					p = p[2:]
				case len(p) > 2 && p[1] == '-' && p[2] != ']':
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					match = match || (name[0] >= lo && name[0] <= hi)
					p = p[3:]
				default:
					match = match || p[0] == name[0]
					p = p[1:]
				}
			}
			if len(p) > 0 {
				p = p[1:] // the ']'
			}
			if match == not {
				return false
			}
			name, pattern = name[1:], p
		case '\\':
			if len(pattern) > 1 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if len(name) == 0 || name[0] != pattern[0] {
				return false
			}
			name, pattern = name[1:], pattern[1:]
		}
	}
	return len(name) == 0
}

// nameOfKey returns the name a key of this library belongs to: the text between the prefix's "{"
// and the last "}" (families and suffixes have none), unescaped (see escapeName). ok is false for a
// key that says nothing of whether the name is in use: a fencing counter, a broken marker, or a key
// of the start-up probe.
func nameOfKey(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"{")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '}')
	if i <= 0 {
		return "", false
	}
	name, suffix := rest[:i], rest[i+1:]
	if strings.HasSuffix(suffix, ":fence") || strings.HasSuffix(suffix, ":broken") || name == "~probe" {
		return "", false
	}
	if strings.HasPrefix(name, "~") {
		name = name[1:]
	}
	return name, name != ""
}

// escapeGlob escapes the characters a Redis glob pattern gives meaning to.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
