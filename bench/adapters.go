package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
	"github.com/quorumsync/quorumsync/rwmutex"
	"github.com/quorumsync/quorumsync/semaphore"
)

// ttl is the lock TTL of every library, so that no one wins by doing less work per lock.
const ttl = 10 * time.Second

// retryEvery is the retry interval of the polling baselines (raw, raw-pass, raw-quorum) and of
// the peers configured for fast retry (redsync-1ms, redislock).
const retryEvery = time.Millisecond

// Adapter builds clients of one lock library.
type Adapter interface {
	// Name is the adapter's name in flags and reports.
	Name() string
	// NewClient connects to the servers at addrs (one node each) with connection pools of its own.
	NewClient(ctx context.Context, addrs []string) (Client, error)
}

// Client is one instance of a library: its own connection pools and library state. In a
// scenario of several clients, each is made in a process of its own (see child.go).
type Client interface {
	// NewLocker returns an exclusive lock on key. The harness makes one per goroutine and key, and
	// uses it from that goroutine only.
	NewLocker(key string) Locker
	// Close releases the client's resources.
	Close() error
}

// SharedClient is a Client of a library that also has primitives whose holders may overlap: a
// reader-writer lock's readers, a semaphore's permits.
type SharedClient interface {
	Client
	// NewSharedLocker returns a lock on key that grants acc (a read lock, or acc.weight permits of
	// a semaphore of acc.capacity), or false when the library has no such primitive.
	NewSharedLocker(key string, acc access) (Locker, bool)
}

// lockerFor returns a lock on key for acc from c, and the access it grants: acc when c has the
// primitive, otherwise an exclusive lock — a library without a reader-writer lock runs a readers'
// scenario with its mutex, and the exclusion check then holds it to a mutex's rule.
func lockerFor(c Client, key string, acc access) (Locker, access) {
	if acc.mode != exclusive {
		if sc, ok := c.(SharedClient); ok {
			if lk, ok := sc.NewSharedLocker(key, acc); ok {
				return lk, acc
			}
		}
	}
	return c.NewLocker(key), exclusiveAccess
}

// Locker is the one shape the harness drives every library through.
type Locker interface {
	// Lock blocks until the lock is held or ctx ends; an error means not held.
	Lock(ctx context.Context) error
	// Unlock releases a held lock.
	Unlock(ctx context.Context) error
}

// adapters lists every adapter, in report order.
var adapters = []Adapter{
	quorumsyncAdapter{},
	quorumsyncAdapter{poll: true},
	quorumsyncAdapter{prim: primRWMutex},
	quorumsyncAdapter{prim: primSemaphore},
	redsyncAdapter{name: "redsync"},
	redsyncAdapter{name: "redsync-1ms", fast: true},
	redislockAdapter{},
	rawAdapter{},
	rawPassAdapter{},
	rawQuorumAdapter{},
	rawSemAdapter{},
}

func adapterByName(name string) (Adapter, bool) {
	for _, a := range adapters {
		if a.Name() == name {
			return a, true
		}
	}
	return nil, false
}

// redisOptions are the go-redis options of every library's node clients. ContextTimeoutEnabled
// is required by quorumsync (its per-node timeouts must reach the sockets); the others get it too
// so that all pay the same per-command cost.
func redisOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
	}
}

func newClients(addrs []string) []*redis.Client {
	cs := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		cs[i] = redis.NewClient(redisOptions(a))
	}
	return cs
}

func closeClients(cs []*redis.Client) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// --- quorumsync ---

// primitive is which of quorumsync's packages an adapter drives.
type primitive int

const (
	primMutex     primitive = iota // package mutex
	primRWMutex                    // package rwmutex: read locks for shared access, write locks otherwise
	primSemaphore                  // package semaphore: permits; an exclusive lock is a semaphore of capacity 1
)

