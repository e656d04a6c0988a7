package energy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSpansAgainstBruteForce checks union and within against counting
// instants one by one, on random spans in a small range.
func TestSpansAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var lists []spans
		in := make([]bool, 80)
		for range rng.IntN(4) {
			var l spans
			for range rng.IntN(5) {
				a := rng.Int64N(60)
				b := a + rng.Int64N(8) - 1 // sometimes empty or reversed
				l = append(l, span{a, b})
				for i := a; i < b; i++ {
					in[i] = true
				}
			}
			lists = append(lists, l)
		}
		u := union(lists...)
		for i := 1; i < len(u); i++ {
			require.Less(t, u[i-1].b, u[i].a, "sorted, disjoint and not touching: %v", u)
		}
		a := rng.Int64N(80)
		b := a + rng.Int64N(80-a+1)
		var want int64
		for i := a; i < b; i++ {
			if in[i] {
				want++
			}
		}
		require.Equal(t, time.Duration(want), u.within(a, b), "%v within [%d, %d)", u, a, b)
		require.Equal(t, time.Duration(want), u.clip(a, b).within(0, 80))
	}
}
