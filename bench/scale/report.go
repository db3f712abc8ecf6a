package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// grow formats a series as "a → b → c (×b/a, ×c/b)".
func grow(vals []float64, f func(float64) string) string {
	var parts, factors []string
	for i, v := range vals {
		parts = append(parts, f(v))
		if i > 0 {
			factors = append(factors, factor(vals[i-1], v))
		}
	}
	s := strings.Join(parts, " → ")
	if len(factors) > 0 {
		s += " (" + strings.Join(factors, ", ") + ")"
	}
	return s
}

func factor(prev, v float64) string {
	if prev == 0 {
		return "×—"
	}
	return fmt.Sprintf("×%s", trim(v/prev))
}

// trim formats x with 3 significant digits, without trailing zeros.
func trim(x float64) string {
	var s string
	switch a := math.Abs(x); {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		s = fmt.Sprintf("%.1f", x)
	case a >= 0.1 || a == 0:
		s = fmt.Sprintf("%.2f", x)
	default:
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// cell formats a value with its growth from the previous row's.
func cell(vals []float64, i int, f func(float64) string) string {
	if i == 0 {
		return f(vals[i])
	}
	return f(vals[i]) + " (" + factor(vals[i-1], vals[i]) + ")"
}

func num(x float64) string { return trim(x) }
func count(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	// thousands separators
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
func bytesF(x float64) string { return trim(x) + " B" }
func dur(x float64) string    { return fmtDur(time.Duration(x)) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return trim(d.Seconds()) + "s"
	case d >= time.Millisecond:
		return trim(float64(d)/1e6) + "ms"
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

func series[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// commit is the library's commit and whether its working tree differs from it.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	c := strings.TrimSpace(string(out))
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return c
	}
	st, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "status", "--porcelain").Output()
	if err != nil {
		return c
	}
	var all, lib int
	// (Not TrimSpace: a porcelain line starts with a space when only the working tree changed.)
	for _, l := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
		if len(l) < 4 {
			continue
		}
		all++
		if !strings.HasPrefix(l[3:], "bench/") {
			lib++
		}
	}
	if all == 0 {
		return c + " (clean)"
	}
	return fmt.Sprintf("%s, dirty: %d changed or new files, %d of them outside bench/ (the run measured the working tree)", c, all, lib)
}

func report(cfg config, res results, took time.Duration) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# quorumsync: how cost grows\n\n")
	w("- Date: %s\n", time.Now().Format("2006-01-02 15:04:05 MST"))
	w("- CPU: %s; nproc %d\n", cpuModel(), runtime.NumCPU())
	w("- Go: %s; %s\n", runtime.Version(), redisVersion())
	w("- Command: `go run ./scale%s` (in bench/); took %s\n", argsString(), fmtDur(took.Round(time.Second)))
	w("- Library commit: %s\n", commit())
	w("- All servers: redis-server on loopback, `--save \"\" --appendonly no --maxclients 20000`; clients use CLOCK_MONOTONIC, which every process of the run shares.\n\n")
	w("Each figure is followed by its growth from the previous size (×). Only this machine's ratios are meant to be compared.\n\n")
	if len(res.Held) > 0 {
		heldReport(w, cfg, res.Held)
	}
	if len(res.Waiters) > 0 {
		waitersReport(w, res.Waiters)
	}
	if len(res.Contend) > 0 {
		contendReport(w, cfg, res.Contend)
	}
	if len(res.Cluster) > 0 {
		clusterReport(w, res.Cluster)
	}
	if bad := invariants(res); len(bad) > 0 {
		w("## INVARIANTS FAILED\n\n")
		for _, s := range bad {
			w("- %s\n", s)
		}
		w("\n")
	}
	return b.String()
}

func argsString() string {
	if len(os.Args) <= 1 {
		return ""
	}
	return " " + strings.Join(os.Args[1:], " ")
}