// quorumsyncAdapter is the library as users call it: by default its Mutex ("quorumsync"); with poll
// set ("quorumsync-poll1ms"), Lock is instead a Mutex.TryLock every millisecond over the same
// scripts, without the queue or wake-ups; with prim set, its RWMutex ("quorumsync-rwmutex") or its
// Semaphore ("quorumsync-semaphore").
type quorumsyncAdapter struct {
	poll bool
	prim primitive
}

func (a quorumsyncAdapter) Name() string {
	switch {
	case a.poll:
		return "quorumsync-poll1ms"
	case a.prim == primRWMutex:
		return "quorumsync-rwmutex"
	case a.prim == primSemaphore:
		return "quorumsync-semaphore"
	}
	return "quorumsync"
}

func (a quorumsyncAdapter) NewClient(ctx context.Context, addrs []string) (Client, error) {
	cs := newClients(addrs)
	nodes := make([]redis.UniversalClient, len(cs))
	for i, c := range cs {
		nodes[i] = c
	}
	q, err := lease.NewQuorum(ctx, nodes, lease.WithTTL(ttl))
	if err != nil {
		_ = closeClients(cs)
		return nil, err
	}
	return &quorumsyncClient{q: q, cs: cs, poll: a.poll, prim: a.prim}, nil
}

type quorumsyncClient struct {
	q    *lease.Quorum
	cs   []*redis.Client
	poll bool
	prim primitive
}

func (c *quorumsyncClient) NewLocker(key string) Locker {
	switch {
	case c.poll:
		return pollLocker{mutex.New(c.q, key)}
	case c.prim == primRWMutex:
		return rwWriter{rwmutex.New(c.q, key)}
	case c.prim == primSemaphore:
		return semLocker{semaphore.New(c.q, key, 1), 1}
	}
	return mutex.New(c.q, key)
}

func (c *quorumsyncClient) NewSharedLocker(key string, acc access) (Locker, bool) {
	switch {
	case c.prim == primRWMutex && acc.mode == shared:
		return rwReader{rwmutex.New(c.q, key)}, true
	case c.prim == primSemaphore && acc.mode == permits:
		return semLocker{semaphore.New(c.q, key, acc.capacity), acc.weight}, true
	}
	return nil, false
}

// rwReader and rwWriter are an RWMutex's read and write locks. Each goroutine has RWMutexes of
// its own (RUnlock releases the read lock its RWMutex took last); those of one client and name
// share the client's local gate.
type rwReader struct{ rw *rwmutex.RWMutex }

func (l rwReader) Lock(ctx context.Context) error   { return l.rw.RLock(ctx) }
func (l rwReader) Unlock(ctx context.Context) error { return l.rw.RUnlock(ctx) }

type rwWriter struct{ rw *rwmutex.RWMutex }

func (l rwWriter) Lock(ctx context.Context) error   { return l.rw.Lock(ctx) }
func (l rwWriter) Unlock(ctx context.Context) error { return l.rw.Unlock(ctx) }

// semLocker acquires and releases n permits of a Semaphore of its own.
type semLocker struct {
	s *semaphore.Semaphore
	n int64
}

func (l semLocker) Lock(ctx context.Context) error   { return l.s.Acquire(ctx, l.n) }
func (l semLocker) Unlock(ctx context.Context) error { return l.s.Release(ctx, l.n) }

// pollLocker locks by trying every millisecond.
type pollLocker struct{ m *mutex.Mutex }

