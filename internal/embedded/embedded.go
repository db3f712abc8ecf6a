// Package embedded runs in-process Redis servers (miniredis) whose key expiry follows real time,
// so that the examples run on a machine without redis-server. The library's tests never use it:
// they run real servers (internal/redistest).
package embedded

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// clockTick is how often the embedded servers' clocks are advanced, and maxStep the most one tick
// advances them. The tick after a key is set also counts the time before it was set, so a key can
// expire early by up to one step; capping the step keeps that bound even when the clock goroutine
// is starved (a late tick then makes keys expire late, which only delays the next holder). 10ms is
// below the clock drift a lease allows for (TTL/100 + 2ms: 12ms at the demo's 1s TTL).
const (
	clockTick = 5 * time.Millisecond
	maxStep   = 2 * clockTick
)

// Servers is a set of in-process Redis servers whose key expiry follows real time.
//
// It lets the examples run on a machine without redis-server. miniredis never expires keys on its
// own: a TTL set with PX or PEXPIRE only goes down when FastForward is called (SetTime merely moves
// the clock used by TIME and PEXPIREAT). Without a driver a lease left behind by a crashed worker
// would live forever, and the demo's point, that such a lease expires and another worker takes
// over, would not show.
type Servers struct {
	servers []*miniredis.Miniredis
	addrs   []string      // cached: miniredis panics on Addr after Close
	stop    chan struct{} // closed by Close to stop the clock goroutine
	done    chan struct{} // closed by the clock goroutine when it has returned
	once    sync.Once
}

// Start starts n miniredis servers on loopback and a single goroutine that advances their
// clocks with real time (miniredis does not expire keys by itself: its clock must be driven with FastForward
// or SetTime), so a lease left by a crashed worker really expires.
func Start(n int) (*Servers, error) {
	if n < 1 {
		return nil, fmt.Errorf("embedded: start: need at least one server, got %d", n)
	}
	e := &Servers{stop: make(chan struct{}), done: make(chan struct{})}
	for i := range n {
		s := miniredis.NewMiniRedis()
		if err := s.StartAddr("127.0.0.1:0"); err != nil {
			for _, started := range e.servers {
				started.Close()
			}
			return nil, errors.Join(fmt.Errorf("embedded: start: server %d of %d", i+1, n), err)
		}
		e.servers = append(e.servers, s)
		e.addrs = append(e.addrs, s.Addr())
	}
	go e.driveClocks()
	return e, nil
}

// driveClocks moves every server's TTLs forward by the time elapsed since the previous tick (at most
// maxStep), until Close. Elapsed time is measured on the monotonic clock, so a wall-clock step (NTP,
// suspend) neither expires every lease at once nor freezes them; TIME and PEXPIREAT keep following
// the wall clock, as miniredis does by default.
func (e *Servers) driveClocks() {
	defer close(e.done)
	ticker := time.NewTicker(clockTick)
	defer ticker.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case <-ticker.C:
			now := time.Now()
			elapsed := min(now.Sub(last), maxStep)
			last = now
			for _, s := range e.servers {
				s.FastForward(elapsed)
			}
		}
	}
}

// Addrs returns the servers' host:port addresses, one per server, in start order.
func (e *Servers) Addrs() []string {
	return append([]string(nil), e.addrs...)
}

// Close stops the clock goroutine and waits for it, then closes the servers (which drops their
// client connections). It is safe to call more than once.
func (e *Servers) Close() {
	e.once.Do(func() {
		close(e.stop)
		<-e.done
		for _, s := range e.servers {
			s.Close()
		}
	})
}

// ParseAddrs splits the examples' REDIS_ADDRS setting: comma-separated host:port pairs (spaces
// around them are ignored). It is an error when it lists no address.
func ParseAddrs(s string) ([]string, error) {
	var addrs []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("REDIS_ADDRS=%q lists no address; want host:port,host:port,...", s)
	}
	return addrs, nil
}

// Use returns the servers a demo runs on: addrs, its reader's own servers, when given; else n
// embedded servers started here. It tells the reader which through say, and returns the mode
// ("REDIS_ADDRS" or "embedded") and stop, which stops what it started (nothing for addrs): defer it
// first, so that it runs after every client has closed.
func Use(addrs []string, n int, say func(format string, a ...any)) (use []string, mode string, stop func(), err error) {
	if len(addrs) > 0 {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(addrs), strings.Join(addrs, ", "))
		return addrs, "REDIS_ADDRS", func() {}, nil
	}
	e, err := Start(n)
	if err != nil {
		return nil, "", nil, err
	}
	say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=host:port,... to use your own", n)
	return e.Addrs(), "embedded", e.Close, nil
}
