package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// hist is a log-linear latency histogram: 32 sub-buckets per power of two of nanoseconds, so a
// quantile is off by at most ~3%. Recording never allocates, so the harness adds nothing to the
// allocations per operation it measures.
type hist struct {
	counts [64 << histSubBits]int64
	n      int64
	sum    int64 // ns
	max    int64 // ns
}

const histSubBits = 5

var inf = math.Inf(1)

func histIndex(v int64) int {
	if v < 1<<histSubBits {
		return int(max(v, 0))
	}
	k := bits.Len64(uint64(v)) - 1 // k >= histSubBits
	sub := (v >> (k - histSubBits)) & (1<<histSubBits - 1)
	return (k-histSubBits+1)<<histSubBits + int(sub)
}

// histValue is the midpoint of bucket i.
func histValue(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	k := i>>histSubBits + histSubBits - 1
	sub := int64(i & (1<<histSubBits - 1))
	lo := (int64(1)<<histSubBits | sub) << (k - histSubBits)
	width := int64(1) << (k - histSubBits)
	return lo + width/2
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

// histWire is a hist as a child process sends it to the harness: its totals and its non-empty
// buckets (a few dozen of the 2,048).
type histWire struct {
	N, Sum, Max int64
	Buckets     [][2]int64 // bucket index, count
}

func (h *hist) MarshalJSON() ([]byte, error) {
	w := histWire{N: h.n, Sum: h.sum, Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]int64{int64(i), c})
		}
	}
	return json.Marshal(w)
}

func (h *hist) UnmarshalJSON(b []byte) error {
	var w histWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = hist{n: w.N, sum: w.Sum, max: w.Max}
	for _, bc := range w.Buckets {
		if bc[0] < 0 || bc[0] >= int64(len(h.counts)) {
			return fmt.Errorf("hist: bucket %d out of range", bc[0])
		}
		h.counts[bc[0]] = bc[1]
	}
	return nil
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1), or 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// median returns the median of xs (the mean of the middle two for an even count); NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
