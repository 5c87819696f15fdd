package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPerlbalOracle runs each snippet through the real Perlbal (when
// PLB_PERLBAL_ORACLE names its binary) and through LoadPerlbal, and compares
// the first error message. Every snippet ends with an unknown command, so
// that a config Perlbal accepts fails there too.
func TestPerlbalOracle(t *testing.T) {
	bin := os.Getenv("PLB_PERLBAL_ORACLE")
	if bin == "" {
		t.Skip("PLB_PERLBAL_ORACLE not set")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nodes.txt"), []byte("10.1.0.10 # x\n#10.0.0.1\n 10.0.0.2:81\n"), 0o644)
	for i, snip := range oracleSnippets {
		conf := strings.ReplaceAll(snip, "$DIR", dir) + "\nboguscmd\n"
		file := filepath.Join(dir, "c.conf")
		os.WriteFile(file, []byte(conf), 0o644)
		out, _ := exec.Command(bin, "--config="+file).CombinedOutput()
		want := ""
		for _, l := range strings.Split(string(out), "\n") {
			if m, ok := strings.CutPrefix(l, "ERROR: "); ok {
				want = m
				break
			}
		}
		_, err := LoadPerlbal(file, func(k string) string { return os.Getenv(k) })
		got := ""
		var ce *Error
		if errors.As(err, &ce) {
			got = ce.Err.Error()
		} else if err != nil {
			got = err.Error()
		}
		if os.Getenv("PLB_ORACLE_VERBOSE") != "" {
			t.Logf("%d: %q", i, got)
		}
		if strings.HasPrefix(want, "Can't locate ") {
			want, _, _ = strings.Cut(want, " in @INC")
			want += " in @INC"
		}
		if got = perlbalView(got); got != want {
			t.Errorf("snippet %d:\n%s\nperlbal: %q\nplb:     %q", i, snip, want, got)
		}
	}
}

// plbRewords maps the messages plb words its own way, to say what to do,
// back to Perlbal's.
var plbRewords = []struct {
	plb     *regexp.Regexp
	perlbal string
}{
	{regexp.MustCompile(`^unknown plugin '([^']*)'.*$`), "Can't locate Perlbal/Plugin/$1.pm in @INC"},
	{regexp.MustCompile(`^nodefile '.*' not found$`), "File not found"},
	{regexp.MustCompile(`^parameter '([^']*)' takes (?:milli)?seconds .*$`), "Expecting integer value for parameter '$1'"},
	// plb's hints after Perlbal's message: the valid roles and balance
	// methods, the services there are.
	{regexp.MustCompile(`^(Role not valid for service \S+|Unknown balance method|service '[^']*' does not exist) .*$`), "$1"},
	{regexp.MustCompile(`^(Directory not found for service \S+) \(docroot .*\)$`), "$1"},
	{regexp.MustCompile(`^(Plugin \S+ not loaded; not registered for \S+\.) \(.*\)$`), "$1"},
}

// perlbalView is plb's message as Perlbal would write it: plb's own
// wording and hints (plbRewords) undone, and the roles only plb has
// (smtp_proxy, tcp_proxy) left out of "The 'k' option can only be set on a
// ... service", so that pool and connect_timeout, which plb also allows on
// them, still compare with Perlbal's one role.
func perlbalView(msg string) string {
	for _, r := range plbRewords {
		if r.plb.MatchString(msg) {
			return r.plb.ReplaceAllString(msg, r.perlbal)
		}
	}
	key, ok := strings.CutPrefix(msg, "The '")
	if !ok {
		return msg
	}
	key, _, _ = strings.Cut(key, "'")
	p, ok := lookupParam(key)
	if !ok || p.roleError().Error() != msg {
		return msg
	}
	var roles []string
	for r := range strings.SplitSeq(p.role, ",") {
		if r != RoleSMTPProxy && r != RoleTCPProxy {
			roles = append(roles, r)
		}
	}
	p.role = strings.Join(roles, ",")
	return p.roleError().Error()
}
