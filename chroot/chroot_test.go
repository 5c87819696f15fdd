package chroot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody returns the uid and primary gid of user nobody, or skips.
func nobody(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

func TestResolve(t *testing.T) {
	uid, gid := nobody(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	none := []int{}
	tests := []struct {
		spec Spec
		want Creds
		err  string
	}{
		{spec: Spec{}, want: Creds{}},
		{spec: Spec{User: "root"}, want: Creds{UID: 0, GID: 0, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{User: "nobody"}, want: Creds{UID: uid, GID: gid, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{User: strconv.Itoa(uid)}, want: Creds{UID: uid, GID: gid, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{User: "nobody", Group: "root"}, want: Creds{UID: uid, GID: 0, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{User: "nobody", Group: "4242"}, want: Creds{UID: uid, GID: 4242, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{Group: "root"}, want: Creds{GID: 0, Groups: none, HasGroup: true}},
		{spec: Spec{User: "3999999", Group: "100"}, want: Creds{UID: 3999999, GID: 100, Groups: none, HasUser: true, HasGroup: true}},
		{spec: Spec{User: "nobody", Dir: tmp + "/"}, want: Creds{UID: uid, GID: gid, Groups: none, HasUser: true, HasGroup: true, Dir: tmp}},
		{spec: Spec{Dir: tmp}, want: Creds{Dir: tmp}},

		{spec: Spec{User: "plb-no-such-user"}, err: "user 'plb-no-such-user' not found"},
		{spec: Spec{User: "nobody", Group: "plb-no-such-group"}, err: "group 'plb-no-such-group' not found"},
		{spec: Spec{Group: "plb-no-such-group"}, err: "group 'plb-no-such-group' not found"},
		{spec: Spec{User: "3999999"}, err: "user '3999999' has no passwd entry, so no primary group: set group too"},
		{spec: Spec{User: "4294967295"}, err: "user '4294967295': id 4294967295 out of range"},
		{spec: Spec{User: "nobody", Group: "99999999999"}, err: "group '99999999999': id 99999999999 out of range"},
		{spec: Spec{Dir: "var/empty"}, err: "chroot_dir var/empty: not an absolute path"},
		{spec: Spec{Dir: tmp + "/missing"}, err: "chroot_dir " + tmp + "/missing: no such file or directory"},
		{spec: Spec{Dir: file}, err: "chroot_dir " + file + ": not a directory"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.spec)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Resolve(%+v) error = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%+v): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Resolve(%+v) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

// jailTree builds base/{jail/{www,data/www,links...},outside,jaillink->jail}
// and returns base and jail.
func jailTree(t *testing.T) (base, jail string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	jail = filepath.Join(base, "jail")
	for _, d := range []string{"jail/www", "jail/data/www", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"jail/escape":   "/etc",                             // absolute, out of the jail
		"jail/up":       "../outside",                       // relative, out of the jail
		"jail/abs":      filepath.Join(jail, "data", "www"), // host path into the jail: /jail/jail/... after chroot
		"jail/rel":      "data/www",                         // relative, inside: fine
		"jail/loop":     "loop",
		"jail/www/file": "../data/www", // any name, only used as a link
		"jaillink":      "jail",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	return base, jail
}

func TestCheckPaths(t *testing.T) {
	base, jail := jailTree(t)
	outside := filepath.Join(base, "outside")
	j := func(p string) string { return jail + "/" + p }
	tests := []struct {
		dir, path string
		err       string // substring; "" = accepted
	}{
		{dir: jail, path: jail},
		{dir: jail, path: jail + "/"},
		{dir: jail + "/", path: j("www")},
		{dir: jail, path: j("www/")},
		{dir: jail, path: j("www/../data")},
		{dir: jail, path: j("./www//x")},
		{dir: jail, path: j("notyet/sub")},
		{dir: jail, path: j("rel")},
		{dir: jail, path: j("rel/sub/file")},
		{dir: jail, path: j("www/file")},
		{dir: "/", path: "/etc"},
		{dir: "", path: "relative/ok/without/chroot"},
		{dir: filepath.Join(base, "jaillink"), path: j("www")},
		{dir: jail, path: filepath.Join(base, "jaillink", "www")},
		{dir: jail, path: ""}, // unset option

		{dir: jail, path: outside, err: "test path " + outside + " is outside chroot_dir " + jail + ": put it inside, or drop chroot_dir"},
		{dir: jail, path: j("www/../../outside"), err: "is outside chroot_dir"},
		{dir: jail, path: j(".."), err: "is outside chroot_dir"},
		{dir: jail, path: jail + "break", err: "is outside chroot_dir"},
		{dir: jail, path: "www", err: "test path www is not an absolute path"},
		{dir: jail, path: j("escape"), err: "is outside chroot_dir " + jail + " (it resolves to /etc)"},
		{dir: jail, path: j("escape/passwd"), err: "(it resolves to /etc/passwd)"},
		{dir: jail, path: j("up/x"), err: "(it resolves to " + outside + "/x)"},
		// The kernel applies ".." after following the symlink: /etc/.. = /.
		{dir: jail, path: j("escape/../www"), err: "(it resolves to /www)"},
		{dir: jail, path: j("abs"), err: "after the chroot to " + jail + " it would be " + jail + jail + "/data/www: use relative symlinks"},
		{dir: jail, path: j("loop"), err: "too many levels of symbolic links"},
		{dir: "var/empty", path: "/var/empty/x", err: "chroot_dir var/empty: not an absolute path"},
	}
	for _, tt := range tests {
		err := CheckPaths(tt.dir, map[string]string{"test path": tt.path})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("CheckPaths(%q, %q): %v", tt.dir, tt.path, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("CheckPaths(%q, %q) error = %v, want it to contain %q", tt.dir, tt.path, err, tt.err)
		}
	}

	// The documented message, and every offending path reported in key order.
	err := CheckPaths("/var/empty", map[string]string{
		"service web docroot":      "/srv/www",
		"service web buffer_dir":   "/var/empty/buf",
		"service api buffer_dir":   "/tmp/plb",
		"service web nodefile":     "",
		"service api reproxy file": "/var/empty/../x",
	})
	want := "service api buffer_dir /tmp/plb is outside chroot_dir /var/empty: put it inside, or drop chroot_dir\n" +
		"service api reproxy file /var/empty/../x is outside chroot_dir /var/empty: put it inside, or drop chroot_dir\n" +
		"service web docroot /srv/www is outside chroot_dir /var/empty: put it inside, or drop chroot_dir"
	if err == nil || err.Error() != want {
		t.Errorf("CheckPaths errors =\n%v\nwant\n%s", err, want)
	}
	if err := CheckPaths("", map[string]string{"x": "/anywhere", "y": "rel"}); err != nil {
		t.Errorf("CheckPaths without chroot_dir: %v", err)
	}
}

func TestRebase(t *testing.T) {
	base, jail := jailTree(t)
	tests := []struct {
		dir, path, want string
		err             bool
	}{
		{dir: "/jail", path: "/jail/www", want: "/www"},
		{dir: "/jail", path: "/jail", want: "/"},
		{dir: "/jail/", path: "/jail/www/", want: "/www"},
		{dir: "/jail", path: "/jail//www/./x/../y", want: "/www/y"},
		{dir: "/", path: "/srv/www", want: "/srv/www"},
		{dir: "", path: "/srv/www", want: "/srv/www"},
		{dir: "", path: "rel", want: "rel"},
		{dir: jail, path: jail + "/www", want: "/www"},
		{dir: filepath.Join(base, "jaillink"), path: jail + "/www", want: "/www"},
		{dir: jail, path: filepath.Join(base, "jaillink", "www"), want: "/www"},

		{dir: "/jail", path: "/jail/../etc", err: true},
		{dir: "/jail", path: "/jail/..", err: true},
		{dir: "/jail", path: "/jailbreak", err: true},
		{dir: "/jail", path: "/", err: true},
		{dir: "/jail", path: "www", err: true},
		{dir: "jail", path: "/jail/www", err: true},
		{dir: jail, path: base + "/outside", err: true},
	}
	for _, tt := range tests {
		got, err := Rebase(tt.dir, tt.path)
		if tt.err {
			if err == nil {
				t.Errorf("Rebase(%q, %q) = %q, want an error", tt.dir, tt.path, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Rebase(%q, %q) = %q, %v; want %q", tt.dir, tt.path, got, err, tt.want)
		}
	}
	if _, err := Rebase("/var/empty", "/srv/www"); err == nil || err.Error() != "/srv/www is outside chroot_dir /var/empty" {
		t.Errorf("Rebase error = %v", err)
	}
}

func TestDropRejectsBadCreds(t *testing.T) {
	// These fail before anything is changed, so they can run in-process.
	for _, tt := range []struct {
		c   Creds
		err string
	}{
		{Creds{UID: 65534, HasUser: true}, "drop: user set without group (use Resolve)"},
		{Creds{Dir: "var/empty"}, "chroot var/empty: not an absolute path"},
		{Creds{UID: -1, GID: 1, HasUser: true, HasGroup: true}, "drop: id -1 out of range"},
		{Creds{GID: 1, Groups: []int{1 << 32}, HasGroup: true}, "drop: id 4294967296 out of range"},
	} {
		if err := Drop(tt.c); err == nil || err.Error() != tt.err {
			t.Errorf("Drop(%+v) = %v, want %q", tt.c, err, tt.err)
		}
	}
}

const (
	helperEnv    = "PLB_CHROOT_TEST_HELPER" // mode: "drop" or "fail"
	helperDirEnv = "PLB_CHROOT_TEST_DIR"
	childTimeout = 30 * time.Second
)

// TestHelperDrop is not a test: it is the child process of TestDrop* (Drop
// cannot be undone, so it must not run in the test process). It reports on
// stdout, one "KEY value" line at a time.
func TestHelperDrop(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("child process of TestDrop*")
	}
	dir := os.Getenv(helperDirEnv)
	out := bufio.NewWriter(os.Stdout)
	say := func(k string, v ...any) {
		fmt.Fprintln(out, append([]any{k}, v...)...)
		out.Flush()
	}
	switch mode {
	case "drop":
		// /proc is not in the jail: open our status before the drop, read
		// it after (procfs generates it at read time).
		status, err := os.Open("/proc/self/status")
		if err != nil {
			say("ERR", err)
			return
		}
		groups, _ := syscall.Getgroups()
		say("BEFORE", groups)
		c, err := Resolve(Spec{User: "nobody", Dir: dir})
		if err != nil {
			say("ERR", "resolve:", err)
			return
		}
		if err := Drop(c); err != nil {
			say("ERR", "drop:", err)
			return
		}
		b, err := io.ReadAll(status)
		if err != nil {
			say("ERR", "read status:", err)
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
				say("STATUS", l)
			}
		}
		zone, _ := time.Now().Zone()
		say("ZONE", zone)
		_, err = os.Stat("/etc/passwd")
		say("PASSWD", err)
		wd, _ := os.Getwd()
		say("WD", wd)
		say("READY")
		// Stay alive, jailed, until the parent has inspected /proc/<pid>.
		io.Copy(io.Discard, os.Stdin)
	case "fail":
		c, err := Resolve(Spec{User: "nobody"})
		if err != nil {
			say("ERR", "resolve:", err)
			return
		}
		missing := c
		missing.Dir = filepath.Join(dir, "missing")
		say("MISSING", Drop(missing))
		say("UID", os.Getuid(), os.Geteuid()) // nothing dropped
		say("NOCHROOT", Drop(c))              // to nobody, no jail
		say("UID", os.Getuid(), os.Geteuid())
		say("AGAIN", Drop(c)) // same identity again: fine unprivileged
		say("CHROOT", Drop(Creds{Dir: dir}))
		say("ROOT", Drop(Creds{UID: 0, GID: 0, Groups: []int{}, HasUser: true, HasGroup: true}))
		say("DONE")
	}
}

type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	lines  chan string
}

func startChild(t *testing.T, mode, dir string, env ...string) *child {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	t.Cleanup(cancel)
	c := &child{lines: make(chan string, 100)}
	c.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperDrop$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode, helperDirEnv+"="+dir)...)
	c.cmd.Stderr = &c.stderr
	c.cmd.WaitDelay = 5 * time.Second
	if mode == "drop" {
		// Start with supplementary groups, which Drop must clear.
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Groups: []uint32{4242, 4343}}}
	}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.stdin.Close(); c.cmd.Wait() })
	return c
}

// until collects the child's lines up to one equal to last, failing on
// timeout or early exit.
func (c *child) until(t *testing.T, last string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	timeout := time.After(childTimeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.stdin.Close()
				c.cmd.Wait()
				t.Fatalf("child exited before %s; got %q; stderr:\n%s", last, got, c.stderr.String())
			}
			if l == last {
				return got
			}
			k, v, _ := strings.Cut(l, " ")
			got[k] = append(got[k], v)
			t.Logf("child: %s", l)
		case <-timeout:
			t.Fatalf("no %s from the child in %v; got %q", last, childTimeout, got)
		}
	}
}

