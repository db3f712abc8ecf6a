package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The offline checks. Each takes a finished history (and what else it needs) and returns the
// violations it found; none of them looks at the library, only at what clients recorded and at the
// resource's final state.

// Check names, as they appear in violations and in the report.
const (
	CheckExclusion  = "exclusion"    // holders overlapped inside their validity
	CheckFencing    = "fencing"      // fencing tokens did not increase in order of entry
	CheckLostUpdate = "lost-update"  // the resource's final value disagrees with the writes
	CheckLeaseUse   = "lease-use"    // a lease was used past Until or after Done closed
	CheckDoneLate   = "done-late"    // Done closed (or had not closed) later than Until + slack
	CheckLiveness   = "liveness"     // a client did not acquire after healing, or a name stayed taken
	CheckKeysLeft   = "keys-left"    // keys or queue entries left on a node at the end
	CheckLeak       = "leak"         // a child process was not reaped
	CheckLateEntry  = "late-entry"   // a section entered with its validity already over
	CheckLinear     = "linearizable" // a counter's reads and writes have no order one holder at a time explains
	CheckTerm       = "term"         // an election's term had two leaders, or a leader had no term
	CheckObserve    = "observe"      // an observer heard terms out of order
)

// Violation is one broken property, with the sections that show it.
type Violation struct {
	Check   string
	Name    string
	Detail  string
	Excerpt []Section
	// Caveat, when set, says why the violation is a documented caveat, not a bug: a holder whose
	// process was paused past its validity uses its lease late (DESIGN §7).
	Caveat string
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %q: %s", v.Check, v.Name, v.Detail)
	if v.Caveat != "" {
		fmt.Fprintf(&b, " [caveat: %s]", v.Caveat)
	}
	for _, s := range v.Excerpt {
		fmt.Fprintf(&b, "\n    %s", s)
	}
	return b.String()
}

// CheckExclusive checks rule 1: no two holders of a name overlap inside their validity, the
// interval [Enter, min(Exit, Until)] (see [Section.End]), beyond what their modes allow:
//   - an Exclusive holder overlaps nobody;
//   - Shared holders overlap each other only;
//   - Weighted holders together hold at most Capacity permits (the largest Capacity recorded for
//     the name), and never overlap a holder of another mode.
//
// An interval that ends at the instant another starts does not overlap it.
func CheckExclusive(sections []Section) []Violation {
	byName := map[string][]Section{}
	for _, s := range sections {
		if s.End() > s.Enter {
			byName[s.Name] = append(byName[s.Name], s)
		}
	}
	var out []Violation
	for _, name := range sortedKeys(byName) {
		ss := byName[name]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Enter < ss[j].Enter })
		capacity := 0
		for _, s := range ss {
			capacity = max(capacity, s.Capacity)
		}
		// Sweep by entry; active holds the holders whose validity has not ended.
		var active []Section
		for _, s := range ss {
			kept := active[:0]
			for _, a := range active {
				if a.End() > s.Enter {
					kept = append(kept, a)
				}
			}
			active = kept
			if v, bad := admits(active, s, capacity); bad {
				out = append(out, v)
			}
			active = append(active, s)
		}
	}
	return out
}

// admits reports the violation of letting s in beside active, if any.
func admits(active []Section, s Section, capacity int) (Violation, bool) {
	permits := weight(s)
	for _, a := range active {
		overlap := min(a.End(), s.End()) - s.Enter
		switch {
		case s.Mode == Exclusive || a.Mode == Exclusive:
			return Violation{Check: CheckExclusion, Name: s.Name,
				Detail:  fmt.Sprintf("two holders at once for %s (an exclusive claim overlaps another)", ms(overlap)),
				Excerpt: []Section{a, s}}, true
		case s.Mode != a.Mode:
			return Violation{Check: CheckExclusion, Name: s.Name,
				Detail:  fmt.Sprintf("claims of modes %q and %q overlap for %s", a.Mode, s.Mode, ms(overlap)),
				Excerpt: []Section{a, s}}, true
		}
		permits += weight(a)
	}
	if s.Mode == Weighted && permits > capacity {
		return Violation{Check: CheckExclusion, Name: s.Name,
			Detail:  fmt.Sprintf("%d permits held at once; capacity %d", permits, capacity),
			Excerpt: append(append([]Section(nil), active...), s)}, true
	}
	return Violation{}, false
}

