package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/plb/plb/internal/version"
)

// TestVersionFlag: plb -v prints the one version (internal/version) that
// the log, the console, status.json and /metrics print too.
func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"-v", "--version"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, errOut.String())
		}
		if want := "plb " + version.Version + " ("; !strings.HasPrefix(out.String(), want) {
			t.Errorf("%s: %q, want it to start with %q", arg, out.String(), want)
		}
	}
}