func (p pollLocker) Lock(ctx context.Context) error {
	for {
		err := p.m.TryLock(ctx)
		if !errors.Is(err, lease.ErrNotAcquired) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (p pollLocker) Unlock(ctx context.Context) error { return p.m.Unlock(ctx) }

func (c *quorumsyncClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(c.q.Close(ctx), closeClients(c.cs))
}

// --- redsync ---

// redsyncAdapter is go-redsync/redsync/v4 over go-redis v9. With fast unset it keeps redsync's
// defaults (32 tries, a random 50–250ms delay between them) except the expiry, which is the common
// TTL. With fast set it retries every 1ms, with tries enough to outlast any round.
type redsyncAdapter struct {
	name string
	fast bool
}

func (a redsyncAdapter) Name() string { return a.name }

func (a redsyncAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	cs := newClients(addrs)
	pools := make([]redsyncredis.Pool, len(cs))
	for i, c := range cs {
		pools[i] = goredis.NewPool(c)
	}
	opts := []redsync.Option{redsync.WithExpiry(ttl)}
	if a.fast {
		opts = append(opts, redsync.WithRetryDelay(retryEvery), redsync.WithTries(math.MaxInt32))
	}
	return &redsyncClient{rs: redsync.New(pools...), cs: cs, opts: opts}, nil
}

type redsyncClient struct {
	rs   *redsync.Redsync
	cs   []*redis.Client
	opts []redsync.Option
}

// NewLocker returns a fresh redsync Mutex: a redsync Mutex keeps the value of its last acquisition
// in itself, so it must not be shared between goroutines.
func (c *redsyncClient) NewLocker(key string) Locker {
	return redsyncLocker{c.rs.NewMutex(key, c.opts...)}
}

func (c *redsyncClient) Close() error { return closeClients(c.cs) }

type redsyncLocker struct{ m *redsync.Mutex }

// Lock is LockContext: with the default options it gives up (ErrFailed or ErrTaken) after 32
// tries; the harness counts that as a lock error and calls Lock again.
func (l redsyncLocker) Lock(ctx context.Context) error { return l.m.LockContext(ctx) }

func (l redsyncLocker) Unlock(ctx context.Context) error {
	ok, err := l.m.UnlockContext(ctx)
	if err == nil && !ok {
		err = errors.New("redsync: unlock: not released")
	}
	return err
}

// --- redislock ---

// redislockAdapter is bsm/redislock with a 1ms linear retry; the deadline of its retry loop comes
// from the ctx given to Lock.
type redislockAdapter struct{}

func (redislockAdapter) Name() string { return "redislock" }

func (redislockAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("redislock: single node only, got %d", len(addrs))
	}
	c := redis.NewClient(redisOptions(addrs[0]))
	return &redislockClient{c: c, rl: redislock.New(c)}, nil
}

type redislockClient struct {
	c  *redis.Client
	rl *redislock.Client
}

func (c *redislockClient) NewLocker(key string) Locker {
	return &redislockLocker{rl: c.rl, key: key, opt: &redislock.Options{RetryStrategy: redislock.LinearBackoff(retryEvery)}}
}

func (c *redislockClient) Close() error { return c.c.Close() }

type redislockLocker struct {
	rl   *redislock.Client
	key  string
	opt  *redislock.Options
	lock *redislock.Lock
}

func (l *redislockLocker) Lock(ctx context.Context) error {
	lk, err := l.rl.Obtain(ctx, l.key, ttl, l.opt)
	if err != nil {
		return err
	}
	l.lock = lk
	return nil
}

func (l *redislockLocker) Unlock(ctx context.Context) error {
	lk := l.lock
	l.lock = nil
	return lk.Release(ctx)
}

// --- raw: the minimal correct single-node lock ---

// releaseScript is the compare-and-delete every correct Redis lock needs: delete the key only if
// it still holds our token.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// newToken returns 128 random bits, hex-encoded: unique per acquisition, as a lock token must be.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rawAdapter is the baseline: SET key token NX PX ttl, retried every 1ms, then the
// compare-and-delete script. Two round trips per lock+unlock.
type rawAdapter struct{}

func (rawAdapter) Name() string { return "raw" }

func (rawAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("raw: single node only, got %d (use raw-quorum)", len(addrs))
	}
	return &rawClient{c: redis.NewClient(redisOptions(addrs[0]))}, nil
}

type rawClient struct{ c *redis.Client }

func (c *rawClient) NewLocker(key string) Locker { return &rawLocker{c: c.c, key: key} }
func (c *rawClient) Close() error                { return c.c.Close() }