func weight(s Section) int {
	if s.Mode == Weighted {
		return max(s.Weight, 1)
	}
	return 0
}

// CheckFencingOrder checks rule 2: among a name's fenced sections in order of entry, the tokens of
// exclusive claims strictly increase, and no claim's token is below one handed out before it.
// (Shared holders may share a token with each other.) A semaphore's slot tokens are checked per
// slot, each slot an exclusive claim.
func CheckFencingOrder(sections []Section) []Violation {
	byName := map[string][]Section{}
	for _, s := range sections {
		if s.Fenced {
			byName[s.Name] = append(byName[s.Name], s)
		}
		// A permit's slots: each slot is an exclusive claim with tokens of its own.
		if len(s.SlotFences) == len(s.Slots) {
			for i, u := range s.Slots {
				slot := s
				slot.Name, slot.Mode, slot.Fence, slot.Fenced = fmt.Sprintf("%s/slot %d", s.Name, u), Exclusive, s.SlotFences[i], true
				byName[slot.Name] = append(byName[slot.Name], slot)
			}
		}
	}
	var out []Violation
	for _, name := range sortedKeys(byName) {
		ss := byName[name]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Enter < ss[j].Enter })
		for i := 1; i < len(ss); i++ {
			prev, s := ss[i-1], ss[i]
			strict := prev.Mode == Exclusive || s.Mode == Exclusive
			if s.Fence < prev.Fence || (strict && s.Fence == prev.Fence) {
				out = append(out, Violation{Check: CheckFencing, Name: name,
					Detail:  fmt.Sprintf("token %d entered after token %d", s.Fence, prev.Fence),
					Excerpt: []Section{prev, s}})
			}
		}
	}
	return out
}

// CheckUpdates checks rule 3: each counter (see [ResourceKey]) ends at the number of writes it
// accepted. Every write is "read v, write v+1", so a lower final value means an update was lost
// (two writers read the same value). A write that failed, and one a killed client may have sent
// after its read, can each add one; final is keyed by counter, and a counter written by nobody is
// expected to be absent (0). CheckLinearizable sees more: every read and write in order.
func CheckUpdates(sections []Section, final map[string]int64) []Violation {
	type tally struct {
		ok, maybe int64
		writes    []Section
		values    []int64
	}
	per := map[string]*tally{}
	for _, s := range sections {
		for _, op := range s.Ops {
			t := per[op.Key]
			if t == nil {
				t = &tally{}
				per[op.Key] = t
			}
			switch {
			case op.Wrote == WriteOK:
				t.ok++
				t.writes = append(t.writes, s)
				t.values = append(t.values, op.Value+1)
			case op.Wrote == WriteFailed || maybeWrote(s, op):
				t.maybe++
			}
		}
	}
	var out []Violation
	for _, res := range sortedKeys(per) {
		t := per[res]
		got := final[res]
		switch {
		case got < t.ok:
			out = append(out, Violation{Check: CheckLostUpdate, Name: res,
				Detail: fmt.Sprintf("final value %d; want %d (accepted writes): %d update(s) lost", got, t.ok, t.ok-got),
				// The first writes that wrote a value someone else had written show it.
				Excerpt: duplicateWrites(t.writes, t.values, 4)})
		case got > t.ok+t.maybe:
			out = append(out, Violation{Check: CheckLostUpdate, Name: res,
				Detail: fmt.Sprintf("final value %d; want at most %d (%d accepted + %d unknown writes)", got, t.ok+t.maybe, t.ok, t.maybe)})
		}
	}
	for res, v := range final {
		if _, ok := per[res]; !ok && v != 0 {
			out = append(out, Violation{Check: CheckLostUpdate, Name: res, Detail: fmt.Sprintf("final value %d written by no recorded section", v)})
		}
	}
	return out
}

// maybeWrote reports whether op of s may have written without the record saying so: its client
// was killed inside a section that writes, after its read (or before the read was journaled).
func maybeWrote(s Section, op Op) bool {
	return s.Exit == 0 && s.Mode != Shared && op.WriteCall == 0 && op.Read != WriteRefused && op.Read != WriteFailed
}

