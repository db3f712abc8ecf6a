//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// forwarded are the signals passed on to the command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// locked runs lock, rlock, wlock and sem: it takes the lock, runs the command under it, and
// exits with the command's code.
func (c *cli) locked(kind string, args []string) int {
	help := map[string]string{
		"lock":  "Run COMMAND while holding the mutex NAME (the library's mutex.Mutex), renewed as long as it runs.",
		"rlock": "Run COMMAND while holding a read lock of the rwmutex NAME: other readers run alongside, writers (wlock) wait.",
		"wlock": "Run COMMAND while holding the write lock of the rwmutex NAME: no reader and no other writer runs meanwhile.",
		"sem":   "Run COMMAND while holding --permits of the --capacity permits of the semaphore NAME.",
	}[kind]
	argsHelp := "[flags] NAME -- COMMAND [ARG...]"
	fs := c.flags(kind, argsHelp, help)
	try := fs.Bool("try", false, "do not wait: exit with the busy code at once if the lock is held")
	wait := fs.Duration("wait", 0, "wait at most this long for the lock, then exit with the busy code (default: wait as long as it takes)")
	ttl := fs.Duration("ttl", 0, "the lease's TTL: how long the lock outlives a quorumsync that was killed (default the library's, 10s)")
	label := fs.String("label", "", "a label that inspect shows beside this holder, to anyone who can read the servers (default: the command's name, without its arguments)")
	fencing := fs.Bool("fencing", false, "give COMMAND a fencing token in QUORUMSYNC_FENCE")
	onLost := fs.String("on-lost", "term", "what to do to COMMAND if the lock is lost: term (SIGTERM, then SIGKILL after --grace), kill, or ignore")
	grace := fs.Duration("grace", 10*time.Second, "with --on-lost=term, how long COMMAND has to exit before SIGKILL")
	busyCode := fs.Int("conflict-exit-code", exitBusy, "the exit code when the lock is busy (--try, --wait)")
	var capacity, permits *int64
	if kind == "sem" {
		capacity = fs.Int64("capacity", 0, "the semaphore's capacity: how many permits exist (required; every user of NAME must give the same)")
		permits = fs.Int64("permits", 1, "how many permits to hold")
	}
	pos, command, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) != 1:
		fmt.Fprintf(c.stderr, "quorumsync %s: want one NAME, got %d arguments before --\n", kind, len(pos))
		return exitUsage
	case len(command) == 0:
		fmt.Fprintf(c.stderr, "quorumsync %s: no COMMAND: quorumsync %s NAME -- COMMAND [ARG...]\n", kind, kind)
		return exitUsage
	case *onLost != "term" && *onLost != "kill" && *onLost != "ignore":
		fmt.Fprintf(c.stderr, "quorumsync %s: --on-lost %q: want term, kill or ignore\n", kind, *onLost)
		return exitUsage
	case *try && *wait > 0:
		fmt.Fprintf(c.stderr, "quorumsync %s: --try and --wait exclude each other\n", kind)
		return exitUsage
	case kind == "sem" && *capacity <= 0:
		fmt.Fprintln(c.stderr, "quorumsync sem: --capacity is required and must be positive")
		return exitUsage
	case *wait < 0 || *ttl < 0 || *grace < 0:
		fmt.Fprintf(c.stderr, "quorumsync %s: --wait, --ttl and --grace cannot be negative\n", kind)
		return exitUsage
	case *busyCode < 0 || *busyCode > 255:
		fmt.Fprintf(c.stderr, "quorumsync %s: --conflict-exit-code %d: want an exit code, 0 to 255\n", kind, *busyCode)
		return exitUsage
	}
	name := pos[0]
	if *label == "" {
		*label = commandLabel(command)
	}

	// Signals: while waiting for the lock one ends the wait (exit 128+N, nothing run); while the
	// command runs they are forwarded to it.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opts []lease.Option
	if *ttl > 0 {
		opts = append(opts, lease.WithTTL(*ttl))
	}
	q, err := c.dial(ctx, opts...)
	if err != nil {
		return c.fail(err)
	}
	defer closeQuorum(q)

	acquireCtx, stop := ctx, func() {}
	if *wait > 0 {
		acquireCtx, stop = context.WithTimeout(ctx, *wait)
	}
	defer stop()
	interrupted := make(chan os.Signal, 1)
	waiting := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			interrupted <- s
			cancel()
		case <-waiting:
		}
	}()
	// A try first, even when waiting: a quorum that is down (or refuses us) then fails at once,
	// where a blocking acquire would wait for it to come back.
	l, err := c.obtain(acquireCtx, q, kind, name, true, *label, *fencing, capacity, permits)
	if !*try && errors.Is(err, lease.ErrNotAcquired) && !errors.Is(err, lease.ErrUnavailable) {
		l, err = c.obtain(acquireCtx, q, kind, name, false, *label, *fencing, capacity, permits)
	}
	close(waiting)
	select {
	case s := <-interrupted:
		if l != nil {
			releaseLease(l)
		}
		fmt.Fprintf(c.stderr, "quorumsync: %v while waiting for %q; COMMAND not run\n", s, name)
		return 128 + int(s.(syscall.Signal))
	default:
	}
	if err != nil {
		code := c.fail(err)
		if code == exitBusy {
			code = *busyCode
		}
		return code
	}
	return c.runUnder(l, sigs, command, *fencing, *onLost, *grace)
}

