// Election shows package election keeping one replica of a scheduler in charge: three replicas,
// each a process of its own, campaign; one leads and the others observe it. The leader is killed,
// and another takes over with a higher term as soon as the dead leader's lease runs out: within
// one TTL of its last renewal. That one is then paused past its lease, a third takes over, and
// when the paused one wakes and finishes the job it was running, the resource, fenced by the
// terms, refuses its stale write.
//
// Each replica is this program, started again with ELECTION_EXAMPLE_REPLICA set, with its own
// clients and [lease.Quorum]. It follows the election with [election.Election.Observe] and
// campaigns with [election.Election.Campaign]; once it leads, it records "took over" in the
// resource (a Redis list) and then runs jobs of 250ms one after another, recording each when done.
// Every write to the resource goes through package fence with the leader's term
// ([election.Election.Term]), so a write with a lower term than one that has written is refused.
// Between jobs the leader checks [election.Election.Done]; a leader that loses its lease goes back
// to campaigning.
//
// The program kills the first leader with SIGKILL in the middle of a job, and prints how long the
// takeover took against the TTL, and how long after the dead leader's lease ran out. It restarts
// the killed replica, as a supervisor would. Then it pauses the second leader with SIGSTOP in the
// middle of a job, for twice the TTL: the whole process stops, its watchdog with it, as in a long
// GC pause or a stopped VM. When it resumes (SIGCONT) it finishes the job, tries to record it with
// its old term, and is refused; it then finds its leadership lost and observes the new leader. At
// the end the program prints the resource, term by term, and exits with status 1 if the stale
// write got through or the terms did not increase.
//
// With no configuration it needs no Redis: it starts three in-process servers (miniredis) and
// builds a quorum of N=3 over them; the resource is a key on the first one:
//
//	go run ./examples/election
//
// To use your own servers, list independent Redis masters in REDIS_ADDRS, comma-separated, as URLs
// (redis://, rediss:// for TLS, unix:// for a socket; see redis.ParseURL) or as plain host:port.
// The resource and its fence are kept on the first server under "{election-example}:*" and
// deleted at the end:
//
//	REDIS_ADDRS=redis://localhost:6379,redis://localhost:6380,redis://localhost:6381 go run ./examples/election
//	REDIS_ADDRS=localhost:6379,localhost:6380,localhost:6381 go run ./examples/election
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/election"
	"github.com/quorumsync/quorumsync/fence"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/quorumsynctest"
)

const (
	electionName = "election-example:scheduler"
	fenceKey     = "{election-example}:fence" // the resource's fence and data share a hash tag
	scheduleKey  = "{election-example}:schedule"
	replicaEnv   = "ELECTION_EXAMPLE_REPLICA" // set in a replica process: its job, as JSON
)

// record appends an entry to the schedule, behind the fence: KEYS[2] is the list, ARGV[2] the
// entry. It returns the list's length.
var record = fence.NewScript(`return redis.call('RPUSH', KEYS[2], ARGV[2])`)

func main() {
	if spec := os.Getenv(replicaEnv); spec != "" {
		os.Exit(replica(spec, os.Stdout))
	}
	os.Exit(mainCode())
}

// mainCode is main without os.Exit, so that its deferred calls run.
func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.URLs = os.Getenv("REDIS_ADDRS")
	if cfg.URLs != "" && strings.Trim(cfg.URLs, ", \t") == "" {
		fmt.Fprintf(os.Stderr, "election: REDIS_ADDRS=%q lists no server; want URLs or host:port, comma-separated\n", cfg.URLs)
		return 2
	}
	res, err := run(ctx, os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "election:", err)
		return 1
	}
	if !res.StaleRefused || len(res.Violations) > 0 {
		return 1
	}
	return 0
}

// config is what the demo runs on and how long things take.
type config struct {
	URLs     string // Redis servers, as REDIS_ADDRS lists them; empty: start 3 in-process servers
	Replicas int
	TTL      time.Duration // the leader's lease
	JobTime  time.Duration // how long a job runs
	Pause    time.Duration // how long the second leader is paused
	// Wait bounds each step: a step that takes longer (no leader, no observation) is an error.
	Wait time.Duration
}

