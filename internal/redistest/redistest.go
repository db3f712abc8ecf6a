// Package redistest starts real redis-server processes on loopback for tests and stops them when the
// test ends. It also injects faults into one node: pause (SIGSTOP), resume (SIGCONT), kill and
// restart (with or without its persisted data), slow it (DEBUG SLEEP) and flush its script cache.
//
// There are no mocks here: every test that needs Redis talks to a real server. When redis-server is
// not installed the test fails (it never skips) with the command that installs it.
package redistest

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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// InstallHint is the command that installs redis-server on the Debian machines this project uses.
const InstallHint = "apt-get install -y redis-server (or run scripts/test.sh, which installs it)"

// Option changes how nodes are started.
type Option interface{ apply(*config) }

type config struct {
	tls        *tlsFiles // WithTLS: the certificate the nodes serve, and the clients trust
	appendOnly bool
	extra      []string
	clockRate  float64   // the nodes' wall-clock rate (WithClockRate); 0: real time
	clockEpoch time.Time // when the fast clocks start
	clockJumps bool      // WithClockJumps
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithAppendOnly turns on AOF persistence (appendfsync always), so that a restarted node keeps its
// keys. Without it a restarted node comes back empty, which is the unsafe case DESIGN §7 describes.
func WithAppendOnly() Option { return optionFunc(func(c *config) { c.appendOnly = true }) }

// WithTLS starts the nodes with TLS only (no plain-text port), serving a self-signed
// certificate for 127.0.0.1 that [Node.Options] trusts. Clients need not present one.
func WithTLS() Option { return optionFunc(func(c *config) { c.tls = &tlsFiles{} }) }

// WithDebugCommand lets clients on loopback run DEBUG (Redis 7 refuses it by default), which
// [Node.Slow] needs.
func WithDebugCommand() Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, "--enable-debug-command", "local") })
}

// WithArgs passes extra command-line arguments to every redis-server, for example
// "--maxmemory-policy", "allkeys-lru".
func WithArgs(args ...string) Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, args...) })
}

// Node is one redis-server process on loopback.
type Node struct {
	t    testing.TB
	cfg  config
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	paused bool
	// offset is the step of the node's wall clock (WithClockJumps), in nanoseconds, on the page
	// offsetFile maps, which the node's preloaded clock library reads.
	offset     *int64
	offsetFile string
}

// Start starts n independent redis-server processes, waits until each answers PING, and registers
// a cleanup that kills them. It fails the test when redis-server is missing or does not start.
func Start(t testing.TB, n int, opts ...Option) []*Node {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o.apply(&cfg)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH: these tests need real Redis servers; install it with: %s", InstallHint)
	}
	cfg.clockEpoch = time.Now() // the fast clocks start from here, and go on from it after a restart
	if cfg.tls != nil {
		files, err := writeCertificate(t.TempDir())
		if err != nil {
			t.Fatalf("redistest: TLS certificate: %v", err)
		}
		cfg.tls = files
	}
	if _, err := cfg.clockEnv(""); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	nodes := make([]*Node, n)
	for i := range nodes {
		nd := &Node{t: t, cfg: cfg, dir: t.TempDir()}
		if cfg.clockJumps {
			var err error
			if nd.offsetFile, nd.offset, err = clockOffset(t.TempDir()); err != nil {
				t.Fatalf("redistest: clock offset of node %d: %v", i, err)
			}
		}
		if err := nd.startFresh(); err != nil {
			t.Fatalf("redistest: start node %d: %v", i, err)
		}
		t.Cleanup(nd.shutdown)
		nodes[i] = nd
	}
	return nodes
}

// Launch starts one redis-server outside any test, for a TestMain that serves Example functions
// (which have no *testing.T). stop kills it and removes its directory. The fault-injection methods
// are not for nodes started this way.
func Launch() (addr string, stop func(), err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, fmt.Errorf("redis-server not found in PATH; install it with: %s", InstallHint)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return "", nil, err
	}
	nd := &Node{dir: dir}
	if err := nd.startFresh(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return nd.Addr(), func() { nd.shutdown(); os.RemoveAll(dir) }, nil
}

// StartCluster starts a Redis Cluster of shards masters (no replicas) on loopback, assigns the
// slots with redis-cli, and waits until the cluster reports ok. It returns the masters; a
// [redis.ClusterClient] over their addresses counts as one node of a quorum.
func StartCluster(t testing.TB, shards int) []*Node {
	t.Helper()
	return startCluster(t, shards, 0)
}

