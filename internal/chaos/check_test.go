package chaos

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Synthetic histories for the offline checks: for each check, histories that must pass and
// histories that must be flagged. Times are in milliseconds for readability (ms).

const msec = int64(time.Millisecond)

// sec builds a section on name "n" held by client from enter to exit (ms), valid until until (ms).
func sec(client string, enter, exit, until int64) Section {
	return Section{Client: client, Name: "n", Primitive: "mutex", Mode: Exclusive,
		AcquireStart: enter * msec, Enter: enter * msec, Exit: exit * msec, Until: until * msec}
}

func with(s Section, f func(*Section)) Section { f(&s); return s }

func wantChecks(t *testing.T, got []Violation, want ...string) {
	t.Helper()
	var names []string
	for _, v := range got {
		names = append(names, v.Check)
		if v.String() == "" {
			t.Errorf("violation %+v prints as nothing", v)
		}
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("got violations %v; want %v\n%v", names, want, got)
	}
}

func TestExclusionPassesBackToBackHolders(t *testing.T) {
	wantChecks(t, CheckExclusive([]Section{
		sec("a", 0, 10, 100),
		sec("b", 10, 20, 110), // enters the instant a leaves
		sec("c", 25, 30, 125),
		with(sec("d", 0, 50, 100), func(s *Section) { s.Name = "other" }), // another name
	}))
}

func TestExclusionFlagsOverlappingHolders(t *testing.T) {
	got := CheckExclusive([]Section{sec("a", 0, 10, 100), sec("b", 5, 20, 110)})
	wantChecks(t, got, CheckExclusion)
	if len(got) == 1 && (got[0].Excerpt[0].Client != "a" || got[0].Excerpt[1].Client != "b") {
		t.Errorf("excerpt %v; want a then b", got[0].Excerpt)
	}
}

func TestExclusionIgnoresTimeHeldPastValidity(t *testing.T) {
	// a stayed inside until 50 but its validity ended at 10: b entering at 20 overlaps only a's
	// use past Until, which is CheckLeases' business, not a double grant.
	wantChecks(t, CheckExclusive([]Section{sec("a", 0, 50, 10), sec("b", 20, 30, 120)}))
}

func TestExclusionFlagsAKilledHolderStillValid(t *testing.T) {
	// a's process was killed inside (no exit): it counts as valid until its Until on entry.
	wantChecks(t, CheckExclusive([]Section{sec("a", 0, 0, 100), sec("b", 50, 60, 150)}), CheckExclusion)
	wantChecks(t, CheckExclusive([]Section{sec("a", 0, 0, 100), sec("b", 100, 110, 200)}))
}

func TestExclusionFlagsAThirdHolderInsideALongOne(t *testing.T) {
	// b and c do not overlap each other, but both overlap a.
	got := CheckExclusive([]Section{sec("a", 0, 100, 200), sec("b", 10, 20, 120), sec("c", 30, 40, 140)})
	wantChecks(t, got, CheckExclusion, CheckExclusion)
}

func rw(client string, mode Mode, enter, exit int64) Section {
	return with(sec(client, enter, exit, exit+100), func(s *Section) { s.Primitive, s.Mode = "rwmutex", mode })
}

func TestReadersShareAndWritersDoNot(t *testing.T) {
	wantChecks(t, CheckExclusive([]Section{
		rw("r1", Shared, 0, 30), rw("r2", Shared, 10, 40), rw("r3", Shared, 20, 50),
		rw("w1", Exclusive, 50, 60), rw("r4", Shared, 60, 70),
	}))
	wantChecks(t, CheckExclusive([]Section{rw("r1", Shared, 0, 30), rw("w1", Exclusive, 20, 40)}), CheckExclusion)
	wantChecks(t, CheckExclusive([]Section{rw("w1", Exclusive, 0, 30), rw("r1", Shared, 20, 40)}), CheckExclusion)
}

func permit(client string, n int, enter, exit int64) Section {
	return with(sec(client, enter, exit, exit+100), func(s *Section) {
		s.Primitive, s.Mode, s.Weight, s.Capacity = "semaphore", Weighted, n, 4
	})
}

