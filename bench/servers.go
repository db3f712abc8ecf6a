package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// installHint is how CI (a Debian machine) gets redis-server.
const installHint = "apt-get install -y redis-server"

// server is one redis-server process on loopback, owned by this benchmark.
type server struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	ctl  *redis.Client // control connection: RESETSTAT, INFO commandstats
}

// servers is the set of redis-server processes of one benchmark run. kill is idempotent and safe
// to call from a signal path, a deferred cleanup and a recovered panic alike.
type servers struct {
	dir  string
	list []*server

	once sync.Once
}

// startServers starts n independent redis-server processes in a fresh temporary directory, on free
// loopback ports, without persistence, and waits until each answers PING. On error it kills what it
// started.
func startServers(ctx context.Context, n int) (*servers, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found in PATH: the benchmark needs real Redis servers; install it with: %s", installHint)
	}
	dir, err := os.MkdirTemp("", "quorumsync-bench-")
	if err != nil {
		return nil, err
	}
	s := &servers{dir: dir}
	for i := range n {
		sv, err := startServer(ctx, path, filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			s.kill()
			return nil, fmt.Errorf("start redis-server %d: %w", i, err)
		}
		s.list = append(s.list, sv)
	}
	return s, nil
}

// addrs returns the addresses of the first n servers.
func (s *servers) addrs(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = s.list[i].addr
	}
	return out
}

// kill kills every server, waits for it, and removes the temporary directory.
func (s *servers) kill() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		for _, sv := range s.list {
			_ = sv.ctl.Close()
			_ = sv.cmd.Process.Kill()
			_ = sv.cmd.Wait()
		}
		_ = os.RemoveAll(s.dir)
	})
}

func startServer(ctx context.Context, path, dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var last error
	// Another process may take the port between the probe and the server's bind: try a few.
	for range 5 {
		port, err := freePort()
		if err != nil {
			last = err
			continue
		}
		sv, err := execServer(ctx, path, dir, port)
		if err == nil {
			return sv, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

func execServer(ctx context.Context, path, dir string, port int) (*server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--logfile", "redis.log",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Ctrl-C reaches only us, and we kill the servers after reading their
		// figures. Pdeathsig: if this process dies without running its cleanup (a panic in a
		// goroutine of a library under test, SIGKILL), the kernel kills the servers.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ctl := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := ctl.Ping(pctx).Err()
		cancel()
		if err == nil {
			return &server{addr: addr, dir: dir, cmd: cmd, ctl: ctl}, nil
		}
		if !alive(cmd) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = ctl.Close()
	_ = cmd.Process.Kill()
	werr := cmd.Wait()
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	return nil, fmt.Errorf("redis-server on %s did not answer PING (%v); log:\n%s", addr, werr, bytes.TrimSpace(log))
}

// alive reports whether the process still runs (a zombie does not count).
func alive(cmd *exec.Cmd) bool {
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// resetStats runs CONFIG RESETSTAT on every server in list.
func resetStats(ctx context.Context, list []*server) error {
	for _, sv := range list {
		if err := sv.ctl.ConfigResetStat(ctx).Err(); err != nil {
			return fmt.Errorf("CONFIG RESETSTAT on %s: %w", sv.addr, err)
		}
	}
	return nil
}

// notCounted are the commands of the harness itself and of connection set-up, which are not part
// of a lock's cost: a new pooled connection sends HELLO and CLIENT SETINFO once.
var notCounted = map[string]bool{
	"info": true, "config|resetstat": true, "config|get": true, "hello": true,
	"client|setinfo": true, "ping": true, "auth": true, "select": true,
}

// commandStats sums INFO commandstats over list: calls per command name (sub-commands as
// "client|setinfo"). Commands that Lua scripts run are counted there too, under their own names.
func commandStats(ctx context.Context, list []*server) (map[string]int64, error) {
	out := make(map[string]int64)
	for _, sv := range list {
		info, err := sv.ctl.Info(ctx, "commandstats").Result()
		if err != nil {
			return nil, fmt.Errorf("INFO commandstats on %s: %w", sv.addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			// cmdstat_set:calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
			if !ok {
				continue
			}
			name, fields, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			for _, f := range strings.Split(fields, ",") {
				if v, ok := strings.CutPrefix(f, "calls="); ok {
					n, err := strconv.ParseInt(v, 10, 64)
					if err == nil {
						out[name] += n
					}
				}
			}
		}
	}
	return out, nil
}

// serverCPU sums used_cpu_user + used_cpu_sys of INFO cpu over list: the CPU time the servers
// have used since they started.
func serverCPU(ctx context.Context, list []*server) (time.Duration, error) {
	var total time.Duration
	for _, sv := range list {
		info, err := sv.ctl.Info(ctx, "cpu").Result()
		if err != nil {
			return 0, fmt.Errorf("INFO cpu on %s: %w", sv.addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				total += time.Duration(f * float64(time.Second))
			}
		}
	}
	return total, nil
}

// processCPU returns the user + system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisVersion returns the first line of `redis-server --version`.
func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}