// duplicateWrites returns up to n pairs of accepted writes that wrote the same value.
func duplicateWrites(writes []Section, values []int64, n int) []Section {
	first := map[int64]Section{}
	var out []Section
	for i, s := range writes {
		if f, ok := first[values[i]]; ok && len(out) < 2*n {
			out = append(out, f, s)
			continue
		}
		first[values[i]] = s
	}
	return out
}

// CheckLeases checks rule 4: no lease was used (its resource write sent) past its Until or after
// its Done closed, and Done closed no later than Until + slack: when Done closed, it was at most
// slack past the Until read then; and a section still held past Until + slack at its exit saw Done
// closed.
func CheckLeases(sections []Section, slack time.Duration) []Violation {
	var out []Violation
	for _, s := range sections {
		if s.UseAt != 0 && s.UseAt > s.UseUntil {
			out = append(out, Violation{Check: CheckLeaseUse, Name: s.Name,
				Detail: fmt.Sprintf("resource written %s past the lease's Until", ms(s.UseAt-s.UseUntil)), Excerpt: []Section{s}})
		} else if s.UseAt != 0 && s.UseDone {
			out = append(out, Violation{Check: CheckLeaseUse, Name: s.Name,
				Detail: "resource written after the lease's Done closed", Excerpt: []Section{s}})
		}
		switch {
		case s.DoneAt != 0 && s.DoneAt > s.DoneUntil+int64(slack):
			out = append(out, Violation{Check: CheckDoneLate, Name: s.Name,
				Detail: fmt.Sprintf("Done closed %s past Until; slack %s", ms(s.DoneAt-s.DoneUntil), slack), Excerpt: []Section{s}})
		case s.DoneAt == 0 && s.Exit != 0 && s.Exit > s.Until+int64(slack):
			out = append(out, Violation{Check: CheckDoneLate, Name: s.Name,
				Detail: fmt.Sprintf("held %s past Until and Done had not closed; slack %s", ms(s.Exit-s.Until), slack), Excerpt: []Section{s}})
		}
	}
	return out
}

// CheckEntries flags every section that entered with its validity already over: the library hands
// out a lease with at least TTL/4 of validity left, so a holder that finds none at once was
// granted a lease that had ended (or was paused between the grant and its first look).
func CheckEntries(sections []Section) []Violation {
	var out []Violation
	for _, s := range sections {
		if s.Granted != 0 && s.Granted <= s.Enter {
			out = append(out, Violation{Check: CheckLateEntry, Name: s.Name,
				Detail: fmt.Sprintf("entered %s after its validity ended", ms(s.Enter-s.Granted)), Excerpt: []Section{s}})
		}
	}
	return out
}

// grantStart is no later than the start of the round that granted s's lease: its validity as
// granted ends TTL − drift after that start. (Without a recorded grant, the acquire's start.)
func grantStart(s Section, ttl time.Duration) int64 {
	if s.Granted == 0 {
		return s.AcquireStart
	}
	return max(s.AcquireStart, s.Granted-int64(ttl))
}

// forgotBetween returns the fault of ForgetfulKinds that can explain second entering beside first:
// a node's clock stepped after first's grant began (a step before it only moved the clock its key
// was then written by) and before second entered, or keys evicted while first's grant was under
// way or held, before second entered. It cannot tell whether the node was in first's majority, so
// it excuses some overlaps it need not; the fenced resource's checks do not rely on it.
func forgotBetween(first, second Section, faults []Fault, ttl time.Duration) (Fault, bool) {
	from := grantStart(first, ttl)
	for _, f := range faults {
		switch f.Kind {
		case ClockJump:
			if f.Start >= from && f.Start <= second.Enter {
				return f, true
			}
		case NodeEvict:
			if f.Start <= second.Enter && f.End >= from {
				return f, true
			}
		}
	}
	return Fault{}, false
}

// pauseCaveats are the checks a process paused past its validity trips by design (DESIGN §7): it
// looks at its lease late, so it enters, writes or sees Done late. Exclusion, fencing and the
// resource's history still hold: the lock never granted twice, and the fenced resource refused
// the stale writes.
var pauseCaveats = []string{CheckLeaseUse, CheckDoneLate, CheckLateEntry}

