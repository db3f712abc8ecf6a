package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// binary is the quorumsync command, built once for the tests, which run it as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorumsync-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "quorumsync")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building quorumsync: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// env is a quorum of real servers for the commands to use.
type env struct {
	t     *testing.T
	nodes []*redistest.Node
	urls  string
}

func newEnv(t *testing.T, n int) *env {
	nodes := redistest.Start(t, n)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, "redis://"+n.Addr())
	}
	return &env{t: t, nodes: nodes, urls: strings.Join(urls, ",")}
}

// run is one quorumsync process.
type run struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start starts quorumsync with args against the env's nodes.
func (e *env) start(args ...string) *run {
	e.t.Helper()
	r := &run{cmd: exec.Command(binary, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), "QUORUMSYNC_REDIS="+e.urls)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	r.cmd.WaitDelay = time.Second // a command left running must not hold the test on its output
	require.NoError(e.t, r.cmd.Start())
	go func() {
		err := r.cmd.Wait()
		r.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		}
		close(r.done)
	}()
	e.t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM) // forwarded to the command
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the process to exit, and returns its exit code.
func (r *run) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(d):
		t.Fatalf("quorumsync %v did not exit within %v; stdout %q, stderr %q", r.cmd.Args[1:], d, r.stdout, r.stderr)
		return -1
	}
}

// exec runs quorumsync with args to the end and returns its exit code and output.
func (e *env) exec(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	r := e.start(args...)
	code = r.wait(e.t, 30*time.Second)
	return code, r.stdout.String(), r.stderr.String()
}

// holding starts `quorumsync lock` of name that runs a command that says "holding" and then sleeps,
// and returns once the command runs.
func (e *env) holding(name string, extra ...string) *run {
	e.t.Helper()
	args := append([]string{"lock"}, extra...)
	args = append(args, name, "--", "sh", "-c", `echo holding; exec sleep 30`)
	r := e.start(args...)
	e.waitOutput(r, "holding")
	return r
}

// waitOutput waits until r's stdout has s.
func (e *env) waitOutput(r *run, s string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stdout.String(), s) {
		select {
		case <-r.done:
			e.t.Fatalf("quorumsync exited (%d) before printing %q: stdout %q, stderr %q", r.code, s, r.stdout, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %q within 10s: stdout %q, stderr %q", s, r.stdout, r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Commands run under `lock` at once never overlap: each appends "in" and "out" lines to one file,
// and the lines alternate.
func TestLockedCommandsNeverOverlap(t *testing.T) {
	e := newEnv(t, 3)
	log := filepath.Join(t.TempDir(), "log")
	var runs []*run
	for range 4 {
		runs = append(runs, e.start("lock", "--ttl", "2s", "shared", "--", "sh", "-c",
			fmt.Sprintf(`echo in >> %[1]s; sleep 0.2; echo out >> %[1]s`, log)))
	}
	for _, r := range runs {
		require.Equal(t, 0, r.wait(t, 30*time.Second), r.stderr.String())
	}
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	lines := strings.Fields(string(data))
	require.Len(t, lines, 8)
	for i, l := range lines {
		assert.Equal(t, map[bool]string{true: "in", false: "out"}[i%2 == 0], l, "line %d of %v", i, lines)
	}
}

// --try skips a held lock with the busy code (or the one --conflict-exit-code gives), saying
// "busy", and does not run the command.
func TestTrySkipsAHeldLock(t *testing.T) {
	e := newEnv(t, 1)
	holder := e.holding("nightly")
	code, stdout, stderr := e.exec("lock", "--try", "nightly", "--", "echo", "ran")
	assert.Equal(t, 75, code)
	assert.NotContains(t, stdout, "ran")
	assert.Contains(t, stderr, "busy")
	code, _, _ = e.exec("lock", "--try", "--conflict-exit-code", "1", "nightly", "--", "echo", "ran")
	assert.Equal(t, 1, code)
	// --wait gives up with the busy code too.
	code, _, stderr = e.exec("lock", "--wait", "300ms", "nightly", "--", "echo", "ran")
	assert.Equal(t, 75, code)
	assert.Contains(t, stderr, "busy")
	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 128+int(syscall.SIGTERM), holder.wait(t, 10*time.Second), "the command ended by the forwarded SIGTERM")
	code, stdout, _ = e.exec("lock", "--try", "nightly", "--", "echo", "ran")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "ran")
}

// A signal sent to quorumsync reaches the command, and quorumsync exits with the command's code.
func TestSignalsReachTheCommand(t *testing.T) {
	e := newEnv(t, 1)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM} {
		r := e.start("lock", "sig", "--", "sh", "-c", fmt.Sprintf(`trap 'echo got %d; exit 4' %d; echo holding; while :; do sleep 0.05; done`, sig, sig))
		e.waitOutput(r, "holding")
		require.NoError(t, r.cmd.Process.Signal(sig))
		assert.Equal(t, 4, r.wait(t, 10*time.Second))
		assert.Contains(t, r.stdout.String(), fmt.Sprintf("got %d", sig))
	}
}