type rawLocker struct {
	c     *redis.Client
	key   string
	token string
	timer *time.Timer
}

func (l *rawLocker) Lock(ctx context.Context) error {
	token := newToken()
	for {
		ok, err := l.c.SetNX(ctx, l.key, token, ttl).Result()
		if err != nil {
			return err
		}
		if ok {
			l.token = token
			return nil
		}
		if err := sleep(ctx, &l.timer, retryEvery); err != nil {
			return err
		}
	}
}

func (l *rawLocker) Unlock(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, l.c, []string{l.key}, l.token).Int64()
	if err == nil && n != 1 {
		err = errors.New("raw: unlock: not held")
	}
	return err
}

// --- raw-pass: raw plus quorumsync's local pass between the goroutines of one client ---

// passBudget is how long after Redis's grant raw-pass may pass the lock on locally: quorumsync's
// default handoff budget (lease.WithHandoff).
const passBudget = time.Millisecond

// rawPassAdapter is raw with the local handoff rule of quorumsync (package lease, "Local
// handoff"): a client's goroutines that want one key queue FIFO at the client's gate for it, and
// only the head talks to Redis. An Unlock with a goroutine waiting passes the Redis lock to it,
// with no request, if less than passBudget has gone by since Redis's grant reached the client and
// at least half the TTL of validity is left; otherwise it releases on Redis, and the next waiter
// polls every 1ms as raw does. So contended rows can compare quorumsync with a poller that
// passes as it does.
type rawPassAdapter struct{}

func (rawPassAdapter) Name() string { return "raw-pass" }

func (rawPassAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("raw-pass: single node only, got %d", len(addrs))
	}
	return &rawPassClient{c: redis.NewClient(redisOptions(addrs[0])), gates: map[string]*passGate{}}, nil
}

type rawPassClient struct {
	c     *redis.Client
	mu    sync.Mutex
	gates map[string]*passGate // per key, for the client's life (it runs one-key scenarios)
}

func (c *rawPassClient) NewLocker(key string) Locker {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gates[key] == nil {
		c.gates[key] = &passGate{}
	}
	return &rawPassLocker{rawLocker: rawLocker{c: c.c, key: key}, g: c.gates[key]}
}

func (c *rawPassClient) Close() error { return c.c.Close() }

// passGate is a client's queue for one key. Its holder (busy) holds the key on Redis or polls for
// it; the others wait in order, each on a channel that says whether it gets the lock held (true)
// or only the gate (false: poll Redis).
type passGate struct {
	mu    sync.Mutex
	busy  bool
	queue []chan bool
	// The held lock, written by the gate's holder: its token, when Redis's grant reached us, and
	// its validity (counted from the start of the Lock whose SET NX won: raw-pass's polls do not
	// say which SET it was, so it may count a little less validity than it has, never more).
	token         string
	granted, till time.Time
}

type rawPassLocker struct {
	rawLocker // SET NX every 1ms, compare-and-delete
	g         *passGate
}

func (l *rawPassLocker) Lock(ctx context.Context) error {
	g := l.g
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return l.poll(ctx)
	}
	ch := make(chan bool, 1)
	g.queue = append(g.queue, ch)
	g.mu.Unlock()
	select {
	case held := <-ch:
		if !held {
			return l.poll(ctx)
		}
		l.token = g.token
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.queue, ch); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	// Handed the gate as ctx ended: hand it on, as if it had been taken and given back.
	if <-ch {
		l.token = g.token
		return errors.Join(ctx.Err(), l.Unlock(context.WithoutCancel(ctx)))
	}
	g.handOn()
	return ctx.Err()
}

// poll takes the key on Redis as raw does, for the gate's holder.
func (l *rawPassLocker) poll(ctx context.Context) error {
	began := time.Now()
	if err := l.rawLocker.Lock(ctx); err != nil {
		l.g.handOn()
		return err
	}
	l.g.token, l.g.granted, l.g.till = l.token, time.Now(), began.Add(ttl)
	return nil
}

