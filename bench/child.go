package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// A scenario with several clients runs each client as an OS process of its own, so that clients
// share nothing a real deployment's processes would not: no Go runtime (scheduler, GC, allocator),
// no memory, only the machine and the Redis servers. The harness starts this same binary again
// with childEnv set to the client's plan, and
//   - fd 3: the run's arena (a memfd), which the child maps: the exclusion checks and the turns;
//   - fd 4: a pipe on which the child writes "ready" once warm, then its clientReport as JSON;
//   - stdin: a pipe on which the harness writes the start instant and the deadline (two int64s),
//     and which it closes once it has read the servers' figures: then the child closes its
//     library client and exits;
//   - stdout and stderr: to the harness's stderr, each line once (see childOutput), and the last
//     few KB are kept for the error should the child fail.
// A child dies with the harness (Pdeathsig), and any failure of one (a non-zero exit, no report)
// fails the run with its output.

// childEnv carries a child's plan, as JSON; its presence makes this binary a client (see run).
const childEnv = "QUORUMSYNC_BENCH_CLIENT"

// plan is what one client needs to run its part of a run.
type plan struct {
	Adapter  string
	Client   int // this client's index: it runs goroutines Client, Client+clients, …
	Scenario wireScenario
	Addrs    []string
	Prefix   string        // of the run's keys
	Duration time.Duration // of the round; sizes the arena
}

// wireScenario is a scenario's workload on its way to a child; the adapters, baseline and
// description stay with the harness.
type wireScenario struct {
	Name                string
	Clients, Goroutines int
	Hold                time.Duration
	Keys                keyMode
	Handoff             bool
	Read                bool
	WriteEvery          int
	Capacity            int64
	Weights             []int64
}

func wireOf(s scenario) wireScenario {
	return wireScenario{Name: s.name, Clients: s.clients, Goroutines: s.goroutines, Hold: s.hold, Keys: s.keys,
		Handoff: s.handoff, Read: s.load.read, WriteEvery: s.load.writeEvery, Capacity: s.load.capacity, Weights: s.load.weights}
}

func (w wireScenario) scenario() scenario {
	return scenario{name: w.Name, clients: w.Clients, goroutines: w.Goroutines, hold: w.Hold, keys: w.Keys, handoff: w.Handoff,
		load: load{read: w.Read, writeEvery: w.WriteEvery, capacity: w.Capacity, weights: w.Weights}}
}

// extraAdapters are adapters a child may be asked to run that the adapters list does not name:
// the tests' lock that excludes nobody, and their failing clients.
var extraAdapters []Adapter

func childAdapter(name string) (Adapter, bool) {
	if a, ok := adapterByName(name); ok {
		return a, true
	}
	for _, a := range extraAdapters {
		if a.Name() == name {
			return a, true
		}
	}
	return nil, false
}

// client is the harness's side of one client of a run.
type client interface {
	// ready waits until the client is connected and warm.
	ready(ctx context.Context) error
	// start tells it when to begin and when to stop, on the machine-wide clock.
	start(at, deadline int64) error
	// report waits for its figures.
	report(ctx context.Context) (*clientReport, error)
	// finish lets it close its library client, and waits until it has, cleanly.
	finish(ctx context.Context) error
	// stop ends it if it still runs, and waits until it has; safe to call more than once.
	stop()
}