// If quorumsync is killed, its command dies with it rather than run on without the lock.
func TestKilledQuorumsyncTakesItsCommandAlong(t *testing.T) {
	e := newEnv(t, 1)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := e.start("lock", "orphan", "--", "sh", "-c", "echo $$ > "+pidFile+"; echo holding; exec sleep 30")
	e.waitOutput(r, "holding")
	data, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(string(data), &pid)
	require.NoError(t, err)
	require.NoError(t, r.cmd.Process.Kill())
	r.wait(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		require.True(t, time.Now().Before(deadline), "the command (pid %d) outlived quorumsync", pid)
		time.Sleep(20 * time.Millisecond)
	}
}

// inspect shows a holder from another process, with its label and pid, as a table and as JSON;
// ls lists the name; health answers.
func TestInspectShowsAHolderOfAnotherProcess(t *testing.T) {
	e := newEnv(t, 3)
	holder := e.holding("orders:42", "--label", "job=nightly-report")
	code, out, stderr := e.exec("inspect", "orders:42")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "job=nightly-report")
	assert.Contains(t, out, fmt.Sprint(holder.cmd.Process.Pid))
	assert.Contains(t, out, "3 of 3 nodes answered")

	code, out, stderr = e.exec("inspect", "--json", "orders:42")
	require.Equal(t, 0, code, stderr)
	var st struct {
		Name    string `json:"name"`
		Holders []struct {
			PID   int     `json:"pid"`
			Label string  `json:"label"`
			Mode  string  `json:"mode"`
			TTL   []int64 `json:"ttl_ms"`
		} `json:"holders"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Holders, 1)
	assert.Equal(t, holder.cmd.Process.Pid, st.Holders[0].PID)
	assert.Equal(t, "job=nightly-report", st.Holders[0].Label)
	assert.Equal(t, "lock", st.Holders[0].Mode)
	require.Len(t, st.Holders[0].TTL, 3)
	for _, ms := range st.Holders[0].TTL {
		assert.Positive(t, ms)
	}

	code, out, _ = e.exec("ls")
	assert.Equal(t, 0, code)
	assert.Equal(t, "orders:42\n", out)
	code, out, _ = e.exec("ls", "nothing:*")
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
	code, out, _ = e.exec("health")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, e.nodes[2].Addr())
	assert.Contains(t, out, "no AOF")

	// Two of three nodes hung: inspect shows what the third has, and says unavailable; break
	// cannot tell that nothing else holds it, and does not pretend to.
	e.nodes[1].Stop()
	e.nodes[2].Stop()
	code, out, stderr = e.exec("inspect", "--node-timeout", "100ms", "orders:42")
	assert.Equal(t, 69, code, stderr)
	assert.Contains(t, out, "1 of 3 nodes answered")
	assert.Contains(t, out, "job=nightly-report")
	code, _, stderr = e.exec("break", "--node-timeout", "100ms", "orders:42")
	assert.Equal(t, 69, code, stderr)
	assert.Contains(t, stderr, "unavailable")
	e.nodes[1].Continue()
	e.nodes[2].Continue()
}

// break, confirmed, removes the holder and wakes a waiting lock at once; the broken holder's
// command is terminated when its lock is found lost, and quorumsync exits 70.
func TestBreakWakesAWaitingLock(t *testing.T) {
	e := newEnv(t, 3)
	holder := e.start("lock", "--ttl", "3s", "stuck", "--", "sh", "-c", `trap 'echo terminated; exit 9' TERM; echo holding; while :; do sleep 0.05; done`)
	e.waitOutput(holder, "holding")
	waiter := e.start("lock", "stuck", "--", "echo", "got it")
	time.Sleep(300 * time.Millisecond) // queued on the servers

	declined := e.start("break", "stuck")
	assert.Equal(t, 1, declined.wait(t, 10*time.Second), "no confirmation on stdin: not broken")
	assert.Contains(t, declined.stderr.String(), "not broken")

	broke := time.Now()
	code, out, stderr := e.exec("break", "--yes", "stuck")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "broke lock")
	assert.Equal(t, 0, waiter.wait(t, 10*time.Second))
	assert.Contains(t, waiter.stdout.String(), "got it")
	assert.Less(t, time.Since(broke), 5*time.Second, "woken by the break, not by the TTL (10s)")

	assert.Equal(t, 70, holder.wait(t, 10*time.Second), "lost: the command was terminated")
	assert.Contains(t, holder.stdout.String(), "terminated")
	assert.Contains(t, holder.stderr.String(), "broken by an administrator")
	assert.Equal(t, 1, strings.Count(holder.stderr.String(), "broken by an administrator"), "the loss is said once: %s", holder.stderr)
}

// --on-lost=ignore lets the command finish without the lock, and quorumsync exits with its code;
// --fencing gives the command a token that grows with each holder.
func TestOnLostIgnoreAndFencing(t *testing.T) {
	e := newEnv(t, 1)
	r := e.start("lock", "--on-lost", "ignore", "--ttl", "1500ms", "--fencing", "f", "--", "sh", "-c", `echo "holding $QUORUMSYNC_FENCE"; sleep 2; exit 5`)
	e.waitOutput(r, "holding")
	code, _, stderr := e.exec("break", "--yes", "f")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 5, r.wait(t, 10*time.Second))
	assert.Contains(t, r.stderr.String(), "goes on without the lock")
	first := strings.TrimSpace(strings.TrimPrefix(r.stdout.String(), "holding"))
	code, out, _ := e.exec("lock", "--fencing", "f", "--", "sh", "-c", `echo "$QUORUMSYNC_FENCE"`)
	require.Equal(t, 0, code)
	assert.NotEmpty(t, first)
	assert.Greater(t, strings.TrimSpace(out), first, "fencing tokens increase")
}

// rlock holders run together and exclude wlock; sem admits as many as its capacity.
func TestReadLocksAndSemaphores(t *testing.T) {
	e := newEnv(t, 1)
	reader := e.start("rlock", "table", "--", "sh", "-c", "echo holding; exec sleep 30")
	e.waitOutput(reader, "holding")
	code, _, _ := e.exec("rlock", "--try", "table", "--", "true")
	assert.Equal(t, 0, code, "readers share")
	code, _, _ = e.exec("wlock", "--try", "table", "--", "true")
	assert.Equal(t, 75, code, "a writer waits for the readers")

	first := e.start("sem", "--capacity", "2", "--permits", "2", "pool", "--", "sh", "-c", "echo holding; exec sleep 30")
	e.waitOutput(first, "holding")
	code, _, _ = e.exec("sem", "--capacity", "2", "--try", "pool", "--", "true")
	assert.Equal(t, 75, code, "no permit left")
	code, _, stderr := e.exec("sem", "--capacity", "3", "--try", "pool", "--", "true")
	assert.Equal(t, 78, code, "a capacity that differs from the one in use is a misconfiguration")
	assert.Contains(t, stderr, "misconfigured")
}

// The exit codes are the documented ones.
func TestExitCodes(t *testing.T) {
	e := newEnv(t, 1)
	cases := []struct {
		name string
		args []string
		env  string
		want int
	}{
		{"the command's own code", []string{"lock", "x", "--", "sh", "-c", "exit 7"}, "", 7},
		{"killed by a signal", []string{"lock", "x", "--", "sh", "-c", "kill -KILL $$"}, "", 128 + 9},
		{"not found", []string{"lock", "x", "--", "no-such-command-here"}, "", 127},
		{"not runnable", []string{"lock", "x", "--", "/"}, "", 126},
		{"usage: no command", []string{"lock", "x"}, "", 64},
		{"usage: unknown flag", []string{"lock", "--nope", "x", "--", "true"}, "", 64},
		{"usage: unknown subcommand", []string{"frobnicate"}, "", 64},
		{"usage: bad URL", []string{"lock", "x", "--", "true"}, "ftp://localhost:6379", 64},
		{"usage: a negative --wait", []string{"lock", "--wait", "-1s", "x", "--", "true"}, "", 64},
		{"usage: a negative --ttl", []string{"lock", "--ttl", "-1s", "x", "--", "true"}, "", 64},
		{"usage: a negative --grace", []string{"lock", "--grace", "-1s", "x", "--", "true"}, "", 64},
		{"usage: an exit code past 255", []string{"lock", "--conflict-exit-code", "300", "x", "--", "true"}, "", 64},
		{"usage: a negative exit code", []string{"lock", "--conflict-exit-code", "-1", "x", "--", "true"}, "", 64},
		{"help", []string{"lock", "--help"}, "", 0},
		{"unavailable", []string{"lock", "x", "--", "true"}, "redis://127.0.0.1:1", 69},
		{"unavailable, waiting", []string{"lock", "--wait", "1s", "x", "--", "true"}, "redis://127.0.0.1:1", 69},
		{"misconfigured", []string{"lock", "x", "--", "true"}, "redis://nobody:wrong@" + e.nodes[0].Addr(), 78},
		{"health of a node that does not answer", []string{"health"}, "redis://127.0.0.1:1", 1},
		{"health of a node that refuses the password", []string{"health"}, "redis://nobody:wrong@" + e.nodes[0].Addr(), 78},
		{"ls with no node answering", []string{"ls"}, "redis://127.0.0.1:1", 69},
		{"usage: an empty --redis", []string{"ls", "--redis", ""}, "", 64},
		{"misconfigured: no such database", []string{"lock", "x", "--", "true"}, "redis://" + e.nodes[0].Addr() + "/99", 78},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.CommandContext(context.Background(), binary, c.args...)
			urls := e.urls
			if c.env != "" {
				urls = c.env
			}
			cmd.Env = append(os.Environ(), "QUORUMSYNC_REDIS="+urls)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			assert.Equal(t, c.want, code, "%s", out)
		})
	}
}
