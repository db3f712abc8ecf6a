package main

import (
	"cmp"
	"slices"
	"time"
)

// seqStats is what the acquisitions of one contended name, gathered from every process, say.
type seqStats struct {
	InWindow  int           // acquisitions whose Lock returned inside the window
	Releases  int           // Unlocks called inside the window
	PerLocker []int         // acquisitions inside the window, per locker
	Ever      int           // lockers that acquired at least once in the whole run
	Wakes     []int64       // handoff latencies in the window, ns (see analyze)
	Waits     []int64       // Lock call durations of the window's acquisitions, ns
	Overlaps  int           // acquisitions that began before an earlier one's Unlock (whole run)
	OverlapNs int64         // the largest such overlap
	Span      time.Duration // window length
}

// analyze sorts the acquisitions by when Lock returned and reads:
//   - overlaps: an acquisition whose Lock returned before the latest earlier Unlock was called —
//     two holders at once, on the one system-wide clock;
//   - wake-up latency: for each acquisition by another locker than the previous holder's that was
//     already waiting (its Lock began before that Unlock), the time from the previous holder's
//     Unlock call to this Lock's return;
//   - counts inside [from, to].
func analyze(all [][4]int64, lockers int, from, to int64) seqStats {
	s := seqStats{PerLocker: make([]int, lockers), Span: time.Duration(to - from)}
	acqs := slices.Clone(all)
	slices.SortFunc(acqs, func(a, b [4]int64) int { return cmp.Compare(a[2], b[2]) })
	ever := make([]bool, lockers)
	var maxR int64
	for i, a := range acqs {
		w, t0, t1, r := int(a[0]), a[1], a[2], a[3]
		ever[w] = true
		if i > 0 && t1 < maxR {
			s.Overlaps++
			s.OverlapNs = max(s.OverlapNs, maxR-t1)
		}
		if r >= from && r <= to {
			s.Releases++
		}
		if t1 >= from && t1 <= to {
			s.InWindow++
			s.PerLocker[w]++
			s.Waits = append(s.Waits, t1-t0)
			if i > 0 {
				prev := acqs[i-1]
				if int(prev[0]) != w && t0 < prev[3] {
					s.Wakes = append(s.Wakes, t1-prev[3])
				}
			}
		}
		maxR = max(maxR, r)
	}
	for _, e := range ever {
		if e {
			s.Ever++
		}
	}
	return s
}

// pct returns the p-th percentile (0..100) of xs (nearest rank); 0 for none.
func pct(xs []int64, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return time.Duration(s[i])
}

func minMax(xs []int) (int, int) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}
