package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// conformanceFiles are Perlbal 1.80's own test files that plb passes.
var conformanceFiles = []string{"10-testharness.t", "13-server-tokens.t", "15-webserver.t", "30-reverseproxy.t",
	"75-plugin-include.t", "77-plugin-throttle.t", "78-plugin-xffextras.t"}

// TestPerlbalConformance runs Perlbal's own black-box tests against the plb
// binary through ../shared/conformance/perlbal/run. Outside CI it is
// skipped when the runner or its Perl dependencies are missing; under CI
// (CI=true) that is a failure, so a green CI always means they ran.
func TestPerlbalConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	runner := filepath.Join(root, "..", "shared", "conformance", "perlbal", "run")
	missing := ""
	if _, err := os.Stat(runner); err != nil {
		missing = "no conformance runner at " + runner
	} else if err := exec.Command("perl", "-MNet::Netmask", "-MLWP::UserAgent", "-MDanga::Socket", "-e1").Run(); err != nil {
		missing = "perl test dependencies missing (apt-get install perlbal libnet-netmask-perl libwww-perl)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	bin := filepath.Join(t.TempDir(), "plb")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(runner, append([]string{bin}, conformanceFiles...)...)
	cmd.Env = append(os.Environ(), "PERLBAL_T_TIMEOUT=300", "TMPDIR="+t.TempDir())
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("conformance run hung:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "Result: PASS") {
		t.Fatalf("Perlbal conformance failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
