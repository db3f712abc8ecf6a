package watchdog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/internal/watchdog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServers is a RenewFunc whose answers the test sets. It records when each batch came and
// how big it was. Time inside synctest bubbles is the fake clock, so the schedule is exact.
type fakeServers struct {
	mu      sync.Mutex
	batches []batchSeen
	answer  func(r *watchdog.Renewal, start time.Time)
	block   chan struct{} // when set, renewals wait on it (or ctx) before answering
}

type batchSeen struct {
	at   time.Time
	size int
	ttls []time.Duration
}

func (f *fakeServers) renew(ctx context.Context, batch []watchdog.Renewal) {
	start := time.Now()
	seen := batchSeen{at: start, size: len(batch)}
	for _, r := range batch {
		seen.ttls = append(seen.ttls, r.TTL)
	}
	f.mu.Lock()
	f.batches = append(f.batches, seen)
	block, answer := f.block, f.answer
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return
		}
	}
	for i := range batch {
		answer(&batch[i], start)
	}
}

func (f *fakeServers) seen() []batchSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]batchSeen(nil), f.batches...)
}

// renewOK answers like a healthy quorum: validity start + TTL − drift.
func renewOK(drift time.Duration) func(*watchdog.Renewal, time.Time) {
	return func(r *watchdog.Renewal, start time.Time) {
		r.OK, r.Until = true, start.Add(r.TTL-drift)
	}
}

func renewFail(r *watchdog.Renewal, _ time.Time) { r.Err = errors.New("node timeout") }

const ttl, drift = 300 * time.Millisecond, 5 * time.Millisecond

func TestRenewsAtAThirdOfTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew, watchdog.WithBatchWindow(0))
		defer w.Close()
		t0 := time.Now()
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: t0.Add(ttl - drift)})
		require.NoError(t, err)

		time.Sleep(time.Second)
		synctest.Wait()
		got := f.seen()
		require.NotEmpty(t, got)
		for i, b := range got {
			want := t0.Add(time.Duration(i+1) * ttl / 3)
			assert.Equal(t, want, b.at, "renewal %d", i)
		}
		assert.Len(t, got, 10, "renewals in 1s at TTL/3 = 100ms")
		assert.NoError(t, e.Err())
		assert.Equal(t, got[len(got)-1].at.Add(ttl-drift), e.Until())
	})
}

func TestRenewalsDueTogetherShareOneBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew, watchdog.WithBatchWindow(10*time.Millisecond))
		defer w.Close()
		t0 := time.Now()
		for i := 0; i < 1000; i++ {
			// Acquired over 5ms: all fall due within the window.
			start := t0.Add(time.Duration(i%6) * time.Millisecond)
			_, err := w.Add(watchdog.Spec{TTL: ttl, Start: start, Until: start.Add(ttl - drift)})
			require.NoError(t, err)
		}
		time.Sleep(ttl/3 + 20*time.Millisecond)
		synctest.Wait()
		got := f.seen()
		require.Len(t, got, 1, "1000 leases due within 5ms should renew in one batch")
		assert.Equal(t, 1000, got[0].size)
		assert.Equal(t, 1000, w.Len())
	})
}

func TestFailedRenewalsLoseLeaseExactlyAtUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewFail}
		w := watchdog.New(f.renew)
		defer w.Close()
		t0 := time.Now()
		until := t0.Add(ttl - drift)
		lost := make(chan error, 1)
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: until, OnLost: func(err error) { lost <- err }})
		require.NoError(t, err)

		<-e.Done()
		assert.Equal(t, until, time.Now(), "Done must close at Until, not later")
		require.ErrorIs(t, e.Err(), watchdog.ErrExpired)
		require.ErrorIs(t, <-lost, watchdog.ErrExpired)
		// It kept retrying while time remained, more often as the end neared.
		assert.Greater(t, len(f.seen()), 3, "renewal attempts before the loss")
		assert.Zero(t, w.Len())
	})
}

func TestLateReplyNeverRevivesLostLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		f := &fakeServers{answer: renewOK(drift), block: block}
		w := watchdog.New(f.renew)
		defer w.Close()
		until := time.Now().Add(ttl - drift)
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: until})
		require.NoError(t, err)

		// The first renewal hangs past Until: the loss timer fires regardless.
		<-e.Done()
		assert.Equal(t, until, time.Now())
		close(block) // the reply arrives late, saying OK
		synctest.Wait()
		require.ErrorIs(t, e.Err(), watchdog.ErrExpired)
		assert.Equal(t, until, e.Until(), "a late reply moved Until of a lost lease")
	})
}

func TestFinalRenewalErrorEndsLeaseAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := errors.New("key gone")
		f := &fakeServers{answer: func(r *watchdog.Renewal, _ time.Time) { r.Err, r.Final = gone, true }}
		w := watchdog.New(f.renew)
		defer w.Close()
		t0 := time.Now()
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: t0.Add(ttl - drift)})
		require.NoError(t, err)
		<-e.Done()
		assert.Equal(t, t0.Add(ttl/3), time.Now(), "lost at the first renewal")
		require.ErrorIs(t, e.Err(), gone)
	})
}

func TestStopEndsRenewalsWithoutOnLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew)
		defer w.Close()
		called := false
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl - drift), OnLost: func(error) { called = true }})
		require.NoError(t, err)
		time.Sleep(150 * time.Millisecond)
		released := errors.New("released")
		require.NoError(t, e.Stop(released))
		n := len(f.seen())
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Len(t, f.seen(), n, "renewals after Stop")
		assert.False(t, called, "onLost called for a stopped entry")
		require.ErrorIs(t, e.Err(), released)
		require.ErrorIs(t, e.Stop(errors.New("again")), released, "second Stop reports the first end")
	})
}

func TestStopDuringRenewalDropsItsResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		f := &fakeServers{answer: renewOK(drift), block: block}
		w := watchdog.New(f.renew)
		defer w.Close()
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl - drift)})
		require.NoError(t, err)
		time.Sleep(ttl/3 + time.Millisecond) // renewal in flight, blocked
		until := e.Until()
		require.NoError(t, e.Stop(errors.New("released")))
		close(block)
		synctest.Wait()
		assert.Equal(t, until, e.Until(), "a renewal result was applied after Stop")
		assert.Zero(t, w.Len())
	})
}

func TestMaxHoldCapsRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew)
		defer w.Close()
		t0 := time.Now()
		holdUntil := t0.Add(time.Second)
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: t0.Add(ttl - drift), HoldUntil: holdUntil})
		require.NoError(t, err)
		<-e.Done()
		require.ErrorIs(t, e.Err(), watchdog.ErrMaxHold)
		assert.False(t, time.Now().After(holdUntil), "held until %v, past the cap", time.Now().Sub(t0))
		got := f.seen()
		last := got[len(got)-1]
		assert.Equal(t, holdUntil, last.at.Add(last.ttls[0]), "the last renewal asks for exactly the time left")
	})
}

func TestCloseCancelsRenewalAndEndsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{}) // never closed: only Close's cancellation frees the renewal
		f := &fakeServers{answer: renewOK(drift), block: block}
		w := watchdog.New(f.renew)
		lost := 0
		var es []*watchdog.Entry
		for i := 0; i < 3; i++ {
			e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl - drift), OnLost: func(error) { lost++ }})
			require.NoError(t, err)
			es = append(es, e)
		}
		time.Sleep(ttl/3 + time.Millisecond)
		w.Close()
		for _, e := range es {
			require.ErrorIs(t, e.Err(), watchdog.ErrClosed)
		}
		assert.Equal(t, 3, lost)
		_, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl)})
		require.ErrorIs(t, err, watchdog.ErrClosed)
		w.Close() // twice is fine
	})
}

func TestOwnerIsGivenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew)
		defer w.Close()
		type lease struct{ name string }
		owner := &lease{"x"}
		e, err := w.Add(watchdog.Spec{Owner: owner, TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl)})
		require.NoError(t, err)
		assert.Same(t, owner, e.Owner())
	})
}

// Leases acquired at any times settle into about one batch per renewal interval: renewing early
// keeps leases renewed together in step. 10,000 leases acquired over 3s with a TTL of 3s cost, once
// settled, one batch per TTL/3 tick, handed over in chunks of at most 2,000: 5 calls per tick.
func TestLeasesAcquiredAtAnyTimeSettleIntoOneBatchPerTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl, n = 3 * time.Second, 10000
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew, watchdog.WithMaxBatch(2000))
		defer w.Close()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			// Acquired one every 300µs, over 3s.
			time.Sleep(time.Until(t0.Add(time.Duration(i) * 3 * time.Second / n)))
			start := time.Now()
			_, err := w.Add(watchdog.Spec{TTL: ttl, Start: start, Until: start.Add(ttl - drift)})
			require.NoError(t, err)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		got := f.seen()
		tick := ttl / 3
		calls := map[int]int{}
		renewed := map[int]int{}
		for _, b := range got {
			k := int(b.at.Sub(t0) / tick)
			calls[k]++
			renewed[k] += b.size
			assert.LessOrEqual(t, b.size, 2000, "a call renewed more than the max batch")
		}
		// After the leases were all acquired and one more interval to settle, every tick costs at
		// most 6 calls (one batch in chunks of 2,000, plus a straggler at most).
		for k := 5; k < 20; k++ {
			assert.LessOrEqual(t, calls[k], 6, "renew calls in tick %d (%v-%v): %d", k, time.Duration(k)*tick, time.Duration(k+1)*tick, calls[k])
		}
		t.Logf("renew calls per TTL/3 tick: %v", calls)
		assert.Equal(t, n, w.Len(), "leases lost")
	})
}