func heldReport(w func(string, ...any), cfg config, rs []heldResult) {
	tick := cfg.HeldTTL / 3
	w("## 1. Held leases per process\n\n")
	w("One process, one `lease.Quorum` over one redis-server, TTL %s (renewal tick TTL/3 = %s); `mutex.New(q, name).Obtain` on distinct names, 64 at a time; "+
		"then %d ticks to settle and %d ticks measured; then every lease released.\n\n", fmtDur(cfg.HeldTTL), fmtDur(tick), cfg.Settle, cfg.Ticks)
	w("| held leases | round trips / node / tick | ceil(leases/2000) | renewals per tick ÷ leases | largest pipeline | mean pipeline time | renewal batches per tick | longest batch: window / whole row | client heap / lease | Redis used_memory / name | keys / name | MEMORY USAGE of a name's keys | Redis CPU / tick | client CPU / tick | acquire all | release all | lost | keys left |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	trips := series(rs, heldResult.TripsPerTick)
	cb := series(rs, func(r heldResult) float64 { return r.ClientBytes })
	rb := series(rs, func(r heldResult) float64 { return r.RedisBytes })
	rcpu := series(rs, func(r heldResult) float64 { return float64(r.RedisCPU) })
	ccpu := series(rs, func(r heldResult) float64 { return float64(r.ClientCPU) })
	acq := series(rs, func(r heldResult) float64 { return float64(r.Acquire) })
	rel := series(rs, func(r heldResult) float64 { return float64(r.Release) })
	for i, r := range rs {
		w("| %s | %s | %d | %s | %d | %s | %s | %s / %s | %s | %s | %s | %d B | %s | %s | %s | %s | %d | %d |\n",
			count(float64(r.Leases)), cell(trips, i, num), int(math.Ceil(float64(r.Leases)/2000)), trim(r.RenewedPerTick()), r.MaxPipe, fmtDur(r.PipeMean),
			trim(float64(r.Batches)/r.Ticks), fmtDur(r.BatchMax), fmtDur(r.BatchMaxAll),
			cell(cb, i, bytesF), cell(rb, i, bytesF), trim(r.KeysPerName), r.KeyUsage,
			cell(rcpu, i, dur), cell(ccpu, i, dur), cell(acq, i, dur), cell(rel, i, dur), r.Lost, r.Left)
	}
	w("\n- held leases: %s\n", grow(series(rs, func(r heldResult) float64 { return float64(r.Leases) }), count))
	w("- round trips per node per tick: %s\n", grow(trips, num))
	w("- client heap per lease: %s; Redis memory per name: %s\n", grow(cb, bytesF), grow(rb, bytesF))
	// Reading.
	tripsOK := true
	for i, r := range rs {
		if trips[i] > math.Ceil(float64(r.Leases)/2000)*1.25+0.5 {
			tripsOK = false
		}
	}
	flat := func(xs []float64) (bool, float64) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range xs {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		return lo > 0 && hi/lo <= 1.5, hi / lo
	}
	cOK, cSpread := flat(cb)
	rOK, rSpread := flat(rb)
	w("\n**Reading:** round trips %s (measured %s vs ceil(leases/2000) %s); client memory per lease %s (largest/smallest %s×); Redis memory per name %s (%s×).\n\n",
		verdict(tripsOK, "grow with leases/2000 and no faster", "grow faster than leases/2000"),
		grow(trips, num), grow(series(rs, func(r heldResult) float64 { return math.Ceil(float64(r.Leases) / 2000) }), num),
		verdict(cOK, "is flat", "is NOT flat"), trim(cSpread), verdict(rOK, "is flat", "is NOT flat"), trim(rSpread))
}

func verdict(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func waitersReport(w func(string, ...any), rs []waitersResult) {
	w("## 2. Waiters on one name across processes\n\n")
	w("Each waiter is a `lease.Quorum` of its own (own go-redis client, PoolSize 2, own pub/sub connection) with one goroutine looping " +
		"`Lock` → hold → `Unlock` on the one name; the waiters are spread over up to 8 OS processes (this command re-executed). " +
		"Figures are counted in a window after a warm-up (the start burst, when every waiter queues at once, is left out). " +
		"A handoff is an acquisition in the window. Wake-up latency: from the previous holder's `Unlock` call to the next `Lock`'s return in a waiter that was already waiting, " +
		"on CLOCK_MONOTONIC, which all processes share.\n\n")
	w("| waiters | processes | TTL | hold | window | handoffs | client round trips / handoff | server commands / handoff | PUBLISH / release | subscribers on the channel | server bytes out / handoff | Redis CPU / handoff | wake-up p50 | wake-up p99 | wake-up max | fewest / most per waiter in window | waiters served in run | connections opened in window | Lock/Unlock errors | two holders at once |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	trips := series(rs, func(r waitersResult) float64 { return r.per(r.Trips, r.Acqs) })
	cmds := series(rs, func(r waitersResult) float64 { return r.per(r.Commands, r.Acqs) })
	pubs := series(rs, func(r waitersResult) float64 { return r.per(r.Publishes, r.Releases) })
	subs := series(rs, func(r waitersResult) float64 { return float64(r.Subscribers) })
	bytesOut := series(rs, func(r waitersResult) float64 { return r.per(r.BytesOut, r.Acqs) })
	p99 := series(rs, func(r waitersResult) float64 { return float64(r.Wake99) })
	rcpu := series(rs, func(r waitersResult) float64 { return r.perDur(r.RedisCPU, r.Acqs) })
	for i, r := range rs {
		wake := func(d time.Duration) string {
			if r.Wakes == 0 {
				return "— (no waiter)"
			}
			return fmtDur(d)
		}
		p99c := wake(r.Wake99)
		if r.Wakes > 0 && i > 0 && rs[i-1].Wakes > 0 {
			p99c = cell(p99, i, dur)
		}
		w("| %s | %d | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d | %d of %d | %d | %d | %d |\n",
			count(float64(r.Waiters)), r.Procs, fmtDur(r.TTL), fmtDur(r.Hold), fmtDur(r.Span), r.Acqs,
			cell(trips, i, num), cell(cmds, i, num), cell(pubs, i, num), cell(subs, i, num), cell(bytesOut, i, bytesF), cell(rcpu, i, dur),
			wake(r.Wake50), p99c, wake(r.WakeMax), r.Fewest, r.Most, r.Ever, r.Waiters, r.Conns, r.Errors, r.Violations+r.Overlaps)
	}
	w("\nServer commands per handoff by command (INFO commandstats; commands run inside scripts counted under their own names):\n\n")
	for _, r := range rs {
		w("- %s waiters: %s\n", count(float64(r.Waiters)), r.breakdown())
	}
	for _, r := range rs {
		if r.Errors > 0 {
			w("- %s waiters: %d Lock/Unlock errors; the first: %s\n", count(float64(r.Waiters)), r.Errors, r.FirstErr)
		}
	}
	w("\n- waiters: %s\n", grow(series(rs, func(r waitersResult) float64 { return float64(r.Waiters) }), count))
	w("- client round trips per handoff: %s\n", grow(trips, num))
	w("- server commands per handoff: %s\n", grow(cmds, num))
	w("- PUBLISH per release: %s; subscribers of the name's channel: %s; server bytes out per handoff: %s\n", grow(pubs, num), grow(subs, num), grow(bytesOut, bytesF))
	// Reading: step by step between the contended sizes (more than one waiter); one waiter is the
	// uncontended path, which costs less.
	var cont []waitersResult
	for _, r := range rs {
		if r.Waiters > 1 {
			cont = append(cont, r)
		}
	}
	if len(cont) < 2 {
		w("\n")
		return
	}
	var steps []string
	allOK := true
	for i := 1; i < len(cont); i++ {
		f, l := cont[i-1], cont[i]
		cf, cl := f.per(f.Commands, f.Acqs), l.per(l.Commands, l.Acqs)
		tf, tl := f.per(f.Trips, f.Acqs), l.per(l.Trips, l.Acqs)
		ok := cl <= 1.25*cf && tl <= 1.25*tf
		allOK = allOK && ok
		steps = append(steps, fmt.Sprintf("%s → %s waiters: commands %s → %s, round trips %s → %s (%s)",
			count(float64(f.Waiters)), count(float64(l.Waiters)), trim(cf), trim(cl), trim(tf), trim(tl), verdict(ok, "O(1)", "NOT O(1)")))
	}
	pubOK := true
	for _, r := range cont {
		if r.per(r.Publishes, r.Releases) > 1.1 {
			pubOK = false
		}
	}
	f, l := cont[0], cont[len(cont)-1]
	waiterGrowth := float64(l.Waiters) / float64(f.Waiters)
	byteGrowth := l.per(l.BytesOut, l.Acqs) / f.per(f.BytesOut, f.Acqs)
	cpuGrowth := l.perDur(l.RedisCPU, l.Acqs) / f.perDur(f.RedisCPU, f.Acqs)
	w("\n**Reading:** commands and round trips per handoff: %s; the goal %s. PUBLISH per release %s. ",
		strings.Join(steps, "; "), verdict(allOK, "holds", "does NOT hold at every size"),
		verdict(pubOK, "is 1 at every contended size: O(1) messages published", "exceeds 1.1 somewhere"))
	perChannel := float64(l.Subscribers) / math.Max(float64(l.Channels), 1)
	w("A release publishes on the channel of the served waiter's process alone (%s channels, %s subscribers at %s waiters: %s per channel, since here each process holds %s waiters' quorums): from %s to %s waiters (×%s) the server's bytes out per handoff grow ×%s and its CPU per handoff ×%s, so %s. ",
		count(float64(l.Channels)), count(float64(l.Subscribers)), count(float64(l.Waiters)), trim(perChannel), trim(float64(l.Waiters)/math.Max(float64(l.Procs), 1)),
		count(float64(f.Waiters)), count(float64(l.Waiters)), trim(waiterGrowth), trim(byteGrowth), trim(cpuGrowth),
		verdict(byteGrowth > math.Sqrt(waiterGrowth),
			"deliveries grow with the waiters that share the served waiter's process (every quorum of that process receives the message and all but the served waiter's discard it); with one waiter per process, as in a deployment, one subscriber receives each",
			"there is no herd in the deliveries either"))
	// A waiter's sleep is bounded by min(the holder's PTTL, TTL/2) minus up to 10% jitter (lease doc,
	// Waiting): with holds far shorter than the TTL, each waiter re-checks about every 0.95·TTL/2,
	// whatever the handoff rate.
	rate := float64(l.Acqs) / l.Span.Seconds()
	rechecks := float64(l.Waiters) / (0.95 * l.TTL.Seconds() / 2)
	w("At %s waiters the name changed hands %s times a second; their bounded sleeps (at most TTL/2 = %s) alone add about %s re-check requests a second (an estimate from the documented bound, not a count), %s per handoff. Wake-up p99 %s → %s.\n\n",
		count(float64(l.Waiters)), trim(rate), fmtDur(l.TTL/2), count(rechecks), trim(rechecks/rate), fmtDur(f.Wake99), fmtDur(l.Wake99))
}

func contendReport(w func(string, ...any), cfg config, rs []contendResult) {
	w("## 3. Contending processes on one name\n\n")
	w("Each process: one `lease.Quorum` (go-redis default pool) and %d goroutines, each with its own `mutex.New(q, name)`, looping `Lock` → 1ms hold → `Unlock`; "+
		"the raw baseline: the same processes and goroutines running `SET key token NX PX 10000` retried every 1ms, unlocked by a compare-and-delete script. "+
		"%d round(s) of %s (after %s warm-up) per lock per size, the two locks back to back in alternating order; ops/s is the median of the rounds, "+
		"worst wait the longest single `Lock` call of any round.\n\n", cfg.ContendG, cfg.Rounds, fmtDur(cfg.ContendWindow), fmtDur(cfg.ContendWarm))
	w("| processes × goroutines | quorumsync acq/s | raw acq/s | quorumsync ÷ raw | quorumsync worst wait | raw worst wait | quorumsync p99 wait | raw p99 wait | round trips / acq (qs, raw) | fewest / most per goroutine (qs, last round) | Lock/Unlock errors (qs, raw) | two holders at once |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	qs := series(rs, func(c contendResult) float64 { return c.median("quorumsync") })
	raw := series(rs, func(c contendResult) float64 { return c.median("raw") })
	qw := series(rs, func(c contendResult) float64 { w, _ := c.worst("quorumsync"); return float64(w) })
	rw := series(rs, func(c contendResult) float64 { w, _ := c.worst("raw"); return float64(w) })
	for i, c := range rs {
		_, q99 := c.worst("quorumsync")
		_, r99 := c.worst("raw")
		last := c.Runs["quorumsync"][len(c.Runs["quorumsync"])-1]
		viol := c.sum("quorumsync", func(r contendRun) int { return r.Violations + r.Overlaps }) + c.sum("raw", func(r contendRun) int { return r.Violations + r.Overlaps })
		errs := func(r contendRun) int { return r.Errors }
		w("| %d × %d | %s | %s | %s | %s | %s | %s | %s | %s, %s | %d / %d | %d, %d | %d |\n", c.Procs, c.Goroutines,
			cell(qs, i, count), cell(raw, i, count), trim(qs[i]/raw[i]), cell(qw, i, dur), cell(rw, i, dur), fmtDur(q99), fmtDur(r99),
			trim(c.tripsPerAcq("quorumsync")), trim(c.tripsPerAcq("raw")), last.Fewest, last.Most,
			c.sum("quorumsync", errs), c.sum("raw", errs), viol)
	}
	w("\n- quorumsync acq/s: %s\n- raw acq/s: %s\n- quorumsync worst wait: %s\n- raw worst wait: %s\n", grow(qs, count), grow(raw, count), grow(qw, dur), grow(rw, dur))
	minRatio := math.Inf(1)
	for i := range rs {
		minRatio = math.Min(minRatio, qs[i]/raw[i])
	}
	w("\n**Reading:** quorumsync's throughput is %s× to %s× the raw lock's across sizes (lowest %s×); from %d to %d processes it goes ×%s while the raw lock's goes ×%s; its worst wait goes %s → %s.\n\n",
		trim(minRatio), trim(maxRatio(qs, raw)), trim(minRatio), rs[0].Procs, rs[len(rs)-1].Procs, trim(qs[len(qs)-1]/qs[0]), trim(raw[len(raw)-1]/raw[0]),
		fmtDur(time.Duration(qw[0])), fmtDur(time.Duration(qw[len(qw)-1])))
}

func maxRatio(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, a[i]/b[i])
	}
	return m
}

func clusterReport(w func(string, ...any), rs []clusterResult) {
	w("## 4. A Redis Cluster as one node\n\n")
	w("A cluster of 1, 2 and 3 masters (no replicas; slots split evenly with CLUSTER ADDSLOTSRANGE), given to `lease.NewQuorum` as one `redis.ClusterClient`; "+
		"%d goroutines `Lock` + `Unlock` %s distinct names once each. Commands per shard from INFO commandstats (script-internal commands included). "+
		"On 2 cores throughput cannot grow with shards (every shard and the client share them); the spread shows that it would.\n\n", rs[0].Workers, count(float64(rs[0].Names)))
	w("| shards | lock+unlock / s | server commands per lock+unlock | EVALSHA per lock+unlock | share of commands per shard | largest deviation from an even share | keys left |\n")
	w("|---:|---:|---:|---:|---|---:|---:|\n")
	ops := series(rs, clusterResult.ops)
	devs := make([]float64, len(rs))
	for i, r := range rs {
		var shares []string
		even := 100 / float64(r.Shards)
		for _, s := range r.shares() {
			shares = append(shares, fmt.Sprintf("%.1f%%", s))
			devs[i] = math.Max(devs[i], math.Abs(s-even))
		}
		var ev int64
		for _, e := range r.EvalSHA {
			ev += e
		}
		w("| %d | %s | %s | %s | %s | %.1f points | %d |\n", r.Shards, cell(ops, i, count), trim(float64(r.total())/float64(r.Names)),
			trim(float64(ev)/float64(r.Names)), strings.Join(shares, " / "), devs[i], r.Left)
	}
	w("\n- lock+unlock per second: %s\n", grow(ops, count))
	ok := true
	for _, d := range devs {
		if d > 5 {
			ok = false
		}
	}
	w("\n**Reading:** the commands %s (largest deviation from an even share %.1f percentage points); commands per lock+unlock stay %s → %s.\n\n",
		verdict(ok, "spread evenly over the shards", "do NOT spread evenly"), slicesMax(devs),
		trim(float64(rs[0].total())/float64(rs[0].Names)), trim(float64(rs[len(rs)-1].total())/float64(rs[len(rs)-1].Names)))
}

func slicesMax(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}
