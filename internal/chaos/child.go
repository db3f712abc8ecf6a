package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// Process clients. The test binary re-executes itself with ChildEnv set to the path of a
// ChildConfig; TestMain then calls RunChild instead of running tests. The child builds its own
// quorum over the proxies the parent made for it, runs the workload, and journals every section
// (see [Journal]). The parent can SIGSTOP the whole child — watchdog included, like a long GC
// pause or a stopped VM — SIGCONT it, or SIGKILL it, and reads the journal afterwards.

// ChildEnv is set, to the path of the child's configuration, in the environment of a child client.
const ChildEnv = "CHAOS_CHILD"

// ChildConfig is what a child client runs.
type ChildConfig struct {
	ID         string      `json:"id"`
	Primitive  string      `json:"primitive"`
	Nodes      []string    `json:"nodes"` // the proxies to the nodes, in node order
	Resource   string      `json:"resource"`
	Lease      LeaseConfig `json:"lease"`
	Work       Workload    `json:"work"`
	Goroutines int         `json:"goroutines"`
	// Sections, when positive, makes each goroutine stop after that many sections; otherwise they
	// run until SIGTERM.
	Sections int    `json:"sections"`
	Seed     uint64 `json:"seed"`
	Journal  string `json:"journal"`
}

// RunChild runs the child client configured by the file named in ChildEnv and returns its exit
// code: 0 when it stopped cleanly (SIGTERM, or its sections done), 1 on an error, which it prints.
func RunChild() int {
	if err := runChild(os.Getenv(ChildEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "chaos child:", err)
		return 1
	}
	return 0
}

func runChild(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg ChildConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	j, err := CreateJournal(cfg.Journal)
	if err != nil {
		return err
	}
	defer j.Close()
	nodes := dialNodes(cfg.Nodes)
	defer closeClients(nodes)
	rc := redis.NewClient(&redis.Options{Addr: cfg.Resource, ContextTimeoutEnabled: true})
	defer rc.Close()

	// The nodes may be faulted as the child starts: NewQuorum tolerates nodes that do not answer.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	l, err := NewLocker(sctx, cfg.Primitive, nodes, cfg.Lease)
	cancel()
	if err != nil {
		return err
	}
	var jerr error
	var jmu sync.Mutex
	record := func(s Section) {
		if err := j.Write(s); err != nil {
			jmu.Lock()
			jerr = errors.Join(jerr, err)
			jmu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for g := range max(cfg.Goroutines, 1) {
		c := &Client{ID: fmt.Sprintf("%s.%d", cfg.ID, g), Locker: l, Res: NewResource(rc), Work: cfg.Work,
			Rng: rand.New(rand.NewPCG(cfg.Seed, uint64(g))), OnEnter: record, OnRead: record, OnExit: record}
		wg.Go(func() {
			if cfg.Sections > 0 {
				c.RunN(ctx, cfg.Sections)
			} else {
				c.Run(ctx)
			}
		})
	}
	wg.Wait()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	_ = l.Close(cctx)
	return jerr
}

// Proc is a child client process as the parent sees it.
type Proc struct {
	ID      string
	Config  ChildConfig
	cmd     *exec.Cmd
	out     bytes.Buffer // the child's stdout and stderr
	waited  chan struct{}
	waitErr error
}

// StartProc starts a child running cfg. dir holds its configuration, journal and output. A
// goroutine reaps it; [Proc.Stop] and [Proc.Kill] wait for that.
func StartProc(dir string, cfg ChildConfig) (*Proc, error) {
	if cfg.Journal == "" {
		cfg.Journal = filepath.Join(dir, cfg.ID+".jsonl")
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, cfg.ID+".json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return nil, err
	}
	// The journal exists from the start: a child killed before it opened it journaled nothing.
	if err := os.WriteFile(cfg.Journal, nil, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &Proc{ID: cfg.ID, Config: cfg, waited: make(chan struct{})}
	// -test.run matching nothing: should the child ever miss ChildEnv, it runs no test.
	p.cmd = exec.Command(self, "-test.run=^$")
	p.cmd.Env = append(os.Environ(), ChildEnv+"="+path)
	redistest.DieWithParent(p.cmd)
	p.cmd.Stdout, p.cmd.Stderr = &syncWriter{w: &p.out}, &syncWriter{w: &p.out}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.waited)
	}()
	return p, nil
}

// Pause stops the whole process (SIGSTOP).
func (p *Proc) Pause() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Proc) Resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// Kill kills the process (SIGKILL) and waits until it is reaped.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.waited
}

// Stop asks the process to finish (SIGCONT, then SIGTERM: it ends its section, releases, closes
// its quorum) and waits up to grace for it to exit; then it kills it. It returns the process's
// failure, if it exited with one or had to be killed.
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.waited:
		if p.waitErr != nil {
			return fmt.Errorf("child %s: %w; output:\n%s", p.ID, p.waitErr, p.Output())
		}
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("child %s did not stop within %s after SIGTERM; killed; output:\n%s", p.ID, grace, p.Output())
	}
}

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.waited:
		return true
	default:
		return false
	}
}

// Reaped reports whether the process is gone: reaped by us, and no process with its pid left.
func (p *Proc) Reaped() bool {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return false
	}
	err := syscall.Kill(p.cmd.Process.Pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// Sections reads the journal the process wrote.
func (p *Proc) Sections() ([]Section, error) { return ReadJournalFile(p.Config.Journal) }

// Output returns what the process printed.
func (p *Proc) Output() string {
	return p.cmd.Stdout.(*syncWriter).String()
}

type syncWriter struct{ w *bytes.Buffer }

var outMu sync.Mutex // guards every child's output buffer; children print little

func (s *syncWriter) Write(b []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	outMu.Lock()
	defer outMu.Unlock()
	return s.w.String()
}