func TestPermitsStayWithinCapacity(t *testing.T) {
	wantChecks(t, CheckExclusive([]Section{
		permit("a", 2, 0, 30), permit("b", 1, 10, 40), permit("c", 1, 20, 50), // 4 of 4
		permit("d", 3, 30, 60), // a left at 30, but b(1) + c(1) + d(3) = 5 > 4
	}), CheckExclusion)
	wantChecks(t, CheckExclusive([]Section{
		permit("a", 2, 0, 30), permit("b", 1, 10, 40), permit("c", 1, 20, 50), permit("d", 2, 40, 60),
	}))
}

func TestPermitsAndExclusiveClaimsDoNotMix(t *testing.T) {
	wantChecks(t, CheckExclusive([]Section{permit("a", 1, 0, 30), rw("r", Shared, 10, 20)}), CheckExclusion)
}

func fenced(client string, token uint64, enter int64) Section {
	return with(sec(client, enter, enter+5, enter+100), func(s *Section) { s.Fenced, s.Fence = true, token })
}

func TestFencingTokensIncreaseInOrderOfEntry(t *testing.T) {
	wantChecks(t, CheckFencingOrder([]Section{fenced("a", 1, 0), fenced("b", 2, 10), fenced("c", 7, 20), sec("u", 30, 40, 100)}))
	wantChecks(t, CheckFencingOrder([]Section{fenced("a", 3, 0), fenced("b", 2, 10)}), CheckFencing)
	wantChecks(t, CheckFencingOrder([]Section{fenced("a", 3, 0), fenced("b", 3, 10)}), CheckFencing)
	// Readers may share a token; a writer after them may not reuse it.
	r1 := with(fenced("r1", 5, 0), func(s *Section) { s.Mode = Shared })
	r2 := with(fenced("r2", 5, 1), func(s *Section) { s.Mode = Shared })
	wantChecks(t, CheckFencingOrder([]Section{r1, r2}))
	wantChecks(t, CheckFencingOrder([]Section{r1, r2, fenced("w", 5, 10)}), CheckFencing)
}

// wrote gives s one use of its name's counter: a read of value-1 at entry, then a write of value,
// sent a millisecond later, with outcome w.
func wrote(s Section, w Write, value int64) Section {
	return with(s, func(s *Section) {
		op := Op{Key: ResourceKey(s.Name, s.Fenced, -1), ReadCall: s.Enter, ReadRet: s.Enter + 1, Read: WriteOK, Value: value - 1,
			WriteCall: s.Enter + msec, WriteRet: s.Enter + msec + 1, Wrote: w}
		if s.Fenced {
			op.Fence = s.Fence
		}
		s.Ops = []Op{op}
		s.UseAt, s.UseUntil = s.Enter+msec, s.Until
	})
}

func TestUpdatesAllCounted(t *testing.T) {
	h := []Section{wrote(sec("a", 0, 5, 100), WriteOK, 1), wrote(sec("b", 5, 10, 100), WriteOK, 2), wrote(sec("c", 10, 15, 100), WriteOK, 3)}
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 3}))
}

func TestUpdatesFlagsALostUpdate(t *testing.T) {
	// b read 1 while a's write of 1 was in flight: both wrote 2, one increment is gone.
	h := []Section{wrote(sec("a", 0, 5, 100), WriteOK, 1), wrote(sec("p", 5, 50, 20), WriteOK, 2), wrote(sec("b", 25, 30, 100), WriteOK, 2)}
	got := CheckUpdates(h, map[string]int64{"unfenced:n": 2})
	wantChecks(t, got, CheckLostUpdate)
	if len(got) == 1 && len(got[0].Excerpt) != 2 {
		t.Errorf("excerpt %v; want the two writes of value 2", got[0].Excerpt)
	}
}

func TestUpdatesAllowsUnknownWritesEitherWay(t *testing.T) {
	h := []Section{
		wrote(sec("a", 0, 5, 100), WriteOK, 1),
		wrote(sec("b", 5, 10, 100), WriteFailed, 2),                                        // timed out: applied or not
		with(sec("k", 10, 0, 100), func(s *Section) { s.Ops = []Op{{Key: "unfenced:n"}} }), // killed inside before writing, or after
		wrote(sec("f", 20, 25, 100), WriteRefused, 3),
	}
	for _, final := range []int64{1, 2, 3} {
		wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": final}))
	}
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 0}), CheckLostUpdate)
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 4}), CheckLostUpdate)
	wantChecks(t, CheckUpdates(nil, map[string]int64{"unfenced:x": 1}), CheckLostUpdate)
}

