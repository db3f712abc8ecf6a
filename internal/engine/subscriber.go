package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// waiter is one blocked acquire's interest in a name's wake-up channel. A release publishes the
// tokens of the waiters it served, separated by spaces, so only they are woken. wake has room for
// one signal: several wake-ups before the waiter looks collapse into one re-check.
//
// A token published as "<token>#<request number>[#<fencing counter>]" says that the release
// granted the claim to the waiter outright, in answer to that request of its (a direct grant: see
// Quorum.acquireRemote); the waiter keeps the last such grant it heard of.
type waiter struct {
	channel string
	token   string
	wake    chan struct{}

	mu    sync.Mutex
	seq   int64  // the request number of the last direct grant heard of; 0 for none
	fence uint64 // its fencing counter, 0 when unfenced

	// A listener's (see Listener) hears every message of its channel instead: it keeps them, and
	// resync says one may have been missed.
	listen    bool
	heardMsgs []string
	resync    bool
}

// note keeps a listener's message; "" is a subscription confirmed or a connection failed, when
// messages may have been missed.
func (w *waiter) note(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case msg == "":
		w.resync = true
	case len(w.heardMsgs) >= maxHeard:
		w.heardMsgs, w.resync = nil, true
	default:
		w.heardMsgs = append(w.heardMsgs, msg)
	}
}

// granted returns the fencing counter of a direct grant made in answer to request seq, and
// whether one was heard of.
func (w *waiter) granted(seq int64) (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fence, seq > 0 && w.seq == seq
}

