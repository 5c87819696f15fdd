package config

import (
	"strings"
	"testing"
	"time"
)

// TestLargeInputsAreLinear guards against quadratic parsing of long lines.
func TestLargeInputsAreLinear(t *testing.T) {
	n := 200000
	for name, in := range map[string]string{
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
	} {
		start := time.Now()
		ParseWith("big", []byte(in), fakeOptions())
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: %v", name, d)
		}
	}
}
