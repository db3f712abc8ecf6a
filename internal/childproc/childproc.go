// Package childproc runs a function of a test binary in a child process of its own, so that a test
// can pause (SIGSTOP) or kill a whole client — its watchdog, connections and all — as a GC pause, a
// stopped VM or a crash would.
//
// A test package registers its child functions and calls [Main] first thing in TestMain; a test
// then starts a child with [Start], waits for a line the child prints, and stops, resumes or kills
// it. The child process is killed when the test ends.
package childproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// envName carries the child function's name and arguments from the parent.
const envName = "QUORUMSYNC_CHILDPROC"

var (
	mu    sync.Mutex
	funcs = map[string]func(args []string) error{}
)

// Register makes f runnable as a child named name. f gets the arguments given to [Start]; what it
// prints to stdout the parent can wait for with [Proc.WaitLine]. A child that should hold something
// until killed blocks for ever at the end.
func Register(name string, f func(args []string) error) {
	mu.Lock()
	defer mu.Unlock()
	funcs[name] = f
}

// Main runs the registered child function and exits, when this process was started by [Start];
// otherwise it returns at once. Call it first in TestMain.
func Main() {
	v, ok := os.LookupEnv(envName)
	if !ok {
		return
	}
	name, rest, _ := strings.Cut(v, "\x1f")
	var args []string
	if rest != "" {
		args = strings.Split(rest, "\x1f")
	}
	mu.Lock()
	f := funcs[name]
	mu.Unlock()
	if f == nil {
		fmt.Fprintf(os.Stderr, "childproc: no child function %q\n", name)
		os.Exit(2)
	}
	if err := f(args); err != nil {
		fmt.Fprintf(os.Stderr, "childproc: %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Proc is a running child.
type Proc struct {
	t     testing.TB
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}

	mu      sync.Mutex
	printed []string // every line the child printed, in order
}

// Start runs the child function name with args in a new process of this test binary. The child is
// killed (and waited for) when the test ends.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envName+"="+strings.Join(append([]string{name}, args...), "\x1f"))
	redistest.DieWithParent(cmd)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("childproc: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("childproc: start %s: %v", name, err)
	}
	p := &Proc{t: t, cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go p.read(out)
	t.Cleanup(p.Kill)
	return p
}

func (p *Proc) read(out io.Reader) {
	defer close(p.done)
	s := bufio.NewScanner(out)
	for s.Scan() {
		p.mu.Lock()
		p.printed = append(p.printed, s.Text())
		p.mu.Unlock()
		select {
		case p.lines <- s.Text():
		default: // nobody is waiting for so many lines
		}
	}
}

// WaitLine waits until the child prints line, and fails the test if it does not within d.
func (p *Proc) WaitLine(line string, d time.Duration) {
	p.t.Helper()
	p.wait(func(got string) bool { return got == line }, fmt.Sprintf("%q", line), d)
}

// WaitFor waits until the child prints a line that starts with prefix and returns it; it fails
// the test if none comes within d.
func (p *Proc) WaitFor(prefix string, d time.Duration) string {
	p.t.Helper()
	return p.wait(func(got string) bool { return strings.HasPrefix(got, prefix) }, fmt.Sprintf("a line starting %q", prefix), d)
}

func (p *Proc) wait(match func(string) bool, what string, d time.Duration) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		select {
		case got := <-p.lines:
			if match(got) {
				return got
			}
		case <-p.done:
			p.t.Fatalf("childproc: the child exited before it printed %s", what)
		case <-ctx.Done():
			p.t.Fatalf("childproc: the child did not print %s within %v", what, d)
		}
	}
}

// Printed returns every line the child has printed so far, in order; after [Proc.Kill], every line
// it printed before it died.
func (p *Proc) Printed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.printed)
}

// Last returns the last line the child has printed so far ("" if none).
func (p *Proc) Last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.printed) == 0 {
		return ""
	}
	return p.printed[len(p.printed)-1]
}

// Mono returns CLOCK_MONOTONIC in nanoseconds. Every process on the machine reads the same clock,
// so times a child prints compare directly with the parent's and other children's, which Go's own
// monotonic readings (relative to each process's start) do not.
func Mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("childproc: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // cannot fail on Linux
	}
	return ts.Nano()
}

// MonoOf converts t, a time with Go's monotonic reading (a lease's Until), to the [Mono] clock.
func MonoOf(t time.Time) int64 {
	return Mono() + int64(time.Until(t))
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop pauses the child with SIGSTOP.
func (p *Proc) Stop() { p.signal(syscall.SIGSTOP) }

// Continue resumes a child paused by Stop.
func (p *Proc) Continue() { p.signal(syscall.SIGCONT) }

func (p *Proc) signal(s syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("childproc: signal %v: %v", s, err)
	}
}

// Kill kills the child and waits for it. It is safe to call more than once.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.cmd.Wait()
}
