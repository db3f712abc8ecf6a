package chaos

import (
	"testing"
	"time"
)

// use builds a section of client on name "n" whose one use of the counter reads value at
// [rc, rc+1] and, when w is not WriteNone, writes value+1 at [wc, wc+1] with outcome w (times in
// ms; a write of unknown outcome has no return).
func use(client string, token uint64, rc int64, read Write, value int64, wc int64, w Write) Section {
	s := sec(client, rc, wc+2, 1000)
	s.Fenced, s.Fence = token != 0, token
	op := Op{Key: ResourceKey("n", token != 0, -1), Fence: token, ReadCall: rc * msec, ReadRet: (rc + 1) * msec, Read: read, Value: value}
	if w != WriteNone {
		op.WriteCall, op.Wrote = wc*msec, w
		if w != WriteFailed {
			op.WriteRet = (wc + 1) * msec
		}
	}
	s.Ops = []Op{op}
	return s
}

// reader builds a plain read of value at [rc, rc+1] (ms).
func reader(client string, rc, value int64) Section {
	s := use(client, 0, rc, WriteOK, value, 0, WriteNone)
	s.Mode = Shared
	return s
}

func TestLinearizablePassesIncrementsOneAtATime(t *testing.T) {
	wantChecks(t, CheckLinearizable([]Section{
		use("a", 0, 0, WriteOK, 0, 2, WriteOK),
		use("b", 0, 10, WriteOK, 1, 12, WriteOK),
		reader("r", 20, 2),
		reader("s", 12, 1), // concurrent with b's write: either value
	}, time.Second))
}

func TestLinearizableFlagsALostUpdate(t *testing.T) {
	// a and b both read 0 and both wrote 1: the second write found 1 where its section read 0.
	wantChecks(t, CheckLinearizable([]Section{
		use("a", 0, 0, WriteOK, 0, 4, WriteOK),
		use("b", 0, 2, WriteOK, 0, 6, WriteOK),
	}, time.Second), CheckLinear)
}

// The final count cannot see this one: a write of unknown outcome that did apply makes up for the
// lost update (final 2, two accepted writes), but the reads and writes in order cannot be
// explained.
func TestLinearizableFlagsALostUpdateThatTheFinalCountMisses(t *testing.T) {
	h := []Section{
		use("a", 0, 0, WriteOK, 0, 4, WriteOK),
		use("b", 0, 2, WriteOK, 0, 6, WriteOK),
		use("c", 0, 10, WriteOK, 1, 12, WriteFailed),
	}
	wantChecks(t, CheckUpdates(h, map[string]int64{"unfenced:n": 2}))
	wantChecks(t, CheckLinearizable(h, time.Second), CheckLinear)
}

func TestLinearizableFlagsAReadOfAnOverwrittenValue(t *testing.T) {
	wantChecks(t, CheckLinearizable([]Section{
		use("a", 0, 0, WriteOK, 0, 2, WriteOK),
		reader("r", 10, 0), // a's write of 1 had returned
	}, time.Second), CheckLinear)
}

func TestLinearizableAllowsAWriteOfUnknownOutcomeEitherWay(t *testing.T) {
	killed := use("k", 0, 0, WriteOK, 0, 0, WriteNone)
	killed.Exit = 0 // killed after its read: its write may or may not have gone out
	for _, v := range []int64{0, 1} {
		wantChecks(t, CheckLinearizable([]Section{killed, reader("r", 50, v)}, time.Second))
	}
	wantChecks(t, CheckLinearizable([]Section{killed, reader("r", 50, 2)}, time.Second), CheckLinear)
}

func TestLinearizableFencedStaleHolder(t *testing.T) {
	// p (token 5) reads 0 and stalls; q (token 6) reads 0 and writes 1; p's write is refused.
	refused := []Section{
		use("p", 5, 0, WriteOK, 0, 20, WriteRefused),
		use("q", 6, 5, WriteOK, 0, 7, WriteOK),
		with(reader("r", 30, 1), func(s *Section) { s.Ops[0].Key = ResourceKey("n", true, -1) }), // the writers' counter
	}
	wantChecks(t, CheckLinearizable(refused, time.Second))
	// The same with p's stale write accepted: the fence failed.
	accepted := []Section{
		use("p", 5, 0, WriteOK, 0, 20, WriteOK),
		use("q", 6, 5, WriteOK, 0, 7, WriteOK),
	}
	wantChecks(t, CheckLinearizable(accepted, time.Second), CheckLinear)
	// A read with a token below one already seen is refused, never answered.
	stale := []Section{
		use("q", 6, 0, WriteOK, 0, 2, WriteOK),
		use("p", 5, 10, WriteOK, 1, 0, WriteNone),
	}
	wantChecks(t, CheckLinearizable(stale, time.Second), CheckLinear)
}
