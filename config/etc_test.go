package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/plb/plb/etc"
)

// TestEtcSamples parses every sample in etc/ and the embedded default, and
// checks that each round-trips through its TOML dump.
func TestEtcSamples(t *testing.T) {
	files, err := filepath.Glob("../etc/*")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Syntax{"default.toml": SyntaxTOML, "plb.toml": SyntaxTOML, "smtp.toml": SyntaxTOML, "perlbal.conf": SyntaxPerlbal, "plb.conf": SyntaxPLB}
	seen := 0
	for _, f := range files {
		syntax, ok := want[filepath.Base(f)]
		if !ok {
			if ext := filepath.Ext(f); ext == ".toml" || ext == ".conf" {
				t.Errorf("%s: a sample this test does not know", f)
			}
			continue
		}
		seen++
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := Detect(data); got != syntax {
			t.Errorf("%s: detected as %v, want %v", f, got, syntax)
		}
		c, err := Load(f, nil)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		assertRoundTrip(t, c)
		assertNoEphemeralPorts(t, f, c)
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d samples", seen, len(want))
	}
	c, err := Parse("(embedded default)", etc.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	assertNoEphemeralPorts(t, "(embedded default)", c)
	rp := c.Service("balancer")
	if rp == nil || rp.Listen != "127.0.0.1:8080" || c.Pool(rp.Pool).BalanceMethod != BalanceRoundRobin ||
		len(c.Pool(rp.Pool).Nodes) != 2 || c.Service("mgmt").Listen != "127.0.0.1:16000" {
		t.Errorf("embedded default: %s", c.MarshalTOML())
	}
	for _, name := range []string{"web1", "web2"} {
		if s := c.Service(name); s == nil || s.Docroot != "." || !s.DirIndexing || !s.Enabled {
			t.Errorf("embedded default: web server %s: %+v", name, s)
		}
	}
	c, err = Load("../etc/smtp.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Service("smtp"); s == nil || s.Role != RoleSMTPProxy || s.Listen != "127.0.0.1:2525" || !s.Enabled ||
		s.ClientIPForwarding != ForwardProxyV1 || len(c.Pool(s.Pool).Nodes) != 2 || c.Pool(s.Pool).Check != CheckSMTP {
		t.Errorf("smtp.toml: %s", c.MarshalTOML())
	}
}

// TestPlbTOMLMentionsEveryKey keeps the annotated sample complete.
func TestPlbTOMLMentionsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../etc/plb.toml")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"workers", "log_level", "log_file", "pidfile", "user", "group", "chroot_dir", "max_clients",
		"backlog", "max_connections", "aio_mode", "aio_threads", "nice_level", "track_obj", "crash_backtrace",
		"max_reproxy_connections", "load", "nodes", "balance_method", "server_retry", "timeout_cleanup", "nodefile",
		"role", "enabled", "plugins", "headers", "vhosts", "vpaths", "access_policy", "access", "redirects"}
	for _, p := range ServiceParams() {
		keys = append(keys, p.Name)
	}
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^#? ?"?` + regexp.QuoteMeta(k) + `"? = `).Match(data) {
			t.Errorf("etc/plb.toml does not mention %s", k)
		}
	}
}

// Linux's default ephemeral port range (net.ipv4.ip_local_port_range): a
// listener there may find its port taken by some outgoing connection on a
// busy machine. The demo's console once listened on 60000 and failed to
// bind so.
const ephemeralLow, ephemeralHigh = 32768, 60999

// assertNoEphemeralPorts fails for a service of a sample that listens on a
// port in the ephemeral range.
func assertNoEphemeralPorts(t *testing.T, name string, c *Config) {
	t.Helper()
	for _, s := range c.Services {
		if s.Listen == "" {
			continue
		}
		_, port := splitListen(s.Listen)
		if n, err := strconv.Atoi(port); err == nil && n >= ephemeralLow && n <= ephemeralHigh {
			t.Errorf("%s: service %s listens on %s, inside Linux's ephemeral port range %d-%d: pick a port below %d (Perlbal's samples use 16000)",
				name, s.Name, s.Listen, ephemeralLow, ephemeralHigh, ephemeralLow)
		}
	}
}
