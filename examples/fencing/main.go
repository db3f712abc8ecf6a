// Fencing shows why a lock alone cannot protect a resource from a holder that is paused past its
// lease, and how a fencing token does.
//
// A holder — a process of its own — takes a quorumsync mutex WithFencing, gets fencing token T, and
// writes a resource with it through package fence. Then it is paused (SIGSTOP, as a long GC pause
// or a stopped VM would pause it) for twice the lease's TTL: its watchdog stops too, and its lease
// expires. Another worker takes the lock, gets a higher token, and writes. The holder is resumed:
// the first thing it does is check its lease (Valid, on the monotonic clock, already false, even
// though Done may not have closed yet) and try its write anyway, with token T: the resource refuses
// it, because a higher token has written. The program prints each step and exits with status 1 if
// the late write got through.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them; the resource is a key on the first one:
//
//	go run ./examples/fencing
//
// To use your own servers, list independent Redis masters in REDIS_ADDRS, comma-separated, as URLs
// (redis://, rediss:// for TLS, unix:// for a socket; see redis.ParseURL) or as plain host:port:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/fencing
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/fencing
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

const (
	lockName  = "fencing-example"
	fenceKey  = "{fencing-example}:fence" // the resource's fence and data share a hash tag
	valueKey  = "{fencing-example}:value"
	childEnv  = "FENCING_EXAMPLE_HOLDER" // set in the holder process: the nodes' URLs
	holderTTL = time.Second
)

func main() {
	if urls := os.Getenv(childEnv); urls != "" {
		os.Exit(holder(strings.Split(urls, ","), os.Stdout))
	}
	os.Exit(mainCode())
}

func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list := os.Getenv("REDIS_ADDRS")
	if list != "" && strings.Trim(list, ", \t") == "" {
		fmt.Fprintf(os.Stderr, "fencing: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", list)
		return 2
	}
	res, err := run(ctx, os.Stdout, list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fencing:", err)
		return 1
	}
	if !res.LateWriteRefused {
		return 1
	}
	return 0
}

// result is what one run observed.
type result struct {
	Mode             string
	HolderToken      uint64
	LaterToken       uint64
	ValidOnWaking    bool // what the paused holder's Lease.Valid said first thing after waking
	DoneOpenOnWaking bool // whether its Done had not closed yet at that moment
	LateWriteRefused bool
	Final            string // the resource's value at the end
}

// newQuorum makes a client per URL and a quorum over them. The clients are returned too: the
// resource lives on the first node.
func newQuorum(ctx context.Context, urls []string) (*lease.Quorum, []redis.UniversalClient, error) {
	var clients []redis.UniversalClient
	closeAll := func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		opt.ContextTimeoutEnabled = true // NewQuorum requires it, so that its per-node deadlines reach the sockets
		clients = append(clients, redis.NewClient(opt))
	}
	q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(holderTTL))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return q, clients, nil
}

// holder is the process that gets paused. It prints "token <T>" once it holds the lock and has
// written, sleeps (the parent pauses it in there), then checks its lease, tries a second write with
// its token, and prints what happened.
func holder(urls []string, out io.Writer) int {
	ctx := context.Background()
	q, clients, err := newQuorum(ctx, urls)
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	m := mutex.New(q, lockName, mutex.WithFencing(), mutex.WithErrorHandler(func(error) {}))
	l, err := m.Obtain(ctx)
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	token, _ := l.Fence()
	if err := fence.Set(ctx, clients[0], fenceKey, token, valueKey, fmt.Sprintf("written by the holder with token %d", token), 0); err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	fmt.Fprintln(out, "token", token)
	time.Sleep(300 * time.Millisecond) // paused in here, past the lease
	valid := l.Valid()
	doneOpen := true
	select {
	case <-l.Done():
		doneOpen = false
	default:
	}
	err = fence.Set(ctx, clients[0], fenceKey, token, valueKey, "the holder's late write", 0)
	fmt.Fprintf(out, "woke valid=%v done_open=%v refused=%v err=%v\n", valid, doneOpen, errors.Is(err, fence.ErrStale), err)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = q.Close(cctx)
	for _, c := range clients {
		_ = c.Close()
	}
	return 0
}

