package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkConfig runs plb -n on a file holding conf and returns the exit
// status, standard output and standard error.
func checkConfig(t *testing.T, name, conf string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-n", "-c", path}, &out, &errOut)
	// Messages name the file by its path: the tests compare with "FILE".
	return code, out.String(), strings.ReplaceAll(errOut.String(), path, "FILE")
}

// wantLines fails unless stderr holds each line, and plb -n exited 1
// without printing the configuration.
func wantLines(t *testing.T, code int, stdout, stderr string, lines ...string) {
	t.Helper()
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q; want exit 1 and no output", code, stdout)
	}
	for _, l := range lines {
		if !strings.Contains(stderr, l+"\n") {
			t.Errorf("stderr lacks %q:\n%s", l, stderr)
		}
	}
}

// TestCheckChrootDirMissing: plb -n refuses a chroot_dir that does not
// exist, at the line that set it, in each syntax (the start would refuse
// it only after opening the log and binding nothing yet).
func TestCheckChrootDirMissing(t *testing.T) {
	const msg = ": chroot_dir /nonexistent/plb-jail: no such file or directory (create the directory, or fix chroot_dir)"
	for _, tc := range []struct{ name, conf, line string }{
		{"plb.toml", "[global]\nworkers = 1\nchroot_dir = \"/nonexistent/plb-jail\"\n\n[pool.web]\nnodes = [\"127.0.0.1:8081\"]\n\n" +
			"[service.proxy]\nrole = \"reverse_proxy\"\nlisten = \"127.0.0.1:0\"\npool = \"web\"\n", "3"},
		{"perlbal.conf", "SERVER workers = 1\nSERVER chroot_dir = /nonexistent/plb-jail\nCREATE POOL web\nPOOL web ADD 127.0.0.1:8081\n" +
			"CREATE SERVICE proxy\nSET role = reverse_proxy\nSET listen = 127.0.0.1:0\nSET pool = web\nENABLE proxy\n", "2"},
		{"plb.conf", "listen_ip 127.0.0.1\nlisten_port 8080\nservers_ip 127.0.0.1\nservers_port 8081\nchroot_dir /nonexistent/plb-jail\n", "5"},
	} {
		code, out, errOut := checkConfig(t, tc.name, tc.conf)
		wantLines(t, code, out, errOut, "plb: FILE:"+tc.line+msg)
	}
}

// TestCheckUnknownUser: plb -n refuses a user or group that does not
// exist, each at its line, and reports both at once.
func TestCheckUnknownUser(t *testing.T) {
	conf := "[global]\nuser = \"plb-no-such-user\"\ngroup = \"plb-no-such-group\"\n\n[service.web]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = \".\"\n"
	code, out, errOut := checkConfig(t, "plb.toml", conf)
	wantLines(t, code, out, errOut,
		"plb: FILE:2: user 'plb-no-such-user' not found (create the user, e.g. adduser --system --no-create-home plb-no-such-user, or fix user)",
		"plb: FILE:3: group 'plb-no-such-group' not found (create the group, e.g. addgroup --system plb-no-such-group, or fix group)")

	// An existing user passes, and -n prints the configuration.
	code, out, errOut = checkConfig(t, "plb.toml", strings.Replace(strings.Replace(conf, "plb-no-such-user", "root", 1), "plb-no-such-group", "root", 1))
	if code != 0 || !strings.Contains(out, "user = \"root\"") {
		t.Errorf("user root: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckFiles: the files a configuration names must be there and
// readable, and certificates must parse; each problem is at the line of
// the service or pool that names it.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "[service.tls]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = \".\"\n" +
		"enable_ssl = true\nssl_cert_file = \"" + junk + "\"\nssl_key_file = \"" + junk + "\"\n" +
		"access_log = \"/nonexistent/dir/access.log\"\n\n" +
		"[service.files]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = \".\"\n" +
		"plugins = [\"Throttle\"]\nwhitelist_file = \"/nonexistent/white.txt\"\n\n" +
		"[global]\nlog_file = \"/nonexistent/dir/plb.log\"\n\n" +
		"[pool.mtas]\nnodes = [\"127.0.0.1:25\"]\n\n" +
		"[service.mx]\nrole = \"smtp_proxy\"\nlisten = \"127.0.0.1:0\"\npool = \"mtas\"\nsmtp_starttls = true\n" +
		"ssl_cert_file = \"" + junk + "\"\nssl_key_file = \"" + junk + "\"\n"
	code, out, errOut := checkConfig(t, "plb.toml", conf)
	wantLines(t, code, out, errOut,
		"plb: FILE:1: ssl_cert_file '"+junk+"': tls: failed to find any PEM data in certificate input",
		"plb: FILE:1: access_log '/nonexistent/dir/access.log': its directory /nonexistent/dir does not exist (create it)",
		"plb: FILE:10: service files: plugin Throttle: Couldn't load /nonexistent/white.txt: Unable to open file /nonexistent/white.txt: no such file or directory",
		"plb: FILE:18: log_file '/nonexistent/dir/plb.log': its directory /nonexistent/dir does not exist (create it)",
		"plb: FILE:23: ssl_cert_file '"+junk+"': tls: failed to find any PEM data in certificate input")
}

// TestCheckNodefileWarning: plb -n prints nodefile lines it cannot read
// fully as warnings with the nodefile's name and line, and still passes.
func TestCheckNodefileWarning(t *testing.T) {
	nodes := filepath.Join(t.TempDir(), "nodes.txt")
	if err := os.WriteFile(nodes, []byte("10.0.0.1:80\n10.0.0.2:8O\n10.0.0:80 # web3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := checkConfig(t, "plb.toml", "[pool.web]\nnodefile = \""+nodes+"\"\n")
	want := "plb: warning: " + nodes + `:2: pool 'web': "10.0.0.2:8O" read as node 10.0.0.2:8: the address runs into "O"` + "\n" +
		"plb: warning: " + nodes + `:3: pool 'web': no node in "10.0.0:80", line ignored (a line holds ip[:port], e.g. 10.0.0.1:8080 or [2001:db8::1]:80)` + "\n"
	if code != 0 || errOut != want || !strings.Contains(out, "[pool.web]") {
		t.Errorf("exit %d\nstderr %q\nwant   %q\n%s", code, errOut, want, out)
	}
}