// StartClusterWithReplicas starts a Redis Cluster of shards masters with one replica each, like
// [StartCluster], and returns its nodes, masters and replicas alike (which is which changes with a
// failover: ask the cluster).
func StartClusterWithReplicas(t testing.TB, shards int) []*Node {
	t.Helper()
	nodes := startCluster(t, shards, 1)
	c := redis.NewClient(nodes[0].Options())
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := c.ClusterNodes(context.Background()).Result()
		if err == nil && strings.Count(out, "slave") == shards && !strings.Contains(out, "fail") {
			ok := true
			for _, n := range nodes {
				info, err := n.Client().Info(context.Background(), "replication").Result()
				if err != nil || strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
					ok = false
				}
			}
			if ok {
				return nodes
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster replicas not in sync after 10s: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startCluster(t testing.TB, shards, replicas int) []*Node {
	nodes := Start(t, shards*(1+replicas), WithArgs("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"))
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node, not only the first, must see every slot served: until then a node answers a key
	// it does not own with CLUSTERDOWN rather than MOVED.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		c := redis.NewClient(n.Options())
		defer c.Close()
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && bytes.Contains([]byte(info), []byte("cluster_state:ok")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok on %s after 10s: %v\n%s", n.Addr(), err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

// ClusterOptions returns cluster client options over nodes, with context timeouts enabled.
func ClusterOptions(nodes []*Node) *redis.ClusterOptions {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr()
	}
	return &redis.ClusterOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
	}
}

// Main runs a package's tests when its Example functions need a Redis server (they have no
// *testing.T to start one with): it starts one, stores its address in *addr, runs the tests, stops
// the server, and then checks for leaked goroutines. Use it as
// func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &redisAddr)) }.
func Main(m *testing.M, addr *string) int {
	a, stop, err := Launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return 1
	}
	*addr = a
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// CAFile returns the path of the PEM certificate a WithTLS node serves, which is also the CA its
// clients must trust; "" for a node without TLS.
func (n *Node) CAFile() string {
	if n.cfg.tls == nil {
		return ""
	}
	return n.cfg.tls.cert
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// Port is the node's TCP port.
func (n *Node) Port() int { return n.port }

// Options returns client options for the node with context timeouts enabled, as the lease package
// requires, and short dial and read timeouts suited to loopback tests.
func (n *Node) Options() *redis.Options {
	return &redis.Options{
		Addr:                  n.Addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		MaxRetries:            -1,
		TLSConfig:             n.cfg.tls.clientConfig(),
	}
}

// Client returns a new client for the node that is closed when the test ends.
func (n *Node) Client() *redis.Client {
	c := redis.NewClient(n.Options())
	n.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Clients returns one new client per node (see [Node.Client]) as the UniversalClient slice that
// lease.NewQuorum takes. Calling it several times gives independent connection pools, as separate
// processes would have.
func Clients(nodes []*Node) []redis.UniversalClient {
	cs := make([]redis.UniversalClient, len(nodes))
	for i, n := range nodes {
		cs[i] = n.Client()
	}
	return cs
}

// Stop pauses the node with SIGSTOP: its socket stays open but it answers nothing, like a host that
// hangs or a network partition.
func (n *Node) Stop() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		n.t.Fatalf("redistest: SIGSTOP %s: %v", n.Addr(), err)
	}
	n.paused = true
}

// Continue resumes a node paused by [Node.Stop].
func (n *Node) Continue() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		n.t.Fatalf("redistest: SIGCONT %s: %v", n.Addr(), err)
	}
	n.paused = false
}

// Kill kills the node with SIGKILL and waits for it to exit. Its port stays reserved for [Node.Restart].
func (n *Node) Kill() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

// Restart kills the node (if running) and starts it again on the same port and data directory.
// Without [WithAppendOnly] it comes back empty.
func (n *Node) Restart() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
	if err := n.exec(); err != nil {
		n.t.Fatalf("redistest: restart %s: %v", n.Addr(), err)
	}
}

// RestartEmpty kills the node (if running), deletes its persisted data (the AOF directory and any
// RDB file), and starts it again on the same port: it comes back empty even with
// [WithAppendOnly], as a node whose disk was lost would. This is the unsafe restart DESIGN §7
// describes, for tests that show what it breaks.
func (n *Node) RestartEmpty() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
	for _, name := range []string{"appendonlydir", "dump.rdb"} {
		if err := os.RemoveAll(filepath.Join(n.dir, name)); err != nil {
			n.t.Fatalf("redistest: wipe %s of %s: %v", name, n.Addr(), err)
		}
	}
	if err := n.exec(); err != nil {
		n.t.Fatalf("redistest: restart %s empty: %v", n.Addr(), err)
	}
}

// Slow makes the node unresponsive for d by running DEBUG SLEEP on a connection of its own: the
// server answers nobody until the sleep ends, while its process keeps running and its sockets stay
// open. Slow returns when the sleep has ended (or ctx ended first; the server still sleeps out d).
// The node must have been started with [WithDebugCommand].
func (n *Node) Slow(ctx context.Context, d time.Duration) error {
	o := n.Options()
	o.ReadTimeout = d + 5*time.Second
	c := redis.NewClient(o)
	defer c.Close()
	secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	if err := c.Do(ctx, "DEBUG", "SLEEP", secs).Err(); err != nil {
		return fmt.Errorf("redistest: DEBUG SLEEP %s on %s: %w", secs, n.Addr(), err)
	}
	return nil
}