// run runs the demo on the servers list names, as REDIS_ADDRS does (comma-separated URLs or
// host:port), or on three embedded servers when list is empty, narrating to out.
func run(ctx context.Context, out io.Writer, list string) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS"}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	servers, err := quorumsynctest.Use(list, 3)
	if err != nil {
		return res, err
	}
	defer servers.Close() // deferred first, so it runs last; it stops only the servers it started
	urls := servers.URLs()
	if servers.Embedded() {
		res.Mode = "embedded"
		say("mode: embedded: %d in-process Redis servers (miniredis); set REDIS_ADDRS=redis://host:port,... (URLs or host:port) to use your own", len(urls))
	} else {
		say("mode: REDIS_ADDRS: %d server(s): %s", len(urls), servers)
	}
	q, clients, err := newQuorum(ctx, urls)
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, q.Close(cctx))
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	store := clients[0]
	if err := store.Del(ctx, fenceKey, valueKey).Err(); err != nil {
		return res, err
	}
	defer store.Del(context.WithoutCancel(ctx), fenceKey, valueKey)

	// 1. The holder, in a process of its own.
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, self, "-test.run=^$") // the flag is for the test binary; main ignores it
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(urls, ","))
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(pipe)
	next := func(prefix string) (string, error) {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(l, prefix), nil
			} else if strings.HasPrefix(l, "error ") {
				return "", errors.New("holder: " + strings.TrimPrefix(l, "error "))
			}
		}
		return "", fmt.Errorf("holder: exited before printing %q (%v)", prefix, lines.Err())
	}
	t, err := next("token ")
	if err != nil {
		return res, err
	}
	res.HolderToken, _ = strconv.ParseUint(t, 10, 64)
	// 2. Paused, like a long GC pause or a stopped VM: its watchdog stops too.
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return res, err
	}
	say("holder (pid %d) took the lock with fencing token %d, wrote the resource, and is now paused for %v (lease TTL %v)",
		cmd.Process.Pid, res.HolderToken, 2*holderTTL, holderTTL)

	// 3. Meanwhile its lease expires and another worker takes the lock.
	m := mutex.New(q, lockName, mutex.WithFencing())
	start := time.Now()
	later, err := m.Obtain(ctx)
	if err != nil {
		return res, err
	}
	res.LaterToken, _ = later.Fence()
	if err := fence.Set(ctx, store, fenceKey, res.LaterToken, valueKey, fmt.Sprintf("written by the next holder with token %d", res.LaterToken), 0); err != nil {
		return res, err
	}
	say("another worker got the lock %v later, once the paused holder's lease had expired: fencing token %d; it wrote the resource",
		time.Since(start).Round(10*time.Millisecond), res.LaterToken)
	time.Sleep(2*holderTTL - time.Since(start))

	// 4. The holder wakes and, not knowing it slept, tries to write.
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return res, err
	}
	woke, err := next("woke ")
	if err != nil {
		return res, err
	}
	res.ValidOnWaking = strings.Contains(woke, "valid=true")
	res.DoneOpenOnWaking = strings.Contains(woke, "done_open=true")
	res.LateWriteRefused = strings.Contains(woke, "refused=true")
	say("the holder woke: its lease's Valid says %v the moment it wakes (its Done had closed: %v)", res.ValidOnWaking, !res.DoneOpenOnWaking)
	if res.LateWriteRefused {
		say("its late write with token %d was refused: a write with token %d had fenced it off", res.HolderToken, res.LaterToken)
	} else {
		say("its late write with token %d got through: %s", res.HolderToken, woke)
	}
	if err := later.Release(ctx); err != nil {
		return res, err
	}
	res.Final = store.Get(ctx, valueKey).Val()
	say("the resource says: %q", res.Final)
	return res, nil
}
