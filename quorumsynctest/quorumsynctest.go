// Package quorumsynctest gives the tests of code that takes quorumsync locks, and demos, Redis
// servers and a quorum over them, with no set-up:
//
//	func TestNightlyJobRunsOnce(t *testing.T) {
//		q := quorumsynctest.New(t, 3) // three servers, a quorum over them; all stopped at cleanup
//		job := mutex.New(q, "nightly")
//		...
//	}
//
// The servers are real redis-server processes on loopback when redis-server is on PATH, else
// in-process servers (miniredis, with a goroutine that makes their keys expire in real time),
// which serve everything the library does but the fault injection of its own tests (pausing or
// killing a server). Set QUORUMSYNCTEST_EMBEDDED=1 to use in-process servers even where
// redis-server is installed (0 or false: not).
package quorumsynctest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quorumsync/quorumsync/internal/embedded"
	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
)

// Servers are independent Redis servers: started on loopback by [Start] or [StartEmbedded], or
// named by [Use].
type Servers struct {
	urls     []string
	embedded bool
	stop     []func()
}

// Use returns the servers list names — comma-separated URLs (or host:port), as a demo's
// REDIS_ADDRS environment variable holds them, of servers of your own, which Close leaves alone
// — or, when list is empty, n in-process servers started here (see [StartEmbedded]). It is what
// the examples start with: they run anywhere, and on your servers when you say so.
func Use(list string, n int) (*Servers, error) {
	var urls []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "redis://" + u
		}
		urls = append(urls, u)
	}
	if len(urls) > 0 {
		return &Servers{urls: urls}, nil
	}
	return StartEmbedded(n)
}

// Start starts n independent servers: redis-server processes when redis-server is on PATH (and
// QUORUMSYNCTEST_EMBEDDED is not set), else in-process ones (see [StartEmbedded]). Close stops
// them.
func Start(n int) (*Servers, error) {
	if n < 1 {
		return nil, fmt.Errorf("quorumsynctest: %d servers: want at least 1", n)
	}
	if _, err := exec.LookPath("redis-server"); err != nil || embeddedWanted() {
		return StartEmbedded(n)
	}
	s := &Servers{}
	for range n {
		addr, stop, err := redistest.Launch()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("quorumsynctest: %w", err)
		}
		s.urls = append(s.urls, "redis://"+addr)
		s.stop = append(s.stop, stop)
	}
	return s, nil
}

// embeddedWanted reports whether QUORUMSYNCTEST_EMBEDDED asks for in-process servers: any value
// but "", "0" and "false".
func embeddedWanted() bool {
	switch strings.ToLower(os.Getenv("QUORUMSYNCTEST_EMBEDDED")) {
	case "", "0", "false":
		return false
	}
	return true
}

// StartEmbedded starts n in-process servers (miniredis), whatever is installed. Their keys expire
// in real time, driven by a goroutine of their own (miniredis alone expires nothing), so a lease
// left by a holder that stopped renewing expires as on a real server. Close stops them.
func StartEmbedded(n int) (*Servers, error) {
	if n < 1 {
		return nil, fmt.Errorf("quorumsynctest: %d servers: want at least 1", n)
	}
	e, err := embedded.Start(n)
	if err != nil {
		return nil, fmt.Errorf("quorumsynctest: %w", err)
	}
	s := &Servers{embedded: true, stop: []func(){e.Close}}
	for _, a := range e.Addrs() {
		s.urls = append(s.urls, "redis://"+a)
	}
	return s, nil
}

// URLs returns the servers' URLs (redis://host:port for those started here), in order: what
// lease.Dial takes, and redis.ParseURL for a client of your own.
func (s *Servers) URLs() []string { return append([]string(nil), s.urls...) }

// String lists the URLs, comma-separated, their passwords hidden: for a log line.
func (s *Servers) String() string {
	shown := make([]string, len(s.urls))
	for i, u := range s.urls {
		if p, err := url.Parse(u); err == nil {
			shown[i] = p.Redacted()
		} else {
			shown[i] = "(unparsable URL)"
		}
	}
	return strings.Join(shown, ", ")
}

// Embedded reports whether the servers are in-process ones.
func (s *Servers) Embedded() bool { return s.embedded }

// Close stops the servers. Close the quorums and clients that use them first.
func (s *Servers) Close() {
	for _, stop := range s.stop {
		stop()
	}
	s.stop = nil
}

// New starts n servers for t (see [Start]) and returns a quorum over them, made with
// lease.Dial and opts. The quorum is closed, then the servers stopped, when t ends; New fails t if
// they cannot start.
func New(t testing.TB, n int, opts ...lease.Option) *lease.Quorum {
	t.Helper()
	s := NewServers(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := lease.Dial(ctx, s.URLs(), opts...)
	if err != nil {
		t.Fatalf("quorumsynctest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// NewServers starts n servers for t (see [Start]), stopped when t ends; it fails t if they cannot
// start. Make quorums over them with lease.Dial(ctx, s.URLs()): a quorum per simulated process.
func NewServers(t testing.TB, n int) *Servers {
	t.Helper()
	s, err := Start(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