// startClients starts the clients of p: the only one in this process, or each in a child process.
func startClients(ctx context.Context, p plan, ad Adapter, ar *arena) ([]client, error) {
	if p.Scenario.Clients == 1 {
		return []client{startLocal(ctx, p, ad, ar)}, nil
	}
	if _, ok := childAdapter(ad.Name()); !ok {
		return nil, fmt.Errorf("adapter %q cannot run in a child process: no adapter has that name", ad.Name())
	}
	var cs []client
	for i := range p.Scenario.Clients {
		p.Client = i
		c, err := startChild(p, ar)
		if err != nil {
			for _, c := range cs {
				c.stop()
			}
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// --- a client in this process ---

// localClient runs runClient in a goroutine of this process; it is also that client's handshake.
type localClient struct {
	cancel  context.CancelFunc
	readyc  chan struct{}
	startc  chan [2]int64
	reportc chan struct{} // closed when rep is set
	closec  chan struct{} // closed by finish
	done    chan struct{} // closed when runClient has returned err
	rep     *clientReport
	err     error
}

func startLocal(ctx context.Context, p plan, ad Adapter, ar *arena) *localClient {
	ctx, cancel := context.WithCancel(ctx)
	l := &localClient{cancel: cancel, readyc: make(chan struct{}), startc: make(chan [2]int64, 1),
		reportc: make(chan struct{}), closec: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// parallel turns a panic into an error, so the harness's cleanup still runs.
		l.err = parallel(1, func(int) error { return runClient(ctx, p, ad, ar, l) })
	}()
	return l
}

func (l *localClient) signalReady() error {
	close(l.readyc)
	return nil
}

func (l *localClient) awaitStart(ctx context.Context) (int64, int64, error) {
	select {
	case s := <-l.startc:
		return s[0], s[1], nil
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
}

func (l *localClient) sendReport(rep *clientReport) error {
	l.rep = rep
	close(l.reportc)
	return nil
}

func (l *localClient) awaitClose(ctx context.Context) {
	select {
	case <-l.closec:
	case <-ctx.Done():
	}
}

func (l *localClient) ready(ctx context.Context) error {
	select {
	case <-l.readyc:
		return nil
	case <-l.done:
		return errors.Join(errors.New("client ended before it was ready"), l.err)
	case <-ctx.Done():
		return fmt.Errorf("client not ready: %w", ctx.Err())
	}
}

func (l *localClient) start(at, deadline int64) error {
	l.startc <- [2]int64{at, deadline}
	return nil
}

func (l *localClient) report(ctx context.Context) (*clientReport, error) {
	select {
	case <-l.reportc:
		return l.rep, nil
	case <-l.done:
		return nil, errors.Join(errors.New("client ended without a report"), l.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("client did not report: %w", ctx.Err())
	}
}

func (l *localClient) finish(ctx context.Context) error {
	close(l.closec)
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return fmt.Errorf("client did not close: %w", ctx.Err())
	}
}

func (l *localClient) stop() {
	l.cancel()
	<-l.done
}

// --- a client in a child process ---

// childClient is a client running in a child process.
type childClient struct {
	index int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan []byte // the lines the child writes on fd 4; closed once it has exited…
	exit  error       // …with its exit status here
	out   *childOutput
}

// startChild starts the child process of client p.Client.
func startChild(p plan, ar *arena) (*childClient, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close() // the child has its copy; ours must go for EOF to come when it exits
	c := &childClient{index: p.Client, msgs: make(chan []byte, 2), out: &childOutput{}}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	c.cmd.ExtraFiles = []*os.File{ar.file, w} // fds 3 and 4
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	// Own process group: Ctrl-C reaches only the harness, which ends the children. Pdeathsig:
	// if the harness dies without its cleanup, the kernel kills them (as it does the servers).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		r.Close()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("client %d: start child process: %w", p.Client, err)
	}
	go c.read(r)
	return c, nil
}

// read forwards the child's messages until it closes fd 4, then waits for it to exit.
func (c *childClient) read(r *os.File) {
	defer close(c.msgs)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break
		}
		c.msgs <- line
	}
	r.Close()
	c.exit = c.cmd.Wait()
}

// next returns the child's next message; an error when it exited instead, or ctx ended.
func (c *childClient) next(ctx context.Context, what string) ([]byte, error) {
	select {
	case line, ok := <-c.msgs:
		if ok {
			return line, nil
		}
		return nil, c.failed(what)
	case <-ctx.Done():
		return nil, fmt.Errorf("client %d (pid %d): no %s: %w", c.index, c.cmd.Process.Pid, what, ctx.Err())
	}
}

// failed is the error of a child that exited before it sent what; call it once msgs is closed.
func (c *childClient) failed(what string) error {
	return fmt.Errorf("client %d (pid %d) exited (%v) before it sent %s; its output ends:\n%s",
		c.index, c.cmd.Process.Pid, c.exit, what, c.out.tail())
}

func (c *childClient) ready(ctx context.Context) error {
	line, err := c.next(ctx, "ready")
	if err == nil && string(line) != "ready\n" {
		err = fmt.Errorf("client %d: got %q; want ready", c.index, line)
	}
	return err
}

func (c *childClient) start(at, deadline int64) error {
	_, err := c.stdin.Write(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(at)), uint64(deadline)))
	return err
}

func (c *childClient) report(ctx context.Context) (*clientReport, error) {
	line, err := c.next(ctx, "its report")
	if err != nil {
		return nil, err
	}
	var rep clientReport
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("client %d: bad report: %w", c.index, err)
	}
	return &rep, nil
}