func defaultConfig() config {
	return config{Replicas: 3, TTL: time.Second, JobTime: 250 * time.Millisecond, Pause: 2 * time.Second, Wait: 10 * time.Second}
}

// result is what one run observed.
type result struct {
	Mode string
	// Leaders are the three leaders, in order: the killed one, the paused one, the next.
	Leaders []leader
	// KillTakeover is the time from the first leader's kill to the next leader's Campaign
	// returning; PauseTakeover the same from the second leader's pause.
	KillTakeover, PauseTakeover time.Duration
	// KillGap and PauseGap are the time from the end of the old leader's lease, as it last
	// reported it, to the next leader's Campaign returning: positive when they did not overlap.
	KillGap, PauseGap time.Duration
	// Observed lists, per term, the replicas other than the leader that observed it.
	Observed map[uint64][]string
	// StaleRefused says whether the paused leader's write, on waking, was refused by the fence;
	// StaleValid what its lease's Valid said just before; StaleErr the write's error.
	StaleRefused bool
	StaleValid   bool
	StaleErr     string
	// LostErr is the paused leader's Err once its Done closed.
	LostErr string
	// Schedule is the resource at the end; Violations what is wrong with it (a term lower than
	// one before it, the stale write).
	Schedule   []string
	Violations []string
}

// leader is a replica in the leader's seat.
type leader struct {
	Name  string
	Pid   int
	Term  uint64
	Since time.Time // when its Campaign returned, by its clock
}

// replicaJob is what a replica process is told.
type replicaJob struct {
	Name    string
	URLs    []string
	TTL     time.Duration
	JobTime time.Duration
}

// newQuorum makes a client per URL and a quorum over them. The clients are returned too: the
// resource lives on the first node.
func newQuorum(ctx context.Context, urls []string, ttl time.Duration) (*lease.Quorum, []redis.UniversalClient, error) {
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
	q, err := lease.NewQuorum(ctx, clients, lease.WithTTL(ttl))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return q, clients, nil
}

