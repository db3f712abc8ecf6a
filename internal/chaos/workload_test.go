package chaos

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A multi workload draws claims of 1 to MaxNames distinct names of the pool, in every order, and
// single claims of one name in about SingleShare of them.
func TestMultiClaimsAreDistinctNamesInRandomOrders(t *testing.T) {
	c := &Client{Work: Workload{Names: []string{"hot", "a", "b", "c"}, HotShare: 0.3, Mode: Exclusive, MaxNames: 3, SingleShare: 0.25},
		Rng: rand.New(rand.NewPCG(1, 2))}
	sizes := map[int]int{}
	orders := map[string]bool{}
	singles := 0
	const n = 4000
	for range n {
		claim := c.pick()
		if len(claim.Names) == 0 {
			singles++
			if !slices.Contains(c.Work.Names, claim.Name) {
				t.Fatalf("single claim of %q, not in the pool", claim.Name)
			}
			continue
		}
		sizes[len(claim.Names)]++
		sorted := slices.Clone(claim.Names)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(claim.Names) {
			t.Fatalf("claim %v names a name twice", claim.Names)
		}
		if claim.Name != strings.Join(claim.Names, "+") {
			t.Errorf("claim label %q; want %q", claim.Name, strings.Join(claim.Names, "+"))
		}
		if len(claim.Names) == 2 {
			orders[strings.Join(claim.Names, "+")] = true
		}
	}
	if share := float64(singles) / n; share < 0.2 || share > 0.3 {
		t.Errorf("single claims %.2f of all; want about 0.25", share)
	}
	if sizes[1] == 0 || sizes[2] == 0 || sizes[3] == 0 || len(sizes) != 3 {
		t.Errorf("multi claims by size %v; want sizes 1, 2 and 3", sizes)
	}
	if !orders["a+b"] || !orders["b+a"] {
		t.Errorf("pairs drawn %v; want both orders of a and b among them", orders)
	}
}