// obtain takes the lock the subcommand names.
func (c *cli) obtain(ctx context.Context, q *lease.Quorum, kind, name string, try bool, label string, fencing bool, capacity, permits *int64) (*lease.Lease, error) {
	switch kind {
	case "lock":
		// A loss is reported by runUnder, once: not by the primitive's error handler too.
		opts := []mutex.Option{mutex.WithLabel(label), mutex.WithErrorHandler(ignore)}
		if fencing {
			opts = append(opts, mutex.WithFencing())
		}
		m := mutex.New(q, name, opts...)
		if try {
			return m.TryObtain(ctx)
		}
		return m.Obtain(ctx)
	case "rlock", "wlock":
		opts := []rwmutex.Option{rwmutex.WithLabel(label), rwmutex.WithErrorHandler(ignore)}
		if fencing {
			opts = append(opts, rwmutex.WithFencing())
		}
		rw := rwmutex.New(q, name, opts...)
		switch {
		case kind == "rlock" && try:
			return rw.TryObtainRead(ctx)
		case kind == "rlock":
			return rw.ObtainRead(ctx)
		case try:
			return rw.TryObtain(ctx)
		}
		return rw.Obtain(ctx)
	}
	opts := []semaphore.Option{semaphore.WithLabel(label), semaphore.WithErrorHandler(ignore)}
	if fencing {
		opts = append(opts, semaphore.WithFencing())
	}
	s := semaphore.New(q, name, *capacity, opts...)
	if try {
		return s.TryObtain(ctx, *permits)
	}
	return s.Obtain(ctx, *permits)
}

func ignore(error) {}

// runUnder runs command while l is held, and returns the exit code.
func (c *cli) runUnder(l *lease.Lease, sigs <-chan os.Signal, command []string, fencing bool, onLost string, grace time.Duration) int {
	defer releaseLease(l)
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	cmd.Env = append(os.Environ(), "QUORUMSYNC_NAME="+l.Name(), "QUORUMSYNC_TOKEN="+l.Holder().Token)
	if fencing {
		fences, err := l.Fences()
		if err != nil {
			return c.fail(err)
		}
		var f []string
		for _, x := range fences {
			f = append(f, strconv.FormatUint(x, 10))
		}
		cmd.Env = append(cmd.Env, "QUORUMSYNC_FENCE="+strings.Join(f, ","))
	}
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "quorumsync: cannot run %s: %v\n", command[0], err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotRun
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	group := -cmd.Process.Pid
	lost := l.Done()
	var kill <-chan time.Time
	wasLost := false
	for {
		select {
		case s := <-sigs:
			_ = syscall.Kill(group, s.(syscall.Signal))
		case <-lost:
			lost = nil
			fmt.Fprintf(c.stderr, "quorumsync: lock lost while %s ran: %v\n", command[0], l.Err())
			switch onLost {
			case "term":
				wasLost = true
				fmt.Fprintf(c.stderr, "quorumsync: sending SIGTERM to %s (SIGKILL in %v)\n", command[0], grace)
				_ = syscall.Kill(group, syscall.SIGTERM)
				kill = time.After(grace)
			case "kill":
				wasLost = true
				fmt.Fprintf(c.stderr, "quorumsync: sending SIGKILL to %s\n", command[0])
				_ = syscall.Kill(group, syscall.SIGKILL)
			default:
				fmt.Fprintf(c.stderr, "quorumsync: --on-lost=ignore: %s goes on without the lock\n", command[0])
			}
		case <-kill:
			kill = nil
			_ = syscall.Kill(group, syscall.SIGKILL)
		case err := <-exited:
			code := exitCodeOf(err)
			if wasLost {
				return exitLost
			}
			return code
		}
	}
}

// exitCodeOf returns a finished command's exit code: 128+N for a signal N, as shells do.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return exitFailed
}

// releaseLease releases l, bounded; a lease already lost needs nothing.
func releaseLease(l *lease.Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.Release(ctx)
}

// commandLabel is the default label: the command's name, without its arguments, which may hold
// secrets that anyone who can read the servers would see.
func commandLabel(command []string) string {
	s := filepath.Base(command[0])
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