func TestUpdatesKeepsFencedAndUnfencedApart(t *testing.T) {
	h := []Section{wrote(sec("a", 0, 5, 100), WriteOK, 1), wrote(fenced("b", 1, 10), WriteOK, 1)}
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 1, "fenced:n": 1}))
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 2, "fenced:n": 1}), CheckLostUpdate)
}

func TestLeasesUsedInsideValidityPass(t *testing.T) {
	done := with(sec("b", 0, 50, 40), func(s *Section) { s.DoneAt, s.DoneUntil, s.Lost = 45*msec, 40*msec, true })
	wantChecks(t, CheckLeases([]Section{wrote(sec("a", 0, 5, 100), WriteOK, 1), done}, 10*time.Millisecond))
}

func TestLeasesFlagsUsePastUntilAndAfterDone(t *testing.T) {
	past := with(sec("a", 0, 50, 40), func(s *Section) { s.UseAt, s.UseUntil, s.DoneAt, s.DoneUntil = 45*msec, 40*msec, 41*msec, 40*msec })
	wantChecks(t, CheckLeases([]Section{past}, 10*time.Millisecond), CheckLeaseUse)
	after := with(sec("a", 0, 50, 100), func(s *Section) {
		s.UseAt, s.UseUntil, s.UseDone, s.DoneAt, s.DoneUntil = 45*msec, 100*msec, true, 30*msec, 100*msec
	})
	wantChecks(t, CheckLeases([]Section{after}, 10*time.Millisecond), CheckLeaseUse)
}

func TestLeasesFlagsLateDone(t *testing.T) {
	late := with(sec("a", 0, 100, 40), func(s *Section) { s.DoneAt, s.DoneUntil = 80*msec, 40*msec })
	wantChecks(t, CheckLeases([]Section{late}, 10*time.Millisecond), CheckDoneLate)
	never := sec("a", 0, 100, 40) // held 60ms past Until and Done never closed
	wantChecks(t, CheckLeases([]Section{never}, 10*time.Millisecond), CheckDoneLate)
	wantChecks(t, CheckLeases([]Section{sec("a", 0, 45, 40)}, 10*time.Millisecond)) // within slack
}

func TestAcquiredAfterHealing(t *testing.T) {
	h := []Section{sec("a", 0, 5, 100), sec("a", 120, 125, 200), sec("b", 150, 155, 250), sec("c", 10, 15, 100)}
	wantChecks(t, CheckAcquiredAfter(h, []string{"a", "b"}, 100*msec, 100*time.Millisecond))
	wantChecks(t, CheckAcquiredAfter(h, []string{"a", "b", "c"}, 100*msec, 100*time.Millisecond), CheckLiveness)
	wantChecks(t, CheckAcquiredAfter(h, []string{"a", "b"}, 100*msec, 30*time.Millisecond), CheckLiveness)
}

func TestJournalKeepsTheExitLineAndDropsATornOne(t *testing.T) {
	path := t.TempDir() + "/h.jsonl"
	j, err := CreateJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	in := sec("a", 0, 0, 100)
	out := sec("a", 0, 10, 100)
	next := with(sec("a", 20, 0, 120), func(s *Section) { s.Seq = 1 })
	for _, s := range []Section{in, out, next} {
		if err := j.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	appendTorn(t, path, `{"client":"a","seq":2,"ente`)
	got, err := ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0], out) || !reflect.DeepEqual(got[1], next) {
		t.Errorf("got %v; want [%v %v]", got, out, next)
	}
}