// replica is a replica process. It prints what happens to it, one line each, for the parent to
// read: "observed <term> <value>", "leading <term> <now>", "running <job> <term> <now> <lease's
// Until>" (times in Unix ns), "wrote <job> <term>" (job 0: the takeover), "refused <job> <term>
// <Valid> <error>", "lost <error>", "handler <error>" and "error <error>". It stops on SIGTERM,
// resigning if it leads.
func replica(spec string, out io.Writer) int {
	var mu sync.Mutex // lines come from the observer's goroutine too
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", a...)
	}
	var j replicaJob
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		say("error %v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	q, clients, err := newQuorum(ctx, j.URLs, j.TTL)
	if err != nil {
		say("error %v", err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(cctx)
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	// A lost leadership is reported by Done and Err, which the leader watches; the handler only
	// says what else happened (an announcement no node took).
	e := election.New(q, electionName, election.WithErrorHandler(func(err error) { say("handler %s", oneLine(err)) }))
	var wg sync.WaitGroup
	defer wg.Wait() // after stop: the observer ends with ctx
	defer stop()
	wg.Go(func() {
		for ld := range e.Observe(ctx) {
			say("observed %d %s", ld.Term, ld.Value)
		}
	})
	for {
		if err := e.Campaign(ctx, j.Name); err != nil {
			if ctx.Err() != nil {
				return 0
			}
			say("error campaign: %s", oneLine(err))
			return 1
		}
		term := e.Term()
		say("leading %d %d", term, time.Now().UnixNano())
		if err := lead(ctx, e, clients[0], j, term, say); err != nil {
			say("error %s", oneLine(err))
			return 1
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.Resign(rctx); err != nil && !errors.Is(err, lease.ErrLost) {
				say("error resign: %s", oneLine(err))
			}
			return 0
		}
	}
}

// lead is the scheduler's work while it leads: it records that it took over, then runs jobs until
// its leadership ends or ctx does. A write the fence refuses means a later leader has written: this
// one was deposed without noticing yet, so it stops and waits for Done.
func lead(ctx context.Context, e *election.Election, store redis.Scripter, j replicaJob, term uint64, say func(string, ...any)) error {
	write := func(what string) error {
		_, err := record.Run(ctx, store, fenceKey, term, []string{scheduleKey}, fmt.Sprintf("%d %s %s", term, j.Name, what))
		return err
	}
	// Recorded first thing: from now on the fence refuses every earlier leader's write.
	switch err := write("took over"); {
	case err == nil:
		say("wrote 0 %d", term)
	case errors.Is(err, fence.ErrStale), ctx.Err() != nil:
	default:
		return fmt.Errorf("record the takeover: %w", err)
	}
	for job := 1; ; job++ {
		select {
		case <-ctx.Done():
			return nil
		case <-e.Done():
			say("lost %s", oneLine(e.Err()))
			return nil
		default:
		}
		say("running %d %d %d %d", job, term, time.Now().UnixNano(), e.Lease().Until().UnixNano())
		select { // the job
		case <-time.After(j.JobTime):
		case <-ctx.Done():
			return nil
		}
		valid := e.Lease().Valid()
		switch err := write(fmt.Sprintf("job %d", job)); {
		case err == nil:
			say("wrote %d %d", job, term)
		case errors.Is(err, fence.ErrStale):
			say("refused %d %d %v %s", job, term, valid, oneLine(err))
			select {
			case <-e.Done():
			case <-ctx.Done():
				return nil
			}
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("record job %d: %w", job, err)
		}
	}
}

func oneLine(err error) string { return strings.ReplaceAll(fmt.Sprint(err), "\n", "; ") }

// proc is a replica process, seen from the parent.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{} // closed once its output has ended and it has been waited for
	killed bool
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// event is a line a replica printed.
type event struct {
	p    *proc
	kind string
	args []string
	at   time.Time // when the parent read it
}

// arg returns args[i], "" if there is none.
func (e event) arg(i int) string {
	if i >= len(e.args) {
		return ""
	}
	return e.args[i]
}

// int returns args[i] as an int64, 0 if it is not one.
func (e event) int(i int) int64 {
	n, _ := strconv.ParseInt(e.arg(i), 10, 64)
	return n
}

// rest returns the args from i on, as printed.
func (e event) rest(i int) string {
	if i >= len(e.args) {
		return ""
	}
	return strings.Join(e.args[i:], " ")
}

// cluster is the parent's view of the replicas: it starts them, reads their lines and narrates.
type cluster struct {
	ctx    context.Context
	self   string
	job    replicaJob
	cfg    config
	res    *result
	say    func(string, ...any)
	start  time.Time
	events chan event
	quiet  chan struct{} // closed by stopAll: lines are no longer read
	procs  []*proc
}

// spawn starts a replica process named name.
func (c *cluster) spawn(name string) (*proc, error) {
	j := c.job
	j.Name = name
	spec, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.self, "-test.run=^$") // the flag is for the test binary; main ignores it
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	c.procs = append(c.procs, p)
	go func() {
		defer close(p.done)
		for lines := bufio.NewScanner(pipe); lines.Scan(); {
			f := strings.Fields(lines.Text())
			if len(f) == 0 {
				continue
			}
			select {
			case c.events <- event{p: p, kind: f[0], args: f[1:], at: time.Now()}:
			case <-c.quiet:
			}
		}
		_ = cmd.Wait()
	}()
	return p, nil
}

// stopAll stops every replica still running: SIGCONT (one may be paused), then SIGTERM, and
// SIGKILL for one that has not exited 5s later. It waits for all of them. Later calls do nothing.
func (c *cluster) stopAll() {
	select {
	case <-c.quiet:
		return
	default:
	}
	close(c.quiet)
	for _, p := range c.procs {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-deadline:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// t is the time since the start, for the narrative.
func (c *cluster) t(at time.Time) string { return fmt.Sprintf("t=%.2fs", at.Sub(c.start).Seconds()) }

// next reads events, narrating each, until one for which want returns true, and returns it. It
// gives up after the step's bound (cfg.Wait).
func (c *cluster) next(what string, want func(event) bool) (event, error) {
	timeout := time.After(c.cfg.Wait)
	for {
		select {
		case e := <-c.events:
			if err := c.narrate(e); err != nil {
				return e, err
			}
			if want(e) {
				return e, nil
			}
		case <-timeout:
			return event{}, fmt.Errorf("no %s within %v", what, c.cfg.Wait)
		case <-c.ctx.Done():
			return event{}, fmt.Errorf("waiting for %s: %w", what, c.ctx.Err())
		}
	}
}

// until reads and narrates events until the time t.
func (c *cluster) until(t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	for {
		select {
		case e := <-c.events:
			if err := c.narrate(e); err != nil {
				return err
			}
		case <-timer.C:
			return nil
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// observedBy waits until each of ps has observed term.
func (c *cluster) observedBy(term uint64, ps ...*proc) error {
	for _, p := range ps {
		if slices.Contains(c.res.Observed[term], p.name) {
			continue
		}
		_, err := c.next(fmt.Sprintf("observation of term %d by %s", term, p.name), func(e event) bool {
			return e.p == p && e.kind == "observed" && uint64(e.int(0)) == term
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// narrate says what an event means, and records it in the result.
func (c *cluster) narrate(e event) error {
	switch e.kind {
	case "leading":
		c.say("%s %s (pid %d) leads, term %d", c.t(e.at), e.p.name, e.p.pid(), e.int(0))
	case "observed":
		term, value := uint64(e.int(0)), e.rest(1)
		if value == e.p.name {
			return nil // a replica observes its own leadership too; it said so itself
		}
		if c.res.Observed == nil {
			c.res.Observed = map[uint64][]string{}
		}
		c.res.Observed[term] = append(c.res.Observed[term], e.p.name)
		c.say("%s %s observes: %s leads, term %d", c.t(e.at), e.p.name, value, term)
	case "refused":
		c.say("%s %s finished job %d and recorded it with term %d (its lease's Valid said %s just before): REFUSED: %s",
			c.t(e.at), e.p.name, e.int(0), e.int(1), e.arg(2), e.rest(3))
	case "lost":
		c.say("%s %s sees its Done closed: %s; it campaigns again", c.t(e.at), e.p.name, e.rest(0))
	case "handler":
		c.say("%s %s's error handler hears: %s", c.t(e.at), e.p.name, e.rest(0))
	case "error":
		return fmt.Errorf("%s: %s", e.p.name, e.rest(0))
	}
	return nil
}

// run runs the demo on cfg.URLs (or on embedded servers), narrating to out.
func run(ctx context.Context, out io.Writer, cfg config) (res *result, err error) {
	res = &result{Mode: "REDIS_ADDRS"}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	if cfg.Replicas < 3 {
		return res, fmt.Errorf("need at least 3 replicas, got %d", cfg.Replicas)
	}
	servers, err := quorumsynctest.Use(cfg.URLs, 3)
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
	opt, err := redis.ParseURL(urls[0])
	if err != nil {
		return res, fmt.Errorf("server 1: %w", err)
	}
	store := redis.NewClient(opt)
	defer store.Close()
	if err := store.Del(ctx, fenceKey, scheduleKey).Err(); err != nil {
		return res, err
	}
	defer store.Del(context.WithoutCancel(ctx), fenceKey, scheduleKey)
	self, err := os.Executable()
	if err != nil {
		return res, err
	}

	c := &cluster{
		ctx: ctx, self: self, cfg: cfg, res: res, say: say, start: time.Now(),
		job:    replicaJob{URLs: urls, TTL: cfg.TTL, JobTime: cfg.JobTime},
		events: make(chan event), quiet: make(chan struct{}),
	}
	defer c.stopAll()
	say("replicas: %d processes of this program, each with its own clients and quorum over the %d nodes, campaign in the election %q",
		cfg.Replicas, len(urls), electionName)
	say("          the leader's lease: TTL %v, renewed every %v; it runs jobs of %v and records each in a resource fenced by its term",
		cfg.TTL, (cfg.TTL / 3).Round(time.Millisecond), cfg.JobTime)
	var pids []string
	for i := range cfg.Replicas {
		p, err := c.spawn(fmt.Sprintf("replica-%d", i+1))
		if err != nil {
			return res, err
		}
		pids = append(pids, fmt.Sprintf("%s (pid %d)", p.name, p.pid()))
	}
	say("%s started %s", c.t(time.Now()), strings.Join(pids, ", "))
	// others returns the replicas alive but not.
	others := func(not ...*proc) []*proc {
		var ps []*proc
		for _, p := range c.procs {
			if !p.killed && !slices.Contains(not, p) {
				ps = append(ps, p)
			}
		}
		return ps
	}
	// leading waits for a replica other than not to lead, and records it.
	leading := func(what string, not *proc) (event, error) {
		e, err := c.next(what, func(e event) bool { return e.kind == "leading" && e.p != not })
		if err == nil {
			res.Leaders = append(res.Leaders, leader{Name: e.p.name, Pid: e.p.pid(), Term: uint64(e.int(0)), Since: time.Unix(0, e.int(1))})
		}
		return e, err
	}
	// running waits for p to start a job: a line it printed just now, not one that waited in the
	// pipe while the parent was busy, so that a signal sent at once lands in the job.
	running := func(p *proc) (event, error) {
		return c.next(p.name+" running a job", func(e event) bool {
			return e.kind == "running" && e.p == p && time.Since(time.Unix(0, e.int(2))) < cfg.JobTime/2
		})
	}
	// takeover says how long the next leader took, from the kill or pause (since) and from the end
	// of the old leader's lease (until, as the old leader reported it when its job began).
	takeover := func(old leader, until int64, since time.Time, cause string, next event) (time.Duration, time.Duration) {
		at := time.Unix(0, next.int(1))
		took, gap := at.Sub(since), at.Sub(time.Unix(0, until))
		say("%s %s took over %v after the %s (TTL %v), %v after %s's lease ran out; term %d > %d",
			c.t(next.at), next.p.name, took.Round(time.Millisecond), cause, cfg.TTL, gap.Round(time.Millisecond),
			old.Name, next.int(0), old.Term)
		return took, gap
	}

	// 1. One leads; the others observe it.
	first, err := leading("leader", nil)
	if err != nil {
		return res, err
	}
	if err := c.observedBy(uint64(first.int(0)), others(first.p)...); err != nil {
		return res, err
	}

	// 2. The leader is killed in the middle of a job.
	r, err := running(first.p)
	if err != nil {
		return res, err
	}
	if err := first.p.cmd.Process.Kill(); err != nil {
		return res, err
	}
	killed := time.Now()
	first.p.killed = true
	say("%s %s (pid %d) KILLED (SIGKILL) in job %d; its lease, as it reported it when the job began, runs out %v later",
		c.t(killed), first.p.name, first.p.pid(), r.int(0), time.Unix(0, r.int(3)).Sub(killed).Round(time.Millisecond))
	second, err := leading("new leader after the kill", first.p)
	if err != nil {
		return res, err
	}
	res.KillTakeover, res.KillGap = takeover(res.Leaders[0], r.int(3), killed, "kill", second)
	if err := c.observedBy(uint64(second.int(0)), others(second.p)...); err != nil {
		return res, err
	}

	// 3. The killed replica comes back, as a supervisor would restart it, and joins the line.
	restarted, err := c.spawn(first.p.name)
	if err != nil {
		return res, err
	}
	say("%s %s restarted (pid %d): it observes, and campaigns behind the others", c.t(time.Now()), restarted.name, restarted.pid())
	if err := c.observedBy(uint64(second.int(0)), restarted); err != nil {
		return res, err
	}

	// 4. The new leader is paused in the middle of a job, past its lease.
	r, err = running(second.p)
	if err != nil {
		return res, err
	}
	if err := second.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return res, err
	}
	paused := time.Now()
	say("%s %s (pid %d) PAUSED (SIGSTOP) in job %d, for %v: the whole process stops, its watchdog too; its lease runs out %v later",
		c.t(paused), second.p.name, second.p.pid(), r.int(0), cfg.Pause, time.Unix(0, r.int(3)).Sub(paused).Round(time.Millisecond))
	third, err := leading("new leader after the pause", second.p)
	if err != nil {
		return res, err
	}
	res.PauseTakeover, res.PauseGap = takeover(res.Leaders[1], r.int(3), paused, "pause", third)
	if err := c.observedBy(uint64(third.int(0)), others(second.p, third.p)...); err != nil {
		return res, err
	}
	// The paused leader wakes only once the new one has written: the fence knows the terms that
	// have written, no others.
	if _, err := c.next(third.p.name+"'s takeover recorded", func(e event) bool { return e.p == third.p && e.kind == "wrote" }); err != nil {
		return res, err
	}
	if err := c.until(paused.Add(cfg.Pause)); err != nil {
		return res, err
	}

	// 5. It wakes, finishes its job, and tries to record it with its old term.
	if err := second.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return res, err
	}
	say("%s %s resumed (SIGCONT) after %v; it does not know it slept", c.t(time.Now()), second.p.name, time.Since(paused).Round(time.Millisecond))
	stale, err := c.next(second.p.name+"'s write on waking", func(e event) bool {
		return e.p == second.p && (e.kind == "refused" || e.kind == "wrote")
	})
	if err != nil {
		return res, err
	}
	res.StaleRefused = stale.kind == "refused"
	if !res.StaleRefused {
		c.say("%s %s recorded job %d with term %d after waking: NOT refused", c.t(stale.at), second.p.name, stale.int(0), stale.int(1))
	}
	res.StaleValid, res.StaleErr = stale.arg(2) == "true", stale.rest(3)
	lost, err := c.next(second.p.name+"'s loss", func(e event) bool { return e.p == second.p && e.kind == "lost" })
	if err != nil {
		return res, err
	}
	res.LostErr = lost.rest(0)
	if err := c.observedBy(uint64(third.int(0)), second.p); err != nil {
		return res, err
	}

	// 6. The end: stop the replicas, and read the resource.
	say("%s stopping the replicas (SIGTERM): the leader resigns", c.t(time.Now()))
	c.stopAll()
	if res.Schedule, err = store.LRange(ctx, scheduleKey, 0, -1).Result(); err != nil {
		return res, err
	}
	res.Violations = audit(res.Schedule, uint64(stale.int(1)), stale.int(0))
	say("the resource, in the order it was written:")
	for _, line := range summarize(res.Schedule) {
		say("  %s", line)
	}
	if len(res.Violations) == 0 {
		say("terms only increase in the resource, and the paused leader's stale job %d (term %d) is not in it", stale.int(0), stale.int(1))
	} else {
		say("VIOLATED: %s", strings.Join(res.Violations, "; "))
	}
	return res, nil
}

// audit returns what is wrong with the schedule: a term lower than one before it, or the stale
// write (staleTerm, staleJob).
func audit(schedule []string, staleTerm uint64, staleJob int64) []string {
	var bad []string
	var last uint64
	for i, entry := range schedule {
		f := strings.Fields(entry)
		term, _ := strconv.ParseUint(f[0], 10, 64)
		if term < last {
			bad = append(bad, fmt.Sprintf("entry %d (%q) has a term below %d", i+1, entry, last))
		}
		last = max(last, term)
		if term == staleTerm && strings.HasSuffix(entry, fmt.Sprintf(" job %d", staleJob)) {
			bad = append(bad, fmt.Sprintf("the stale write is in the resource: %q", entry))
		}
	}
	return bad
}

// summarize groups the schedule's entries by term: "term 3, replica-3: took over, jobs 1-4".
func summarize(schedule []string) []string {
	var out []string
	var cur, who string
	var jobs []string
	var tookOver bool
	flush := func() {
		if cur == "" {
			return
		}
		parts := []string{}
		if tookOver {
			parts = append(parts, "took over")
		}
		switch len(jobs) {
		case 0:
		case 1:
			parts = append(parts, "job "+jobs[0])
		default:
			parts = append(parts, "jobs "+jobs[0]+"-"+jobs[len(jobs)-1])
		}
		out = append(out, fmt.Sprintf("term %s, %s: %s", cur, who, strings.Join(parts, ", ")))
	}
	for _, entry := range schedule {
		f := strings.Fields(entry)
		if len(f) < 3 {
			continue
		}
		if f[0] != cur {
			flush()
			cur, who, jobs, tookOver = f[0], f[1], nil, false
		}
		if f[2] == "job" && len(f) > 3 {
			jobs = append(jobs, f[3])
		} else {
			tookOver = true
		}
	}
	flush()
	return out
}
