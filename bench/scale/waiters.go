package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Row 2: waiters on one name, each a lease.Quorum of its own (its own connections and pub/sub
// connection, so each is a waiter on the servers), spread over up to 8 OS processes; each loops
// Lock → hold → Unlock.

type waitersPlan struct {
	Waiters int
	TTL     time.Duration
	Hold    time.Duration
	Warm    time.Duration // from the start to the window
	Window  time.Duration // the window lasts at least this long, and until every waiter has acquired once
	MaxWin  time.Duration // … but no longer than this
}

type waitersResult struct {
	waitersPlan
	Procs       int
	Acqs        int // acquisitions in the window
	Releases    int
	Trips       int64            // client round trips in the window, all processes
	Commands    int64            // server commands in the window, script-internal ones included
	PerCommand  map[string]int64 // … by command
	Publishes   int64
	Subscribers int64         // on the name's channels, sampled mid-window
	Channels    int           // the name's wake-up channels (one per waiting process), sampled with them
	BytesOut    int64         // total_net_output_bytes of the server in the window
	Conns       int64         // connections the server accepted in the window (reconnections)
	RedisCPU    time.Duration // the server's CPU time in the window
	Wake50      time.Duration
	Wake99      time.Duration
	WakeMax     time.Duration
	Wakes       int
	Fewest      int
	Most        int
	Ever        int // waiters that acquired at least once in the run
	Violations  int // shm: two holders at once
	Overlaps    int // timestamps: two holders at once
	OverlapNs   int64
	Errors      int
	FirstErr    string
	Left        int // keys of the name left at the end
	Setup       time.Duration
	Timeline    []int         // acquisitions per 500ms from the start
	Span        time.Duration // the window's actual length
}

func (r waitersResult) perDur(d time.Duration, n int) float64 { return r.per(int64(d), n) }

func (r waitersResult) per(x int64, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(x) / float64(n)
}

// spread splits lockers quorums over procs processes.
func spread(base childSpec, quorums, procs int) []childSpec {
	var specs []childSpec
	first := 0
	for i := range procs {
		sp := base
		sp.Quorums = quorums / procs
		if i < quorums%procs {
			sp.Quorums++
		}
		if sp.Quorums == 0 {
			continue
		}
		sp.First = first
		first += sp.Quorums * sp.Goroutines
		specs = append(specs, sp)
	}
	return specs
}

func runWaiters(ctx context.Context, p *redisProc, pl waitersPlan) (waitersResult, error) {
	res := waitersResult{waitersPlan: pl, Procs: min(8, pl.Waiters)}
	sh, shmPath, done, err := newShm()
	if err != nil {
		return res, err
	}
	defer done()
	name := fmt.Sprintf("w%d", pl.Waiters)
	base := childSpec{Lib: "quorumsync", Addr: p.addr, Name: name, Goroutines: 1, PoolSize: 2,
		TTL: pl.TTL, Hold: pl.Hold, Shm: shmPath}
	specs := spread(base, pl.Waiters, res.Procs)
	var from, to int64
	var s0, s1 map[string]int64
	var b0, b1, c0, c1 int64
	var cpu0, cpu1 time.Duration
	t := time.Now()
	results, err := runChildren(ctx, specs, sh, func(start int64) error {
		res.Setup = time.Since(t)
		sleepUntil(ctx, start+int64(pl.Warm))
		var err error
		if s0, err = commandStats(ctx, p); err != nil {
			return err
		}
		if b0, err = infoInt(ctx, p, "stats", "total_net_output_bytes"); err != nil {
			return err
		}
		if c0, err = infoInt(ctx, p, "stats", "total_connections_received"); err != nil {
			return err
		}
		if cpu0, err = serverCPU(ctx, p); err != nil {
			return err
		}
		from = mono()
		sh.phase().Store(phaseWindow)
		sleepUntil(ctx, from+int64(pl.Window)/2)
		chans, err := p.ctl.PubSubChannels(ctx, "*").Result()
		if err != nil {
			return err
		}
		res.Channels = len(chans)
		if len(chans) > 0 {
			subs, err := p.ctl.PubSubNumSub(ctx, chans...).Result()
			if err != nil {
				return err
			}
			for _, n := range subs {
				res.Subscribers += n
			}
		}
		sleepUntil(ctx, from+int64(pl.Window))
		for int(sh.served().Load()) < pl.Waiters && mono()-from < int64(pl.MaxWin) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		to = mono()
		if s1, err = commandStats(ctx, p); err != nil {
			return err
		}
		if b1, err = infoInt(ctx, p, "stats", "total_net_output_bytes"); err != nil {
			return err
		}
		if c1, err = infoInt(ctx, p, "stats", "total_connections_received"); err != nil {
			return err
		}
		cpu1, err = serverCPU(ctx, p)
		return err
	})
	if err != nil {
		return res, err
	}
	var all [][4]int64
	for _, r := range results {
		all = append(all, r.Acqs...)
		res.Trips += r.Single + r.Pipes
		res.Errors += r.Errors
		if res.FirstErr == "" {
			res.FirstErr = r.FirstErr
		}
	}
	st := analyze(all, pl.Waiters, from, to)
	res.Span = time.Duration(to - from)
	// Acquisitions per 500ms from the start, for the progress line: shows a slow start or a stall.
	if len(all) > 0 {
		first := all[0][1]
		for _, a := range all {
			first = min(first, a[1])
		}
		hist := make([]int, int((time.Duration(to-first)+pl.Warm)/(500*time.Millisecond))+1)
		for _, a := range all {
			if i := int((a[2] - first) / int64(500*time.Millisecond)); i >= 0 && i < len(hist) {
				hist[i]++
			}
		}
		res.Timeline = hist
	}
	res.Acqs, res.Releases, res.Ever, res.Overlaps, res.OverlapNs = st.InWindow, st.Releases, st.Ever, st.Overlaps, st.OverlapNs
	res.Fewest, res.Most = minMax(st.PerLocker)
	res.Wakes = len(st.Wakes)
	res.Wake50, res.Wake99, res.WakeMax = pct(st.Wakes, 50), pct(st.Wakes, 99), pct(st.Wakes, 100)
	res.PerCommand = map[string]int64{}
	for k, v := range s1 {
		if d := v - s0[k]; d > 0 && !notCounted(k) {
			res.PerCommand[k] = d
			res.Commands += d
		}
	}
	res.Publishes = res.PerCommand["publish"]
	res.BytesOut = b1 - b0
	res.Conns = c1 - c0
	res.RedisCPU = cpu1 - cpu0
	res.Violations = int(sh.violations().Load())
	if res.Left, err = countKeys(ctx, p, "quorumsync:{"+name+"}*"); err != nil {
		return res, err
	}
	return res, nil
}

// breakdown formats the commands per handoff by command, largest first.
func (r waitersResult) breakdown() string {
	type kv struct {
		k string
		v int64
	}
	var list []kv
	for k, v := range r.PerCommand {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v || list[i].v == list[j].v && list[i].k < list[j].k })
	var parts []string
	for _, e := range list {
		if f := r.per(e.v, r.Acqs); f >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", e.k, f))
		}
	}
	return strings.Join(parts, ", ")
}
