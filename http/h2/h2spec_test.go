package h2

import (
	"os/exec"
	"strings"
	"testing"
)

// TestH2Spec runs h2spec (github.com/summerwind/h2spec, a tool of this
// module: go tool h2spec) against the codec over h2c with prior
// knowledge: every case of RFC 7540/9113 and RFC 7541 (HPACK) passes.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	addr := serve(t, echo{}, Limits{})
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("go", "tool", "h2spec", "-h", host, "-p", port, "-o", "2", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " 0 failed") {
		t.Fatalf("h2spec:\n%s", out)
	}
	t.Logf("%s", lastLines(string(out), 3))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
