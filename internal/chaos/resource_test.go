package chaos

import (
	"context"
	"errors"
	"testing"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// The fenced resource against a real server, with tokens chosen by hand (the lock hands out none
// yet): the interleaving that loses an update without fencing loses none with it, and the checks
// agree with the counter in both cases.
func TestFencedResourceRefusesAStaleHolder(t *testing.T) {
	ctx := context.Background()
	for _, fencedRun := range []bool{false, true} {
		res := NewResource(redistest.Start(t, 1)[0].Client())
		// p (token 5) reads, then stalls; q (token 6) reads and writes; p wakes and writes.
		p := Section{Client: "p", Name: "n", Mode: Exclusive, Fenced: fencedRun, Fence: 5}
		q := Section{Client: "q", Name: "n", Mode: Exclusive, Fenced: fencedRun, Fence: 6, Seq: 1}
		pv, err := res.Read(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		qv, err := res.Read(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			s *Section
			v int64
		}{{&q, qv + 1}, {&p, pv + 1}} {
			w.s.Value = w.v
			switch err := res.Write(ctx, w.s, w.v); {
			case err == nil:
				w.s.Wrote = WriteOK
			case errors.Is(err, ErrFenced):
				w.s.Wrote = WriteRefused
			default:
				t.Fatal(err)
			}
		}
		finals, err := res.Finals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := CheckUpdates([]Section{p, q}, finals)
		if fencedRun {
			if p.Wrote != WriteRefused || q.Wrote != WriteOK || len(got) != 0 {
				t.Errorf("fenced: p %s, q %s, violations %v; want p refused, q ok, none", p.Wrote, q.Wrote, got)
			}
			// A read by the stale holder is refused too.
			if _, err := res.Read(ctx, &p); !errors.Is(err, ErrFenced) {
				t.Errorf("stale fenced read: got %v; want ErrFenced", err)
			}
		} else if len(got) != 1 || got[0].Check != CheckLostUpdate {
			t.Errorf("unfenced: violations %v; want one lost update", got)
		}
	}
}
