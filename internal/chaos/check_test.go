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
