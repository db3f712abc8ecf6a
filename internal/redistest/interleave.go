package redistest

import (
	"slices"
	"testing"
	"time"
)

// InterleavedMedians runs each of variants once per iteration of b's loop, in turn, so that a
// shared machine's noise hits them alike, and returns each one's median time in ns, in the order
// given: compare them as ratios. A variant's error fails b.
func InterleavedMedians(b *testing.B, variants ...func() error) []float64 {
	b.Helper()
	samples := make([][]time.Duration, len(variants))
	for b.Loop() {
		for v, f := range variants {
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			samples[v] = append(samples[v], time.Since(start))
		}
	}
	med := make([]float64, len(samples))
	for v, s := range samples {
		slices.Sort(s)
		med[v] = float64(s[len(s)/2].Nanoseconds())
	}
	return med
}
