package config

import (
	"strings"
	"testing"
)

func TestDbgSeeds(t *testing.T) {
	var seeds []string
	for _, s := range oracleSnippets {
		for l := range strings.SplitSeq(s, "\n") {
			seeds = append(seeds, l)
		}
	}
	for _, i := range []int{4, 228, 229, 253, 288, 298} {
		t.Logf("%d: %q", i, seeds[i])
	}
}