func (l *rawPassLocker) Unlock(ctx context.Context) error {
	if l.g.pass() {
		return nil
	}
	err := l.rawLocker.Unlock(ctx)
	l.g.handOn()
	return err
}

// pass gives the held lock to the first waiter if the budget allows, and reports whether it did.
func (g *passGate) pass() bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 || now.Sub(g.granted) >= passBudget || g.till.Sub(now) < ttl/2 {
		return false
	}
	g.first() <- true
	return true
}

// handOn gives the gate, without the lock, to the first waiter, or frees it.
func (g *passGate) handOn() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.busy = false
		return
	}
	g.first() <- false
}

// first takes the first waiter off the queue; g.mu must be held.
func (g *passGate) first() chan bool {
	ch := g.queue[0]
	g.queue = g.queue[1:]
	return ch
}

// sleep waits d or until ctx ends, reusing *t.
func sleep(ctx context.Context, t **time.Timer, d time.Duration) error {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-ctx.Done():
		(*t).Stop()
		return ctx.Err()
	case <-(*t).C:
		return nil
	}
}

// --- raw-quorum: the same, fanned out to N nodes (Redlock reduced to its core) ---

// drift is Redlock's clock-drift allowance, the same figure quorumsync uses.
const drift = ttl/100 + 2*time.Millisecond

// rawQuorumAdapter sends SET NX PX to every node in parallel (a goroutine per node), holds the lock
// when a majority said yes within the validity window, otherwise releases on every node (a node
// that timed out may have set the key) and retries after 1ms. Unlock releases on every node in
// parallel. The per-node bound is the clients' socket timeouts (go-redis default 3s < TTL/3).
type rawQuorumAdapter struct{}

func (rawQuorumAdapter) Name() string { return "raw-quorum" }

func (rawQuorumAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	return &rawQuorumClient{cs: newClients(addrs)}, nil
}

type rawQuorumClient struct{ cs []*redis.Client }

func (c *rawQuorumClient) NewLocker(key string) Locker {
	return &rawQuorumLocker{cs: c.cs, key: key, vote: make([]int8, len(c.cs))}
}
func (c *rawQuorumClient) Close() error { return closeClients(c.cs) }

type rawQuorumLocker struct {
	cs    []*redis.Client
	key   string
	token string
	vote  []int8 // per node, reused by every fan-out of this locker
	timer *time.Timer
}

const (
	voteNo int8 = iota
	voteYes
	voteUnknown
)

func (l *rawQuorumLocker) Lock(ctx context.Context) error {
	token := newToken()
	quorum := len(l.cs)/2 + 1
	for {
		start := time.Now()
		l.fanout(func(i int, c *redis.Client) {
			ok, err := c.SetNX(ctx, l.key, token, ttl).Result()
			switch {
			case err != nil:
				l.vote[i] = voteUnknown
			case ok:
				l.vote[i] = voteYes
			default:
				l.vote[i] = voteNo
			}
		})
		yes, unknown := 0, 0
		for _, v := range l.vote {
			switch v {
			case voteYes:
				yes++
			case voteUnknown:
				unknown++
			}
		}
		if yes >= quorum && time.Since(start) < ttl-drift {
			l.token = token
			return nil
		}
		// A node that said yes, or did not answer, may hold our token: release everywhere.
		if yes+unknown > 0 {
			l.release(context.WithoutCancel(ctx), token)
		}
		if err := sleep(ctx, &l.timer, retryEvery); err != nil {
			return err
		}
	}
}

func (l *rawQuorumLocker) Unlock(ctx context.Context) error {
	if n := l.release(ctx, l.token); n < len(l.cs)/2+1 {
		return fmt.Errorf("raw-quorum: unlock: released on %d of %d nodes", n, len(l.cs))
	}
	return nil
}