// ForgetfulKinds are the faults that make a node forget the leases it granted (a clock stepped
// forward past the drift margin, keys evicted under memory pressure): a holder whose majority
// included such a node can have a second holder beside it (the lease doc's caveats). The fencing
// token still increases (a name's counter has no TTL, so it neither expires nor is evicted), and
// the fenced resource refuses the first holder's late writes.
var ForgetfulKinds = []FaultKind{ClockJump, NodeEvict}

// Attribute marks documented caveats among vs: the violations of pauseCaveats whose section
// belongs to a process that a client-pause fault stopped while the section was under way (or to
// the test process, which a ProcessStall shows did not run for a while then), and the
// exclusion violations that a node which forgot the first holder's lease explains (see
// forgotBetween). Every other check, fencing and the resource's history among them, must still
// hold. ttl is the scenario's lease TTL.
func Attribute(vs []Violation, faults []Fault, ttl time.Duration) []Violation {
	for i := range vs {
		v := &vs[i]
		if v.Check == CheckExclusion && len(v.Excerpt) >= 2 {
			first, last := v.Excerpt[0], v.Excerpt[len(v.Excerpt)-1]
			if f, ok := forgotBetween(first, last, faults, ttl); ok {
				v.Caveat = fmt.Sprintf("%s on nodes %v, %s after the first holder's grant began: the node forgot its lease", f.Kind, f.Nodes, ms(f.Start-grantStart(first, ttl)))
			}
			continue
		}
		if !slices.Contains(pauseCaveats, v.Check) || len(v.Excerpt) != 1 {
			continue
		}
		s := v.Excerpt[0]
		end := s.Exit
		if end == 0 {
			end = max(s.Until, s.Enter)
		}
		for _, f := range faults {
			if f.Kind == ClientPause && f.Client != "" && strings.HasPrefix(s.Client, f.Client+".") &&
				f.Start <= end && f.End >= s.AcquireStart {
				v.Caveat = fmt.Sprintf("its process was paused for %s during the section (a holder paused past its validity)", ms(f.End-f.Start))
				break
			}
			if f.Kind == ProcessStall && !strings.HasPrefix(s.Client, "p") && f.Start <= end && f.End >= s.AcquireStart {
				v.Caveat = fmt.Sprintf("the test process stalled for %s during the section (a holder paused past its validity)", ms(f.End-f.Start))
				break
			}
		}
	}
	return vs
}

// CheckAcquiredAfter checks the first half of rule 5: every client in clients entered at least
// one section in [healed, healed+bound].
func CheckAcquiredAfter(sections []Section, clients []string, healed int64, bound time.Duration) []Violation {
	first := map[string]int64{}
	for _, s := range sections {
		if s.Enter >= healed && (first[s.Client] == 0 || s.Enter < first[s.Client]) {
			first[s.Client] = s.Enter
		}
	}
	var out []Violation
	for _, c := range clients {
		at, ok := first[c]
		switch {
		case !ok:
			out = append(out, Violation{Check: CheckLiveness, Name: c, Detail: "never acquired after the faults healed"})
		case at > healed+int64(bound):
			out = append(out, Violation{Check: CheckLiveness, Name: c,
				Detail: fmt.Sprintf("first acquired %s after the faults healed; bound %s", ms(at-healed), bound)})
		}
	}
	return out
}

// CheckTerms checks an election's history (the sections of PrimElection, one per leadership,
// Fence its term): every leadership has a term, and no two leaderships of a name have the same
// term. (At most one leader at a time is CheckExclusive's, terms increasing in order of entry
// CheckFencingOrder's: run both too.)
func CheckTerms(sections []Section) []Violation {
	type key struct {
		name string
		term uint64
	}
	first := map[key]Section{}
	var out []Violation
	for _, s := range sections {
		if s.Primitive != PrimElection {
			continue
		}
		if !s.Fenced || s.Fence == 0 {
			out = append(out, Violation{Check: CheckTerm, Name: s.Name, Detail: "a leader with no term", Excerpt: []Section{s}})
			continue
		}
		k := key{s.Name, s.Fence}
		if f, ok := first[k]; ok {
			out = append(out, Violation{Check: CheckTerm, Name: s.Name,
				Detail: fmt.Sprintf("term %d had two leaderships", s.Fence), Excerpt: []Section{f, s}})
			continue
		}
		first[k] = s
	}
	return out
}