// FlushScripts empties the node's Lua script cache (SCRIPT FLUSH), as a restart or a failover
// does: the next EVALSHA of any script gets NOSCRIPT.
func (n *Node) FlushScripts(ctx context.Context) error {
	c := redis.NewClient(n.Options())
	defer c.Close()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		return fmt.Errorf("redistest: SCRIPT FLUSH on %s: %w", n.Addr(), err)
	}
	return nil
}

// Keys returns every key on the node (SCAN over the whole keyspace).
func (n *Node) Keys(ctx context.Context) ([]string, error) {
	c := redis.NewClient(n.Options())
	defer c.Close()
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// RequireNoKeys fails the test if any node holds a key matching the glob pattern.
func RequireNoKeys(t testing.TB, nodes []*Node, pattern string) {
	t.Helper()
	for i, keys := range matching(t, nodes, pattern, allKeys) {
		for _, k := range keys {
			t.Errorf("node %d (%s) still holds key %q; want no key matching %q", i, nodes[i].Addr(), k, pattern)
		}
	}
}

// RequireNoKeysWithin waits up to d until no node holds a key matching the glob pattern (cleanups
// owed to nodes that just came back may take a moment), and fails the test with the keys left if
// some remain.
func RequireNoKeysWithin(t testing.TB, nodes []*Node, pattern string, d time.Duration) {
	t.Helper()
	requireGone(t, nodes, pattern, d, allKeys)
}

// RequireNoLockKeysWithin is [RequireNoKeysWithin] for every key but the fencing counters (keys
// ending ":fence"), which must persist.
func RequireNoLockKeysWithin(t testing.TB, nodes []*Node, pattern string, d time.Duration) {
	t.Helper()
	requireGone(t, nodes, pattern, d, lockKeys)
}

func allKeys(string) bool { return true }

// lockKeys is every key of a lock but its fencing counter.
func lockKeys(k string) bool { return !strings.HasSuffix(k, ":fence") }

// matching returns, per node, the keys that match the glob pattern and that keep keeps.
func matching(t testing.TB, nodes []*Node, pattern string, keep func(string) bool) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := make([][]string, len(nodes))
	for i, n := range nodes {
		keys, err := n.Keys(ctx)
		if err != nil {
			t.Fatalf("scan node %d (%s): %v", i, n.Addr(), err)
		}
		for _, k := range keys {
			if ok, _ := filepath.Match(pattern, k); ok && keep(k) {
				out[i] = append(out[i], k)
			}
		}
	}
	return out
}

func requireGone(t testing.TB, nodes []*Node, pattern string, d time.Duration, keep func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []string
		for i, keys := range matching(t, nodes, pattern, keep) {
			for _, k := range keys {
				left = append(left, fmt.Sprintf("node %d: %s", i, k))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys matching %q left on the nodes after %v: %q", pattern, d, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RequireTTLs fails the test if a key matching the glob pattern has no TTL on some node, but the
// fencing counters (keys ending ":fence"), which must persist.
func RequireTTLs(t testing.TB, nodes []*Node, pattern string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, keys := range matching(t, nodes, pattern, lockKeys) {
		c := redis.NewClient(nodes[i].Options())
		for _, k := range keys {
			// -1: no TTL; -2: gone since the scan, which is fine.
			if ttl, err := c.PTTL(ctx, k).Result(); err != nil {
				t.Errorf("PTTL %s on node %d: %v", k, i, err)
			} else if ttl == -1 {
				t.Errorf("node %d (%s): key %q has no TTL; want every key of a lock to expire", i, nodes[i].Addr(), k)
			}
		}
		_ = c.Close()
	}
}

func (n *Node) killLocked() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
	n.paused = false
}

func (n *Node) shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

// startFresh picks a free port and starts the server, retrying when another process takes the port
// between the probe and the server's bind.
func (n *Node) startFresh() error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		n.port = port
		if err = n.exec(); err == nil {
			return nil
		}
	}
	return err
}

func (n *Node) exec() error {
	args := []string{
		"--port", strconv.Itoa(n.port),
		"--bind", "127.0.0.1",
		"--dir", n.dir,
		"--logfile", "redis.log",
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	}
	if t := n.cfg.tls; t != nil {
		args[1] = "0" // no plain-text port
		args = append(args, "--tls-port", strconv.Itoa(n.port), "--tls-cert-file", t.cert, "--tls-key-file", t.key,
			"--tls-ca-cert-file", t.cert, "--tls-auth-clients", "no")
	}
	if n.cfg.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, n.cfg.extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = n.dir
	clock, err := n.cfg.clockEnv(n.offsetFile)
	if err != nil {
		return err
	}
	if clock != nil {
		cmd.Env = append(os.Environ(), clock...)
	}
	DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1, TLSConfig: n.cfg.tls.clientConfig()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			n.cmd = cmd
			return nil
		}
		if !processAlive(cmd) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	exited <- cmd.Wait()
	log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	return fmt.Errorf("redis-server on port %d did not answer PING (%v); log:\n%s", n.port, <-exited, bytes.TrimSpace(log))
}

func processAlive(cmd *exec.Cmd) bool {
	// Signal 0 checks existence; a zombie (exited, not reaped) still counts, so also look at its state.
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