func appendTorn(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// multi builds a multi claim's section on names (sorted, as a Multi's leases are), fenced with
// fences when given.
func multi(client string, names []string, fences []uint64, enter, exit int64) Section {
	return with(sec(client, enter, exit, exit+100), func(s *Section) {
		s.Primitive, s.Names, s.Name = PrimMulti, names, strings.Join(names, "+")
		if fences != nil {
			s.Fenced, s.Fences = true, fences
		}
		for i, name := range names {
			op := Op{Key: ResourceKey(name, s.Fenced, -1)}
			if s.Fenced {
				op.Fence = fences[i]
			}
			s.Ops = append(s.Ops, op)
		}
	})
}

func named(name string, s Section) Section { s.Name = name; return s }

func TestPerNameSplitsAMultiClaimByName(t *testing.T) {
	m := multi("a", []string{"x", "y"}, []uint64{3, 7}, 0, 10)
	single := named("x", fenced("b", 8, 20))
	got := PerName([]Section{m, single})
	if len(got) != 3 {
		t.Fatalf("got %d sections; want 3 (x and y of the multi, then the single)", len(got))
	}
	for i, want := range []struct {
		name  string
		fence uint64
	}{{"x", 3}, {"y", 7}, {"x", 8}} {
		s := got[i]
		if s.Name != want.name || s.Fence != want.fence || !s.Fenced || len(s.Names) != 0 {
			t.Errorf("section %d: name %q fence %d fenced %v names %v; want %q, %d, fenced, no names", i, s.Name, s.Fence, s.Fenced, s.Names, want.name, want.fence)
		}
	}
	if len(got[0].Ops) != 1 || got[0].Ops[0].Key != "fenced:x" || len(got[1].Ops) != 1 || got[1].Ops[0].Key != "fenced:y" {
		t.Errorf("ops %v and %v; want the multi's use of x's counter, then of y's", got[0].Ops, got[1].Ops)
	}
}

func TestExclusionFlagsMultisThatShareAName(t *testing.T) {
	// Overlapping in time on disjoint names: fine.
	wantChecks(t, CheckExclusive(PerName([]Section{
		multi("a", []string{"w", "x"}, nil, 0, 30), multi("b", []string{"y", "z"}, nil, 10, 40),
		multi("c", []string{"x", "y"}, nil, 40, 50), // after both
	})))
	// Two holders of y at once, one of them holding x too: flagged, on y only.
	got := CheckExclusive(PerName([]Section{multi("a", []string{"x", "y"}, nil, 0, 30), multi("b", []string{"y", "z"}, nil, 10, 40)}))
	wantChecks(t, got, CheckExclusion)
	if len(got) == 1 && got[0].Name != "y" {
		t.Errorf("flagged %q; want y", got[0].Name)
	}
	// A single Mutex of a name inside a multi holding it: flagged.
	wantChecks(t, CheckExclusive(PerName([]Section{multi("a", []string{"x", "y"}, nil, 0, 30), named("x", sec("b", 10, 20, 120))})), CheckExclusion)
}

func TestFencingTokensIncreasePerNameAcrossMultis(t *testing.T) {
	h := []Section{
		multi("a", []string{"x", "y"}, []uint64{5, 9}, 0, 5),
		multi("b", []string{"y", "z"}, []uint64{10, 2}, 10, 15), // z's first token: no order to break
		named("x", fenced("c", 6, 20)),
	}
	wantChecks(t, CheckFencingOrder(PerName(h)))
	// x's token goes back from 5 to 4: flagged on x (the multi's tokens are read per name).
	h[2] = named("x", fenced("c", 4, 20))
	got := CheckFencingOrder(PerName(h))
	wantChecks(t, got, CheckFencing)
	if len(got) == 1 && got[0].Name != "x" {
		t.Errorf("flagged %q; want x", got[0].Name)
	}
}

// leader builds an election's leadership of name, term, from enter to exit (ms).
func leader(client, name string, term uint64, enter, exit int64) Section {
	return with(sec(client, enter, exit, exit+100), func(s *Section) {
		s.Primitive, s.Name, s.Fenced, s.Fence, s.Value = PrimElection, name, true, term, LeaderValue(client, 0, int(term))
	})
}

func TestElectionOneLeaderPerTermAndTermsIncrease(t *testing.T) {
	good := []Section{leader("a", "e", 1, 0, 10), leader("b", "e", 2, 10, 20), leader("a", "f", 2, 0, 50), leader("c", "e", 5, 30, 40)}
	wantChecks(t, CheckTerms(good))
	wantChecks(t, CheckExclusive(good))
	wantChecks(t, CheckFencingOrder(good))
	// Two leaderships of term 2 on e (one after the other, so no overlap): one leader per term.
	wantChecks(t, CheckTerms(append(good, leader("d", "e", 2, 50, 60))), CheckTerm)
	// A leader without a term.
	wantChecks(t, CheckTerms([]Section{leader("a", "e", 0, 0, 10)}), CheckTerm)
	// Two leaders at once.
	wantChecks(t, CheckExclusive([]Section{leader("a", "e", 1, 0, 10), leader("b", "e", 2, 5, 20)}), CheckExclusion)
	// A later leader with a lower term.
	wantChecks(t, CheckFencingOrder([]Section{leader("a", "e", 3, 0, 10), leader("b", "e", 2, 10, 20)}), CheckFencing)
}

func heard(observer, name string, ld Section, at int64) Observation {
	return Observation{Observer: observer, Name: name, Leader: Leader{Term: ld.Fence, Value: ld.Value, At: at * msec}}
}

func TestObserversHearIncreasingTermsOfTheRecordedLeaders(t *testing.T) {
	a, b, c := leader("a", "e", 1, 0, 10), leader("b", "e", 2, 10, 20), leader("c", "e", 4, 30, 40)
	h := []Section{a, b, c}
	healed := 25 * msec
	ok := []Observation{heard("o", "e", a, 1), heard("o", "e", c, 31), heard("p", "e", b, 11), heard("p", "e", c, 30)}
	slack := 2 * time.Millisecond
	got, excepted := CheckObserved(ok, h, healed, slack)
	wantChecks(t, got)
	if excepted != 0 {
		t.Errorf("excepted %d; want 0", excepted)
	}
	// A leader no section recorded (a campaign that did not return), and c heard with a lower
	// term before it entered (an earlier grant of its campaign, glimpsed while undone): counted,
	// not flagged.
	ghost := Observation{Observer: "o", Name: "e", Leader: Leader{Term: 2, Value: "x#0/1", At: 12 * msec}}
	glimpse := heard("o", "e", c, 29)
	glimpse.Term = 3
	got, excepted = CheckObserved([]Observation{heard("o", "e", a, 1), ghost, glimpse, heard("o", "e", c, 31)}, h, healed, slack)
	wantChecks(t, got)
	if excepted != 2 {
		t.Errorf("excepted %d; want 2", excepted)
	}
	// Terms out of order.
	got, _ = CheckObserved([]Observation{heard("o", "e", b, 11), heard("o", "e", a, 12), heard("o", "e", c, 31)}, h, healed, slack)
	wantChecks(t, got, CheckObserve)
	// b heard as the leader of term 3 after it entered, c as the leader of term 5: terms their
	// leases did not have (one leader per term: the observers must agree with the leaders).
	wrong := heard("o", "e", b, 13)
	wrong.Term = 3
	got, _ = CheckObserved([]Observation{wrong, heard("o", "e", c, 31)}, h, healed, slack)
	wantChecks(t, got, CheckTerm)
	higher := heard("o", "e", c, 31)
	higher.Term = 5
	got, _ = CheckObserved([]Observation{higher}, h, healed, slack)
	wantChecks(t, got, CheckTerm, CheckLiveness)
	// An observer that heard nothing of the leaders after the heal.
	got, _ = CheckObserved([]Observation{heard("o", "e", a, 1), heard("p", "e", c, 31)}, h, healed, slack)
	wantChecks(t, got, CheckLiveness)
}

func TestProgressFlagsAClientThatStopsAcquiring(t *testing.T) {
	h := []Section{sec("a", 10, 11, 100), sec("a", 50, 51, 150), sec("a", 90, 91, 190), sec("b", 5, 6, 100), sec("b", 95, 96, 190)}
	wantChecks(t, CheckProgress(h, []string{"a"}, 0, 100*msec, 45*time.Millisecond))
	got := CheckProgress(h, []string{"a", "b"}, 0, 100*msec, 45*time.Millisecond) // b: 90ms without
	wantChecks(t, got, CheckLiveness)
	wantChecks(t, CheckProgress(h, []string{"c"}, 0, 100*msec, 45*time.Millisecond), CheckLiveness) // never
	if g := longestGap(h, []string{"a", "b"}, 0, 100*msec); g != 90*time.Millisecond {
		t.Errorf("longest gap %v; want 90ms (b, from 5 to 95)", g)
	}
}

// An overlap is the documented caveat of a node that forgets (a clock step, an eviction) only
// when such a fault was on between the first holder's acquire and the second's entry; any other
// overlap, or one beside another kind of fault, stays a violation.
func TestAttributeExcusesOnlyOverlapsAForgetfulNodeExplains(t *testing.T) {
	overlap := func() []Violation {
		return CheckExclusive([]Section{sec("a", 10, 60, 100), sec("b", 40, 50, 140)})
	}
	fault := func(kind FaultKind, start, end int64) []Fault {
		return []Fault{{Kind: kind, Nodes: []int{0}, Start: start * msec, End: end * msec}}
	}
	for _, c := range []struct {
		name   string
		faults []Fault
		caveat bool
	}{
		{"clock step during a's section", fault(ClockJump, 20, 20), true},
		{"eviction on through a's acquire", fault(NodeEvict, 0, 15), true},
		{"clock step after b entered", fault(ClockJump, 45, 45), false},
		{"clock step before a's acquire", fault(ClockJump, 5, 5), false},
		{"eviction over before a's acquire", fault(NodeEvict, 0, 5), false},
		{"a node paused, not forgetful", fault(NodePause, 20, 30), false},
		{"no fault", nil, false},
	} {
		vs := Attribute(overlap(), c.faults, 100*time.Millisecond)
		if len(vs) != 1 || vs[0].Check != CheckExclusion {
			t.Fatalf("%s: %v; want one exclusion violation", c.name, vs)
		}
		if got := vs[0].Caveat != ""; got != c.caveat {
			t.Errorf("%s: caveat %q; want one: %v", c.name, vs[0].Caveat, c.caveat)
		}
	}
	// A waited from 0 and was granted by a round that began at 30 or later (its validity as
	// granted ends at 130, with a TTL of 100): a node that forgot before that round forgot
	// nothing of A's.
	waited := func() []Violation {
		a := with(sec("a", 60, 90, 130), func(s *Section) { s.AcquireStart, s.Granted = 0, 130*msec })
		return CheckExclusive([]Section{a, sec("b", 70, 80, 170)})
	}
	for _, c := range []struct {
		name   string
		faults []Fault
		caveat bool
	}{
		{"clock step while a waited", fault(ClockJump, 20, 20), false},
		{"eviction over while a waited", fault(NodeEvict, 5, 25), false},
		{"clock step after a's grant began", fault(ClockJump, 35, 35), true},
		{"eviction on into a's grant", fault(NodeEvict, 25, 32), true},
	} {
		vs := Attribute(waited(), c.faults, 100*time.Millisecond)
		if len(vs) != 1 || (vs[0].Caveat != "") != c.caveat {
			t.Errorf("%s: %v; want one exclusion violation, a caveat: %v", c.name, vs, c.caveat)
		}
	}
	// A late write beside a clock step is no caveat: only a paused process explains it.
	late := []Violation{{Check: CheckLeaseUse, Excerpt: []Section{sec("p.0", 10, 60, 30)}}}
	if vs := Attribute(late, fault(ClockJump, 20, 20), 100*time.Millisecond); vs[0].Caveat != "" {
		t.Errorf("a lease used late beside a clock step was excused: %q", vs[0].Caveat)
	}
}

// A stall of the test process excuses the late looks at their leases of its own clients, not of
// the client processes', and only when it overlaps the section.
func TestAttributeExcusesTestProcessStallsForItsOwnClients(t *testing.T) {
	stall := []Fault{{Kind: ProcessStall, Client: "test process", Start: 20 * msec, End: 900 * msec}}
	for _, c := range []struct {
		client      string
		enter, exit int64
		caveat      bool
	}{
		{"g1.2", 10, 950, true},
		{"q4.0", 10, 950, true},
		{"p0r3.1", 10, 950, false},  // a child process: the test process's stall is not its own
		{"g1.2", 1000, 1100, false}, // after the stall
	} {
		s := sec(c.client, c.enter, c.exit, c.enter+5)
		vs := Attribute([]Violation{{Check: CheckLateEntry, Excerpt: []Section{s}}}, stall, 100*time.Millisecond)
		if (vs[0].Caveat != "") != c.caveat {
			t.Errorf("%s in [%d, %d]: caveat %q; want one: %v", c.client, c.enter, c.exit, vs[0].Caveat, c.caveat)
		}
	}
}