// CheckObserved checks what the observers of an election heard (Election.Observe) against the
// leaderships recorded:
//   - each observer heard each name's terms in strictly increasing order;
//   - a leader it heard that a section recorded (by its value, unique per campaign) had the term
//     the observer heard with it. Two exceptions, which are only counted: a value no section has
//     (a campaign that never returned, or a client killed before it journaled), and a value heard
//     with a lower term than its leadership's, no later than slack after the leadership began:
//     an earlier grant of the same campaign, glimpsed while it was being undone (the election
//     doc's caveat: Observe reads what a majority holds when it resubscribes);
//   - when sections of a name entered after healed, every observer heard at least one of them.
//
// It returns the violations and how many observations were exceptions.
func CheckObserved(obs []Observation, sections []Section, healed int64, slack time.Duration) ([]Violation, int) {
	byValue := map[string]Section{}
	after := map[string]bool{} // names with a leadership entered after healed
	for _, s := range sections {
		if s.Primitive != PrimElection || s.Value == "" {
			continue
		}
		byValue[s.Value] = s
		if s.Enter >= healed {
			after[s.Name] = true
		}
	}
	type key struct{ observer, name string }
	last := map[key]Observation{}
	heardAfter := map[key]bool{}
	observers := map[string]bool{}
	excepted := 0
	var out []Violation
	for _, o := range obs {
		observers[o.Observer] = true
		k := key{o.Observer, o.Name}
		if p, ok := last[k]; ok && o.Term <= p.Term {
			out = append(out, Violation{Check: CheckObserve, Name: o.Name,
				Detail: fmt.Sprintf("observer %s heard term %d (%s) after term %d (%s)", o.Observer, o.Term, o.Value, p.Term, p.Value)})
		}
		last[k] = o
		s, ok := byValue[o.Value]
		switch {
		case !ok:
			excepted++
		case s.Name == o.Name && s.Fence == o.Term:
			heardAfter[k] = heardAfter[k] || s.Enter >= healed
		case s.Name == o.Name && o.Term < s.Fence && o.At <= s.Enter+int64(slack):
			excepted++
		default:
			out = append(out, Violation{Check: CheckTerm, Name: o.Name,
				Detail: fmt.Sprintf("observer %s heard %s lead %q in term %d (%s after its campaign began, %s after it entered); it led %q in term %d",
					o.Observer, o.Value, o.Name, o.Term, ms(o.At-s.AcquireStart), ms(o.At-s.Enter), s.Name, s.Fence),
				Excerpt: []Section{s}})
		}
	}
	for _, observer := range sortedKeys(observers) {
		for _, name := range sortedKeys(after) {
			if !heardAfter[key{observer, name}] {
				out = append(out, Violation{Check: CheckLiveness, Name: name,
					Detail: fmt.Sprintf("observer %s heard none of the leaders that began after the faults healed", observer)})
			}
		}
	}
	return out, excepted
}

// CheckProgress checks that every client in clients keeps acquiring: none goes longer than bound
// without entering a section, between from and to (Mono). A lock that deadlocks shows here even
// when the acquire's timeout breaks the deadlock (the bound is below that timeout).
func CheckProgress(sections []Section, clients []string, from, to int64, bound time.Duration) []Violation {
	var out []Violation
	for _, c := range clients {
		gap, at := gapOf(sections, c, from, to)
		if gap > int64(bound) {
			out = append(out, Violation{Check: CheckLiveness, Name: c,
				Detail: fmt.Sprintf("entered no section for %s, from %s into the run; bound %s", ms(gap), ms(at-from), bound)})
		}
	}
	return out
}

// longestGap returns the longest any of clients went without entering a section between from and
// to.
func longestGap(sections []Section, clients []string, from, to int64) time.Duration {
	var longest int64
	for _, c := range clients {
		gap, _ := gapOf(sections, c, from, to)
		longest = max(longest, gap)
	}
	return time.Duration(longest)
}

// gapOf returns the longest time client went without entering a section between from and to, and
// when that gap began.
func gapOf(sections []Section, client string, from, to int64) (gap, at int64) {
	ts := []int64{from, to}
	for _, s := range sections {
		if s.Client == client && s.Enter >= from && s.Enter <= to {
			ts = append(ts, s.Enter)
		}
	}
	slices.Sort(ts)
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d > gap {
			gap, at = d, ts[i-1]
		}
	}
	return gap, at
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