// release runs the compare-and-delete on every node and returns on how many it deleted the key.
func (l *rawQuorumLocker) release(ctx context.Context, token string) int {
	l.fanout(func(i int, c *redis.Client) {
		n, err := releaseScript.Run(ctx, c, []string{l.key}, token).Int64()
		l.vote[i] = voteNo
		if err == nil && n == 1 {
			l.vote[i] = voteYes
		}
	})
	n := 0
	for _, v := range l.vote {
		if v == voteYes {
			n++
		}
	}
	return n
}

// fanout calls f for every node, each in its own goroutine, and returns when all have returned.
func (l *rawQuorumLocker) fanout(f func(i int, c *redis.Client)) {
	if len(l.cs) == 1 {
		f(0, l.cs[0])
		return
	}
	var wg sync.WaitGroup
	wg.Add(len(l.cs))
	for i, c := range l.cs {
		go func() {
			defer wg.Done()
			f(i, c)
		}()
	}
	wg.Wait()
}

// --- raw-sem: the minimal correct single-node counting semaphore ---

// semAcquireScript takes ARGV[3] permits of a semaphore of capacity ARGV[2] in one step, or none.
// KEYS[1] is a sorted set of the permits held: one member per permit (token:i), scored by when it
// expires by the server's clock (TIME), so a holder that died gives its permits back within the
// TTL. ARGV[1] is the token, ARGV[4] the TTL in ms. It returns 1 when taken, 0 when too few are free.
var semAcquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local w = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) + w > tonumber(ARGV[2]) then return 0 end
local exp = now + tonumber(ARGV[4])
for i = 1, w do redis.call('ZADD', KEYS[1], exp, ARGV[1] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// rawSemAdapter is the semaphore baseline: semAcquireScript retried every 1ms, released with one
// ZREM of its own members. Two round trips per acquire+release, like raw; no queue, no wake-ups,
// no renewal. Its exclusive lock is a semaphore of capacity 1.
type rawSemAdapter struct{}

func (rawSemAdapter) Name() string { return "raw-sem" }

func (rawSemAdapter) NewClient(_ context.Context, addrs []string) (Client, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("raw-sem: single node only, got %d", len(addrs))
	}
	return &rawSemClient{c: redis.NewClient(redisOptions(addrs[0]))}, nil
}

type rawSemClient struct{ c *redis.Client }

func (c *rawSemClient) NewLocker(key string) Locker { return c.newLocker(key, 1, 1) }
func (c *rawSemClient) Close() error                { return c.c.Close() }

func (c *rawSemClient) NewSharedLocker(key string, acc access) (Locker, bool) {
	if acc.mode != permits {
		return nil, false
	}
	return c.newLocker(key, acc.capacity, acc.weight), true
}

func (c *rawSemClient) newLocker(key string, capacity, weight int64) *rawSemLocker {
	l := &rawSemLocker{c: c.c, key: []string{key}, weight: weight, members: make([]any, weight)}
	l.args = []any{"", capacity, weight, ttl.Milliseconds()}
	return l
}

type rawSemLocker struct {
	c       *redis.Client
	key     []string
	weight  int64
	args    []any // token, capacity, weight, TTL ms
	members []any // the members of the permits held: token:1 … token:weight
	timer   *time.Timer
}

func (l *rawSemLocker) Lock(ctx context.Context) error {
	token := newToken()
	l.args[0] = token
	for {
		n, err := semAcquireScript.Run(ctx, l.c, l.key, l.args...).Int64()
		if err != nil {
			return err
		}
		if n == 1 {
			for i := range l.members {
				l.members[i] = token + ":" + strconv.Itoa(i+1)
			}
			return nil
		}
		if err := sleep(ctx, &l.timer, retryEvery); err != nil {
			return err
		}
	}
}

func (l *rawSemLocker) Unlock(ctx context.Context) error {
	n, err := l.c.ZRem(ctx, l.key[0], l.members...).Result()
	if err == nil && n != l.weight {
		err = fmt.Errorf("raw-sem: release: %d of %d permits held", n, l.weight)
	}
	return err
}