// A huge batch goes out in chunks: one that fails (a per-node timeout) fails only its own leases,
// which are retried.
func TestMaxBatchSplitsAHugeBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		f := &fakeServers{answer: renewOK(drift)}
		failFirst := func(ctx context.Context, batch []watchdog.Renewal) {
			if calls.Add(1) == 1 {
				for i := range batch {
					batch[i].Err = errors.New("node timeout")
				}
				return
			}
			f.renew(ctx, batch)
		}
		w := watchdog.New(failFirst, watchdog.WithMaxBatch(2000))
		defer w.Close()
		start := time.Now()
		var es []*watchdog.Entry
		for i := 0; i < 5000; i++ {
			e, err := w.Add(watchdog.Spec{TTL: ttl, Start: start, Until: start.Add(ttl - drift)})
			require.NoError(t, err)
			es = append(es, e)
		}
		time.Sleep(ttl/3 + time.Millisecond)
		synctest.Wait()
		got := f.seen()
		require.GreaterOrEqual(t, len(got), 2)
		// Chunks of 2,000, 2,000 and 1,000 go out a few at once, in any order: the one sent first
		// failed, the other two were renewed.
		assert.LessOrEqual(t, got[0].size, 2000)
		assert.LessOrEqual(t, got[1].size, 2000)
		assert.Contains(t, []int{3000, 4000}, got[0].size+got[1].size)
		time.Sleep(2 * ttl)
		synctest.Wait()
		for _, e := range es {
			require.NoError(t, e.Err(), "a lease of the failed chunk was lost instead of retried")
		}
	})
}

// A renewal capped by the max hold time shortens the lease on the servers: Until comes down with
// it, before the renewal is sent, whether or not it succeeds.
func TestCappedRenewalBringsUntilDown(t *testing.T) {
	for _, ok := range []bool{true, false} {
		t.Run(fmt.Sprintf("renewal ok=%v", ok), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const ttl = time.Second
				answer := renewOK(drift)
				if !ok {
					answer = renewFail
				}
				f := &fakeServers{answer: answer}
				w := watchdog.New(f.renew, watchdog.WithDrift(func(time.Duration) time.Duration { return drift }))
				defer w.Close()
				t0 := time.Now()
				holdUntil := t0.Add(600 * time.Millisecond)
				e, err := w.Add(watchdog.Spec{TTL: ttl, Start: t0, Until: t0.Add(ttl - drift), HoldUntil: holdUntil})
				require.NoError(t, err)
				time.Sleep(ttl/3 + time.Millisecond)
				synctest.Wait()
				got := f.seen()
				require.NotEmpty(t, got)
				asked := got[0].ttls[0]
				assert.Equal(t, holdUntil.Sub(got[0].at), asked, "the capped renewal asks for the time left")
				assert.Equal(t, got[0].at.Add(asked-drift), e.Until(), "Until did not come down to the capped renewal's end")
				<-e.Done()
				assert.False(t, time.Now().After(holdUntil), "held past the cap")
				require.ErrorIs(t, e.Err(), watchdog.ErrMaxHold)
			})
		})
	}
}

// Done closes before OnLost runs, and Err already says why when it does.
func TestDoneClosesBeforeOnLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewFail}
		w := watchdog.New(f.renew)
		defer w.Close()
		var e *watchdog.Entry
		var doneFirst, errSet bool
		ready := make(chan struct{})
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: time.Now(), Until: time.Now().Add(ttl - drift), OnLost: func(error) {
			<-ready
			select {
			case <-e.Done():
				doneFirst = true
			default:
			}
			errSet = e.Err() != nil
		}})
		require.NoError(t, err)
		close(ready)
		<-e.Done()
		synctest.Wait()
		assert.True(t, doneFirst, "OnLost ran before Done closed")
		assert.True(t, errSet)
	})
}

// A lease added while the goroutines sleep toward a later wake-up (a long lease's renewal, its
// loss) moves their wake-ups earlier: it is renewed on its own schedule and, when renewals fail,
// lost exactly at its Until, not at the long lease's times.
func TestALeaseAddedWhileTheWatchdogSleepsKeepsItsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServers{answer: renewOK(drift)}
		w := watchdog.New(f.renew, watchdog.WithBatchWindow(0), watchdog.WithEarlyRenewal(0))
		defer w.Close()
		const long = 30 * time.Second
		t0 := time.Now()
		_, err := w.Add(watchdog.Spec{TTL: long, Start: t0, Until: t0.Add(long - drift)})
		require.NoError(t, err)
		time.Sleep(time.Second)
		synctest.Wait() // both goroutines asleep until the long lease's times

		t1 := time.Now()
		e, err := w.Add(watchdog.Spec{TTL: ttl, Start: t1, Until: t1.Add(ttl - drift)})
		require.NoError(t, err)
		time.Sleep(ttl/3 + time.Millisecond)
		synctest.Wait()
		got := f.seen()
		require.Len(t, got, 1, "the short lease's first renewal")
		assert.Equal(t, t1.Add(ttl/3), got[0].at)
		assert.Equal(t, 1, got[0].size)

		// Now renewals fail: the loss clock must end it at its Until.
		f.mu.Lock()
		f.answer = renewFail
		f.mu.Unlock()
		until := e.Until()
		<-e.Done()
		assert.Equal(t, until, time.Now(), "Done at the short lease's Until")
		require.ErrorIs(t, e.Err(), watchdog.ErrExpired)
	})
}
