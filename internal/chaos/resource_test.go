package chaos

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// The fenced resource against a real server, with tokens chosen by hand: the interleaving that
// loses an update without fencing loses none with it, and the checks agree with the counter in
// both cases.
func TestFencedResourceRefusesAStaleHolder(t *testing.T) {
	ctx := context.Background()
	for _, fencedRun := range []bool{false, true} {
		res := NewResource(redistest.Start(t, 1)[0].Client())
		// p (token 5) reads, then stalls; q (token 6) reads and writes; p wakes and writes.
		p := Section{Client: "p", Name: "n", Mode: Exclusive, Fenced: fencedRun, Fence: 5, Exit: 1}
		q := Section{Client: "q", Name: "n", Mode: Exclusive, Fenced: fencedRun, Fence: 6, Seq: 1, Exit: 1}
		var tick int64
		now := func() int64 { tick++; return tick }
		read := func(s *Section) {
			op := Op{Key: ResourceKey(s.Name, s.Fenced, -1)}
			if s.Fenced {
				op.Fence = s.Fence
			}
			op.ReadCall = now()
			v, err := res.Read(ctx, op.Key, op.Fence)
			if err != nil {
				t.Fatal(err)
			}
			op.ReadRet, op.Read, op.Value = now(), WriteOK, v
			s.Ops = []Op{op}
		}
		write := func(s *Section) {
			op := &s.Ops[0]
			op.WriteCall = now()
			switch err := res.Write(ctx, op.Key, op.Fence, op.Value+1); {
			case err == nil:
				op.Wrote = WriteOK
			case errors.Is(err, ErrFenced):
				op.Wrote = WriteRefused
			default:
				t.Fatal(err)
			}
			op.WriteRet = now()
		}
		read(&p)
		read(&q)
		write(&q)
		write(&p)
		finals, err := res.Finals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := append(CheckUpdates([]Section{p, q}, finals), CheckLinearizable([]Section{p, q}, 10*time.Second)...)
		if fencedRun {
			if p.Ops[0].Wrote != WriteRefused || q.Ops[0].Wrote != WriteOK || len(got) != 0 {
				t.Errorf("fenced: p %s, q %s, violations %v; want p refused, q ok, none", p.Ops[0].Wrote, q.Ops[0].Wrote, got)
			}
			// A read by the stale holder is refused too.
			if _, err := res.Read(ctx, p.Ops[0].Key, p.Fence); !errors.Is(err, ErrFenced) {
				t.Errorf("stale fenced read: got %v; want ErrFenced", err)
			}
		} else {
			wantChecks(t, got, CheckLostUpdate, CheckLinear)
		}
	}
}