// finish closes the child's stdin, which tells it to close its client and exit; only a clean
// exit, with nothing more said, makes its report count.
func (c *childClient) finish(ctx context.Context) error {
	if err := c.stdin.Close(); err != nil {
		return err
	}
	select {
	case _, more := <-c.msgs:
		if more || c.exit != nil {
			return fmt.Errorf("client %d (pid %d) did not exit cleanly after its report (%v); its output ends:\n%s",
				c.index, c.cmd.Process.Pid, c.exit, c.out.tail())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client %d (pid %d): did not exit after its report: %w", c.index, c.cmd.Process.Pid, ctx.Err())
	}
}

func (c *childClient) stop() {
	_ = c.cmd.Process.Kill() // an error only says it has exited
	for range c.msgs {
	}
}

// childOutput takes a child's stdout and stderr. It keeps the last few KB, for the error should
// the child fail, and passes each whole line on to the harness's stderr unless it has been
// printed before, log timestamp aside: a library logs its set-up warnings once per process (one
// per node), which a single process printed once and every child would print again. exec.Cmd
// calls Write from one goroutine at a time (Stdout and Stderr are the same writer), and tail is
// read after Wait, which waits for that goroutine.
type childOutput struct{ last, line []byte }

const tailSize = 4 << 10

// printedLines are the lines of every child printed so far.
var printedLines = struct {
	sync.Mutex
	seen map[string]bool
}{seen: map[string]bool{}}

// logTimestamp is the prefix of the standard log package's and slog's default lines.
var logTimestamp = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? `)

func (o *childOutput) Write(p []byte) (int, error) {
	o.last = append(o.last, p...)
	if len(o.last) > tailSize {
		o.last = append(o.last[:0], o.last[len(o.last)-tailSize:]...)
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		printOnce(o.line[:i+1])
		o.line = o.line[i+1:]
	}
}

func printOnce(line []byte) {
	key := string(logTimestamp.ReplaceAll(line, nil))
	printedLines.Lock()
	defer printedLines.Unlock()
	if !printedLines.seen[key] {
		printedLines.seen[key] = true
		_, _ = os.Stderr.Write(line)
	}
}

func (o *childOutput) tail() string {
	if len(o.last) == 0 {
		return "(nothing)"
	}
	return string(o.last)
}

// --- the child's side ---

// runChild is this binary's life as client of a run, from the plan in spec (see the top of this
// file); it returns the exit status.
func runChild(spec string) int {
	if err := childMain(spec); err != nil {
		fmt.Fprintf(os.Stderr, "bench client (pid %d): %v\n", os.Getpid(), err)
		return 1
	}
	return 0
}

func childMain(spec string) error {
	var p plan
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return fmt.Errorf("bad plan: %w", err)
	}
	ad, ok := childAdapter(p.Adapter)
	if !ok {
		return fmt.Errorf("no adapter %q", p.Adapter)
	}
	ar, err := mapArena(os.NewFile(3, "arena"), shapeOf(p.Scenario.scenario(), p.Duration))
	if err != nil {
		return err
	}
	defer ar.close()
	return runClient(context.Background(), p, ad, ar, &pipeHandshake{out: os.NewFile(4, "report")})
}

// pipeHandshake is a child's handshake: "ready" and then the report on fd 4; the start instant
// and the deadline on stdin, as two little-endian int64s read into a buffer of its own, so that
// the wait allocates nothing inside the measured window (see runClient); then stdin's end.
type pipeHandshake struct {
	out *os.File
	buf [16]byte
}

func (h *pipeHandshake) signalReady() error {
	_, err := h.out.WriteString("ready\n")
	return err
}

// awaitStart reads the start. Its ctx is not the harness's: if the harness dies, stdin ends (and
// Pdeathsig has killed this process anyway).
func (h *pipeHandshake) awaitStart(context.Context) (start, deadline int64, err error) {
	if _, err := io.ReadFull(os.Stdin, h.buf[:]); err != nil {
		return 0, 0, fmt.Errorf("no start from the harness: %w", err)
	}
	return int64(binary.LittleEndian.Uint64(h.buf[:8])), int64(binary.LittleEndian.Uint64(h.buf[8:])), nil
}

func (h *pipeHandshake) sendReport(rep *clientReport) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if _, err := h.out.Write(append(b, '\n')); err != nil {
		return err
	}
	return h.out.Close()
}

// awaitClose waits for the end of stdin.
func (h *pipeHandshake) awaitClose(context.Context) {
	_, _ = io.Copy(io.Discard, os.Stdin)
}