// heard records the direct grant a wake-up described ("<request number>[#<fencing counter>]");
// anything it cannot read is ignored, and the waiter then asks the servers.
func (w *waiter) heard(grant string) {
	seqText, fenceText, fenced := strings.Cut(grant, "#")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq <= 0 {
		return
	}
	var fence uint64
	if fenced {
		if fence, err = strconv.ParseUint(fenceText, 10, 64); err != nil {
			return
		}
	}
	w.mu.Lock()
	w.seq, w.fence = seq, fence
	w.mu.Unlock()
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// subscriber is the one pub/sub connection of a Quorum to one node. It carries the wake-up
// channels of every name that has a blocked waiter in this process: a channel is subscribed when
// its first waiter arrives and unsubscribed when its last leaves. The connection is opened when
// the first waiter arrives and closed by Quorum.Close.
//
// A waiter is woken when a release publishes its token on its channel, when the subscription to
// its channel is confirmed (closing the race between a failed attempt and the subscription taking
// effect), and when the connection fails or is re-established (go-redis re-subscribes after a
// reconnect, and the confirmations wake everyone): a waiter re-checks the lock whenever a message
// for it might have been missed.
//
// A channel whose last waiter leaves stays subscribed for a short linger before it is
// unsubscribed, so that a name under steady contention does not pay a SUBSCRIBE and an
// UNSUBSCRIBE per acquisition.
//
// Its SUBSCRIBE and UNSUBSCRIBE calls run under io, outside mu, one at a time and in order: a call
// can block for as long as go-redis holds the connection (a reconnect to a hung node dials and
// handshakes under its lock), and mu is taken by what must never wait for a node — a waiter
// leaving on its way out of an acquire whose grant's validity is running, and the receive
// goroutine's wake-ups.
type subscriber struct {
	client  redis.UniversalClient
	timeout time.Duration

	io       sync.Mutex // held across a SUBSCRIBE or UNSUBSCRIBE; taken before mu
	mu       sync.Mutex
	ps       *redis.PubSub
	channels map[string]*subscription
	closed   bool
	done     chan struct{} // closed when the receive goroutine exits
}

// subscription is one channel: its waiters, whether it is subscribed, and the timer that
// unsubscribes it once it has had no waiter for the linger.
type subscription struct {
	waiters    map[*waiter]struct{}
	subscribed bool
	linger     *time.Timer
}

// linger is how long a channel stays subscribed after its last waiter leaves.
const linger = 500 * time.Millisecond

// pingEvery is how long the receive loop waits for a message before it pings, so that a dead
// connection is noticed (and re-established) while it is idle.
const pingEvery = 5 * time.Second

func newSubscriber(c redis.UniversalClient, timeout time.Duration) *subscriber {
	return &subscriber{client: c, timeout: timeout, channels: make(map[string]*subscription)}
}

// add registers w on its channel, without I/O. A waiter registers before the attempt that may
// queue it on the server, so that no wake-up for its token can arrive before it listens; it hears
// messages from then on if the channel is subscribed (see subscribe).
func (s *subscriber) add(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.channels[w.channel]
	if sub == nil {
		sub = &subscription{waiters: make(map[*waiter]struct{}, 1)}
		s.channels[w.channel] = sub
	}
	if sub.linger != nil {
		sub.linger.Stop()
		sub.linger = nil
	}
	sub.waiters[w] = struct{}{}
}

// subscribe makes sure w's channel is subscribed. A new subscription's confirmation wakes the
// waiters, closing the race with a message published before the server had the subscription. It
// reports false when the subscription could not be sent; the waiter then relies on its fallback
// timer.
func (s *subscriber) subscribe(w *waiter) bool {
	// A channel already subscribed costs no I/O, so its waiter does not queue on io behind a
	// SUBSCRIBE of another channel to a node that does not answer.
	if ok, done := s.subscribed(w); done {
		return ok
	}
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	sub := s.channels[w.channel]
	if s.closed || sub == nil {
		s.mu.Unlock()
		return false
	}
	if sub.subscribed {
		s.mu.Unlock()
		return true
	}
	// go-redis remembers the channel even when sending fails, and subscribes it on reconnect.
	sub.subscribed = true
	ps := s.ps
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if ps != nil {
		return ps.Subscribe(ctx, w.channel) == nil
	}
	// The first subscription opens the connection, within the timeout, before the receive
	// goroutine (whose reads wait for no deadline) owns it. Its failure is not reported: go-redis
	// keeps the channel and subscribes it when the receive goroutine reconnects, whose
	// confirmation wakes the waiters. (Reported, it made a waiter poll with backoff for the whole
	// of its wait: with 1,000 waiters opening their connections at once, the scale bench measured
	// 4 times the round trips per handoff.)
	ps = s.client.Subscribe(ctx, w.channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ps.Close()
		return false
	}
	s.ps, s.done = ps, make(chan struct{})
	go s.receive(ps, s.done)
	return true
}

// subscribed reports, without I/O, whether w's channel is already subscribed (ok) or cannot be
// (done and not ok); with done false, a SUBSCRIBE is needed.
func (s *subscriber) subscribed(w *waiter) (ok, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.channels[w.channel]
	switch {
	case s.closed || sub == nil:
		return false, true
	case sub.subscribed:
		return true, true
	}
	return false, false
}

// remove unregisters w. A subscribed channel is unsubscribed after the linger if no waiter comes
// back; one that never was is forgotten at once.
func (s *subscriber) remove(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.channels[w.channel]
	if sub == nil {
		return
	}
	delete(sub.waiters, w)
	if len(sub.waiters) > 0 || sub.linger != nil {
		return
	}
	if !sub.subscribed || s.closed {
		delete(s.channels, w.channel)
		return
	}
	sub.linger = time.AfterFunc(linger, func() { s.unsubscribe(w.channel, sub) })
}

func (s *subscriber) unsubscribe(channel string, sub *subscription) {
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	if s.closed || s.channels[channel] != sub || len(sub.waiters) > 0 {
		s.mu.Unlock()
		return
	}
	delete(s.channels, channel)
	ps := s.ps
	s.mu.Unlock()
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_ = ps.Unsubscribe(ctx, channel)
}

// wake signals the waiters of channel whose token is among tokens (space-separated, each maybe
// with a direct grant: see waiter); with tokens "", all of them; with channel "", the waiters of
// every channel. A message finds its channel's waiters directly, however many names are waited on.
func (s *subscriber) wake(channel, tokens string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if channel != "" {
		if sub := s.channels[channel]; sub != nil {
			sub.wake(tokens)
		}
		return
	}
	for _, sub := range s.channels {
		sub.wake(tokens)
	}
}

// wake signals sub's waiters whose token is among tokens (see subscriber.wake); the subscriber's
// mu is held.
func (sub *subscription) wake(tokens string) {
	for w := range sub.waiters {
		if w.listen {
			w.note(tokens)
			w.signal()
			continue
		}
		if tokens == "" {
			w.signal()
			continue
		}
		if grant, ok := named(tokens, w.token); ok {
			if grant != "" {
				w.heard(grant)
			}
			w.signal()
		}
	}
}

// named reports whether token is one of the space-separated tokens, and returns what follows it
// after a '#' (a direct grant), if anything.
func named(tokens, token string) (grant string, ok bool) {
	for len(tokens) > 0 {
		t, rest, _ := strings.Cut(tokens, " ")
		if id, g, _ := strings.Cut(t, "#"); id == token {
			return g, true
		}
		tokens = rest
	}
	return "", false
}

func (s *subscriber) receive(ps *redis.PubSub, done chan struct{}) {
	defer close(done)
	var failures int
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), pingEvery)
		if s.isClosed() {
			return
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(context.Background())
				continue
			}
			// The connection failed: messages may be lost until go-redis reconnects on the next
			// receive. Everyone re-checks now; back off so a dead node is not spun on.
			s.wake("", "")
			failures++
			time.Sleep(min(time.Duration(failures)*10*time.Millisecond, time.Second))
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *redis.Message:
			s.wake(m.Channel, m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.wake(m.Channel, "")
			}
		}
	}
}

func (s *subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// close closes the connection and waits for the receive goroutine.
func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	ps, done := s.ps, s.done
	for _, sub := range s.channels {
		if sub.linger != nil {
			sub.linger.Stop()
		}
	}
	s.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
		<-done
	}
}

// watch registers a waiter for channel on every node, without I/O.
func (q *Quorum) watch(channel, token string) *waiter {
	w := &waiter{channel: channel, token: token, wake: make(chan struct{}, 1)}
	for _, s := range q.subs {
		s.add(w)
	}
	return w
}

// subscribe makes sure w's channel is subscribed on every node. It reports whether at least a
// majority of the subscriptions are in place: without that, wake-ups cannot be relied on and the
// caller polls with backoff instead.
func (q *Quorum) subscribe(w *waiter) bool {
	ok := 0
	for _, s := range q.subs {
		if s.subscribe(w) {
			ok++
		}
	}
	return ok >= q.quorum
}

func (q *Quorum) unwatch(w *waiter) {
	for _, s := range q.subs {
		s.remove(w)
	}
}
