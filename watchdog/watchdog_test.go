package watchdog_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/watchdog"
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