// statusIDs returns the fields of the Uid:, Gid: and Groups: lines of a
// /proc/<pid>/status.
func statusIDs(t *testing.T, status string) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	for _, l := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (k == "Uid" || k == "Gid" || k == "Groups") {
			ids[k] = strings.Fields(v)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("status lacks Uid/Gid/Groups:\n%s", status)
	}
	return ids
}

func checkIDs(t *testing.T, where string, ids map[string][]string, uid, gid int) {
	t.Helper()
	u, g := strconv.Itoa(uid), strconv.Itoa(gid)
	if want := []string{u, u, u, u}; !reflect.DeepEqual(ids["Uid"], want) {
		t.Errorf("%s: Uid (real, effective, saved, fs) = %v, want %v", where, ids["Uid"], want)
	}
	if want := []string{g, g, g, g}; !reflect.DeepEqual(ids["Gid"], want) {
		t.Errorf("%s: Gid (real, effective, saved, fs) = %v, want %v", where, ids["Gid"], want)
	}
	if len(ids["Groups"]) != 0 {
		t.Errorf("%s: Groups = %v, want none", where, ids["Groups"])
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot, setuid)")
	}
}

// TestDrop drops a child process to nobody in a temporary jail and checks it
// from the outside, through /proc/<pid>, while the child waits on stdin.
func TestDrop(t *testing.T) {
	needRoot(t)
	uid, gid := nobody(t)
	dir, err := filepath.EvalSymlinks(t.TempDir()) // 0700 root: chroot happens as root
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	zone := ""
	if _, err := os.Stat("/usr/share/zoneinfo/America/New_York"); err == nil {
		// time.Local must be loaded before the jail hides zoneinfo.
		env = append(env, "TZ=America/New_York")
		zone, _ = time.Now().In(mustLoad(t, "America/New_York")).Zone()
	}
	c := startChild(t, "drop", dir, env...)
	got := c.until(t, "READY")
	pid := c.cmd.Process.Pid

	// The child's own view, read from /proc/self/status opened before the drop.
	checkIDs(t, "child /proc/self/status", statusIDs(t, strings.Join(got["STATUS"], "\n")), uid, gid)

	// The parent's view of every thread: setuid must have reached them all.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks for pid %d: %v", pid, err)
	}
	for _, f := range append([]string{fmt.Sprintf("/proc/%d/status", pid)}, tasks...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, f, statusIDs(t, string(b)), uid, gid)
	}
	t.Logf("checked %d threads of pid %d", len(tasks), pid)

	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		t.Fatal(err)
	}
	if root != dir {
		t.Errorf("/proc/%d/root = %q, want %q", pid, root, dir)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != dir {
		t.Errorf("/proc/%d/cwd = %q, %v; want %q", pid, cwd, err, dir)
	}
	if b := got["BEFORE"]; len(b) != 1 || b[0] != "[4242 4343]" {
		t.Errorf("child groups before the drop = %q, want [4242 4343]", b)
	}
	if w := got["WD"]; len(w) != 1 || w[0] != "/" {
		t.Errorf("child getwd = %q, want /", w)
	}
	if p := got["PASSWD"]; len(p) != 1 || !strings.Contains(p[0], "no such file or directory") {
		t.Errorf("child stat /etc/passwd = %q, want no such file", p)
	}
	if zone != "" {
		if z := got["ZONE"]; len(z) != 1 || z[0] != zone {
			t.Errorf("child zone in the jail = %q, want %q (time.Local not loaded before chroot?)", z, zone)
		}
	}

	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child: %v; stderr:\n%s", err, c.stderr.String())
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDropFails checks, in a child, that failing steps are named and that a
// failed chroot leaves the identity untouched.
func TestDropFails(t *testing.T) {
	needRoot(t)
	uid, _ := nobody(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Let nobody reach dir, so that chroot itself (not the stat before it)
	// is what fails with EPERM.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := startChild(t, "fail", dir)
	got := c.until(t, "DONE")
	want := map[string][]string{
		"MISSING":  {"chroot " + dir + "/missing: no such file or directory"},
		"UID":      {"0 0", fmt.Sprintf("%d %d", uid, uid)},
		"NOCHROOT": {"<nil>"},
		"AGAIN":    {"<nil>"},
		"CHROOT":   {"chroot " + dir + ": " + syscall.EPERM.Error()},
		"ROOT":     {"setgid 0: " + syscall.EPERM.Error()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("child reported\n%q\nwant\n%q", got, want)
	}
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child: %v; stderr:\n%s", err, c.stderr.String())
	}
}
