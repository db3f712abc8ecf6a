package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// Rows 2 and 3 run their lockers in OS processes of their own: this binary started again with
// childEnv holding a childSpec as JSON. A child sets up (its quorums, or its raw clients), writes
// "ready" on stdout, reads the start instant (CLOCK_MONOTONIC ns) on stdin, and runs from then on
// until the parent sets the shared page's phase to phaseStop; it counts its round trips while the
// phase is phaseWindow. Then it writes its childResult as one JSON line on stdout. Its stderr is
// ours; it dies with us (Pdeathsig).
const childEnv = "QUORUMSYNC_SCALE_CHILD"

type childSpec struct {
	Lib        string // "quorumsync", "raw", or "none" (tests only)
	Addr       string
	Name       string // the one contended name (the raw lock's key)
	Quorums    int    // lease.Quorums (raw: clients) in this process
	Goroutines int    // lockers per quorum, each looping Lock → hold → Unlock
	First      int    // the global number of this process's first locker
	PoolSize   int    // of each quorum's client; 0: go-redis's default
	TTL, Hold  time.Duration
	Shm        string // the shared page (see shm)
}

// acq is one acquisition: locker, Lock called, Lock returned, Unlock called (the holder's shm
// counter is already decremented), all CLOCK_MONOTONIC ns.
type acq struct {
	W         int
	T0, T1, R int64
}

type childResult struct {
	Acqs     [][4]int64 // W, T0, T1, R
	Errors   int
	FirstErr string
	Single   int64 // round trips counted in the window: commands sent alone
	Pipes    int64 // … and pipelines
	Lockers  int
	SetupDur time.Duration
}

// runChildren starts one child per spec, waits until all are ready, gives them a common start
// instant, calls during(start) (which sets the window's phase), stops them through sh, and
// collects their results. Any failure kills them all.
func runChildren(ctx context.Context, specs []childSpec, sh *shm, during func(start int64) error) ([]childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	type child struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		out   *bufio.Reader
		spec  childSpec
		res   childResult
		err   error
		ready chan error
	}
	kids := make([]*child, len(specs))
	killKids := func() {
		for _, k := range kids {
			if k != nil && k.cmd.Process != nil {
				_ = k.cmd.Process.Kill()
			}
		}
	}
	defer func() {
		for _, k := range kids {
			if k != nil && k.cmd.Process != nil {
				_ = k.cmd.Process.Kill()
				_ = k.cmd.Wait()
			}
		}
	}()
	for i, sp := range specs {
		js, _ := json.Marshal(sp)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"="+string(js))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start child %d: %w", i, err)
		}
		k := &child{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), spec: sp, ready: make(chan error, 1)}
		kids[i] = k
		go func() {
			line, err := k.out.ReadString('\n')
			if err == nil && strings.TrimSpace(line) != "ready" {
				err = fmt.Errorf("said %q instead of ready", line)
			}
			k.ready <- err
		}()
	}
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for i, k := range kids {
		select {
		case err := <-k.ready:
			if err != nil {
				killKids()
				return nil, fmt.Errorf("child %d (%d lockers) failed to set up: %w", i, k.spec.Quorums*k.spec.Goroutines, err)
			}
		case <-ctx.Done():
			killKids()
			return nil, ctx.Err()
		case <-timeout.C:
			killKids()
			return nil, fmt.Errorf("child %d not ready after 2 minutes", i)
		}
	}
	start := mono() + int64(200*time.Millisecond)
	for _, k := range kids {
		if _, err := fmt.Fprintf(k.in, "%d\n", start); err != nil {
			killKids()
			return nil, fmt.Errorf("start child: %w", err)
		}
		_ = k.in.Close()
	}
	var wg sync.WaitGroup
	for _, k := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := k.out.ReadBytes('\n')
			if err == nil {
				err = json.Unmarshal(line, &k.res)
			}
			if werr := k.cmd.Wait(); err == nil && werr != nil {
				err = werr
			}
			k.err = err
		}()
	}
	derr := during(start)
	sh.phase().Store(phaseStop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		killKids()
		<-done
		return nil, ctx.Err()
	}
	out := make([]childResult, len(kids))
	for i, k := range kids {
		if k.err != nil {
			return nil, fmt.Errorf("child %d: %w", i, k.err)
		}
		out[i] = k.res
	}
	return out, derr
}

// childMain is the child side; it returns the process's exit code.
func childMain(js string) int {
	var sp childSpec
	if err := json.Unmarshal([]byte(js), &sp); err != nil {
		fmt.Fprintln(os.Stderr, "scale child:", err)
		return 2
	}
	res, err := runChild(sp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale child:", err)
		return 1
	}
	b, _ := json.Marshal(res)
	_, _ = os.Stdout.Write(append(b, '\n'))
	return 0
}

