package config

import (
	"strings"
	"testing"
	"time"
)

// TestLargeInputsAreLinear guards against quadratic parsing of long lines.
// It compares each input with one an eighth its size, parsed in the same
// run: linear work grows about 8 times, quadratic work 64 times. Ratios
// (not absolute times) keep it meaningful on a loaded machine.
func TestLargeInputsAreLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	inputs := func(n int) map[string]string {
		return map[string]string{
			"dotted toml key":  strings.Repeat("a.", n) + "b = 1\n",
			"long set":         "CREATE SERVICE a\nSET a." + strings.Repeat("x", n) + " = 1\n",
			"long server":      "SERVER " + strings.Repeat("=", n) + "\n",
			"many dollars":     "CREATE SERVICE a\nSET a.extra.x = " + strings.Repeat("$A$", n) + "\n",
			"many ${":          "CREATE SERVICE a\nSET a.extra.x = " + strings.Repeat("${", n) + "\n",
			"long vhost":       "LOAD vhosts\nCREATE SERVICE s\nSET s.role = selector\nVHOST s " + strings.Repeat("=", n) + " = s\n",
			"long header":      "CREATE SERVICE a\nHEADER a INSERT " + strings.Repeat(": ", n) + "\n",
			"spaces":           "CREATE SERVICE a\nSET a.extra.x = " + strings.Repeat(" \t", n) + "x\n",
			"nodefile-ish":     "[pool.p]\nnodes = [" + strings.Repeat(`"1.1.1.1",`, n/10) + "]\n",
			"many services":    strings.Repeat("[service.a]\n", 1) + strings.Repeat("x = 1\n", n/10),
			"plb":              "servers_ip " + strings.Repeat("10.0.0.1 ", n/10) + "\n",
			"detect long line": strings.Repeat("x", n) + "\n",
		}
	}
	const n = 200000
	small, big := inputs(n/8), inputs(n)
	parse := func(in string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for i := 0; i < 3; i++ { // best of 3 against scheduling noise
			start := time.Now()
			ParseWith("big", []byte(in), fakeOptions())
			best = min(best, time.Since(start))
		}
		return best
	}
	for name := range big {
		ts, tb := parse(small[name]), parse(big[name])
		if tb > 32*ts+50*time.Millisecond {
			t.Errorf("%s: %v for n=%d but %v for n=%d: worse than linear", name, ts, n/8, tb, n)
		}
	}
}
