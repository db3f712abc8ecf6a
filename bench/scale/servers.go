package main

import (
	"bytes"
	"context"
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

const installHint = "apt-get install -y redis-server (it brings redis-cli too)"

// checkTools fails loudly when redis-server or redis-cli is missing: the command never skips.
func checkTools() error {
	for _, t := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found in PATH: the scale command needs real Redis servers; install it with: %s", t, installHint)
		}
	}
	return nil
}

// redisProc is one redis-server on a free loopback port, without persistence, owned by this run.
type redisProc struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	ctl  *redis.Client // control connection: INFO, CONFIG RESETSTAT, DBSIZE
	once sync.Once
}

// started lists every server of the run, so that killAll (deferred by main, and by tests) takes
// them all down; Pdeathsig covers a crash of this process.
var started struct {
	sync.Mutex
	list []*redisProc
}

// startRedis starts a redis-server with the common flags plus extra, and waits for PING.
func startRedis(ctx context.Context, extra ...string) (*redisProc, error) {
	var last error
	for range 5 { // another process may take the probed port before the server binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		p, err := execRedis(ctx, port, extra)
		if err == nil {
			return p, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

func execRedis(ctx context.Context, port int, extra []string) (*redisProc, error) {
	dir, err := os.MkdirTemp("", "quorumsync-scale-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--logfile", "redis.log", "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--protected-mode", "no", "--loglevel", "warning", "--maxclients", "20000"}, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &redisProc{addr: addr, dir: dir, cmd: cmd,
		ctl: redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1})}
	started.Lock()
	started.list = append(started.list, p)
	started.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := p.ctl.Ping(pctx).Err()
		cancel()
		if err == nil {
			return p, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	p.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer PING; log:\n%s", addr, bytes.TrimSpace(log))
}

// stop kills the server, waits for it and removes its directory; idempotent.
func (p *redisProc) stop() {
	p.once.Do(func() {
		_ = p.ctl.Close()
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		_ = os.RemoveAll(p.dir)
	})
}

func killAll() {
	started.Lock()
	defer started.Unlock()
	for _, p := range started.list {
		p.stop()
	}
	started.list = nil
}

// startCluster starts shards cluster-enabled masters and joins them into one cluster by hand (redis-cli
// --cluster create refuses fewer than 3 masters): each node gets an even slot range with CLUSTER
// ADDSLOTSRANGE, node 0 meets the others, and it waits until every node says cluster_state:ok.
func startCluster(ctx context.Context, shards int) ([]*redisProc, error) {
	var nodes []*redisProc
	fail := func(err error) ([]*redisProc, error) {
		for _, n := range nodes {
			n.stop()
		}
		return nil, err
	}
	for range shards {
		n, err := startRedis(ctx, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
			"--cluster-config-file", "nodes.conf")
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, n)
	}
	for i, n := range nodes {
		lo, hi := i*16384/shards, (i+1)*16384/shards-1
		if err := n.ctl.Do(ctx, "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER ADDSLOTSRANGE on %s: %w", n.addr, err))
		}
		if err := n.ctl.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER SET-CONFIG-EPOCH on %s: %w", n.addr, err))
		}
	}
	for _, n := range nodes[1:] {
		host, port, _ := net.SplitHostPort(n.addr)
		if err := nodes[0].ctl.ClusterMeet(ctx, host, port).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER MEET: %w", err))
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			info, err := n.ctl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r", shards)) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fail(fmt.Errorf("cluster of %d not ok after 20s on %s: %v\n%s", shards, n.addr, err, info))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes, nil
}

// infoFields returns the "key:value" lines of INFO section as a map.
func infoFields(ctx context.Context, p *redisProc, section string) (map[string]string, error) {
	info, err := p.ctl.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s on %s: %w", section, p.addr, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

func infoInt(ctx context.Context, p *redisProc, section, field string) (int64, error) {
	f, err := infoFields(ctx, p, section)
	if err != nil {
		return 0, err
	}
	v, ok := f[field]
	if !ok {
		return 0, fmt.Errorf("INFO %s on %s has no %s", section, p.addr, field)
	}
	return strconv.ParseInt(v, 10, 64)
}

// serverCPU is used_cpu_user + used_cpu_sys of the server, since it started.
func serverCPU(ctx context.Context, p *redisProc) (time.Duration, error) {
	f, err := infoFields(ctx, p, "cpu")
	if err != nil {
		return 0, err
	}
	var total float64
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, _ := strconv.ParseFloat(f[k], 64)
		total += v
	}
	return time.Duration(total * float64(time.Second)), nil
}

// notCounted are the commands of this harness and of connection set-up and cluster topology, which
// are not part of a lock's cost.
func notCounted(name string) bool {
	switch name {
	case "info", "config|resetstat", "config|get", "hello", "client|setinfo", "ping", "auth", "select",
		"dbsize", "memory|usage", "scan", "pubsub|numsub", "pubsub|channels", "readonly":
		return true
	}
	return strings.HasPrefix(name, "cluster|") || strings.HasPrefix(name, "command")
}

// commandStats returns INFO commandstats calls per command (sub-commands as "client|setinfo"),
// the commands that Lua scripts run included, under their own names.
func commandStats(ctx context.Context, p *redisProc) (map[string]int64, error) {
	info, err := p.ctl.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats on %s: %w", p.addr, err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, _ := strings.Cut(rest, ":")
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] += n
			}
		}
	}
	return out, nil
}

// counted sums the calls of stats that are part of a lock's cost.
func counted(stats map[string]int64) int64 {
	var n int64
	for k, v := range stats {
		if !notCounted(k) {
			n += v
		}
	}
	return n
}

// countKeys counts the keys matching pattern (SCAN; the servers are this run's own).
func countKeys(ctx context.Context, p *redisProc, pattern string) (int, error) {
	n := 0
	iter := p.ctl.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	return n, iter.Err()
}

// redisVersion is the first line of `redis-server --version`.
func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}