// locker is one Lock/Unlock pair of a child.
type locker struct {
	lock   func(ctx context.Context) error
	unlock func(ctx context.Context) error
}

var rawUnlock = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// rawLocker is the baseline: SET key token NX PX 10000 retried every 1ms, unlocked by a
// compare-and-delete script; token = 128 random bits.
func rawLocker(c *redis.Client, key string) locker {
	var token string
	return locker{
		lock: func(ctx context.Context) error {
			var b [16]byte
			_, _ = rand.Read(b[:])
			token = hex.EncodeToString(b[:])
			for {
				err := c.Do(ctx, "set", key, token, "nx", "px", 10000).Err()
				if err == nil {
					return nil
				}
				if !errors.Is(err, redis.Nil) {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
				}
			}
		},
		unlock: func(ctx context.Context) error { return rawUnlock.Run(ctx, c, []string{key}, token).Err() },
	}
}

func runChild(sp childSpec) (childResult, error) {
	ctx := context.Background()
	setup := time.Now()
	sh, err := openShm(sp.Shm)
	if err != nil {
		return childResult{}, err
	}
	defer sh.close()
	var (
		quorums []*lease.Quorum
		clients []*redis.Client
		lockers []locker
		tc      tripCounter
	)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range quorums {
			_ = q.Close(cctx)
		}
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for range sp.Quorums {
		switch sp.Lib {
		case "quorumsync":
			q, c, err := newQuorum(ctx, sp.Addr, sp.PoolSize, sp.TTL, &tc)
			if err != nil {
				return childResult{}, err
			}
			quorums, clients = append(quorums, q), append(clients, c)
			for range sp.Goroutines {
				m := mutex.New(q, sp.Name)
				lockers = append(lockers, locker{lock: m.Lock, unlock: m.Unlock})
			}
		case "raw":
			c := redis.NewClient(&redis.Options{Addr: sp.Addr, PoolSize: sp.PoolSize, ContextTimeoutEnabled: true})
			c.AddHook(&tc)
			if err := c.Ping(ctx).Err(); err != nil {
				return childResult{}, err
			}
			clients = append(clients, c)
			for range sp.Goroutines {
				lockers = append(lockers, rawLocker(c, "raw:"+sp.Name))
			}
		case "none": // a "lock" that excludes nobody: the tests' proof that the checks catch two holders
			for range sp.Goroutines {
				nop := func(context.Context) error { return nil }
				lockers = append(lockers, locker{lock: nop, unlock: nop})
			}
		default:
			return childResult{}, fmt.Errorf("unknown lib %q", sp.Lib)
		}
	}
	res := childResult{Lockers: len(lockers), SetupDur: time.Since(setup)}
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return res, fmt.Errorf("read start: %w", err)
	}
	start, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return res, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The parent drives the phases; the round trips of the window are the difference of two
	// snapshots taken as the phase changes (polled every millisecond).
	var from, to tripSnap
	var snapWG sync.WaitGroup
	snapWG.Add(1)
	go func() {
		defer snapWG.Done()
		defer cancel()
		inWindow := false
		for {
			switch ph := sh.phase().Load(); {
			case ph >= phaseWindow && !inWindow:
				from, inWindow = tc.snap(), true
			case ph == phaseStop:
				to = tc.snap()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	sleepUntil(ctx, start)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, l := range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := int64(sp.First + i)
			var mine [][4]int64
			var errs int
			var first string
			served := false
			for runCtx.Err() == nil {
				t0 := mono()
				if err := l.lock(runCtx); err != nil {
					if runCtx.Err() != nil {
						break
					}
					errs++
					if first == "" {
						first = err.Error()
					}
					time.Sleep(time.Millisecond)
					continue
				}
				t1 := mono()
				sh.enter()
				if !served {
					served = true
					sh.served().Add(1)
				}
				time.Sleep(sp.Hold)
				sh.leave()
				r := mono()
				if err := l.unlock(context.Background()); err != nil {
					errs++
					if first == "" {
						first = "unlock: " + err.Error()
					}
				}
				mine = append(mine, [4]int64{w, t0, t1, r})
			}
			mu.Lock()
			res.Acqs = append(res.Acqs, mine...)
			res.Errors += errs
			if res.FirstErr == "" {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	snapWG.Wait()
	d := to.sub(from)
	res.Single, res.Pipes = d.single, d.pipes
	return res, nil
}
