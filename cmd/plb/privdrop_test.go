package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrivilegeDrop (root only): with user = nobody and chroot_dir, plb
// binds, then chroots and becomes nobody (real, effective, saved and file
// system ids), serves files from the docroot as seen in the jail, reloads
// a file inside the jail, and removes its pidfile from there at exit.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if eff, err := strconv.ParseUint(procStatus(t, os.Getpid())["CapEff"], 16, 64); err != nil ||
		eff&(1<<6|1<<7|1<<18) != 1<<6|1<<7|1<<18 {
		t.Skip("root without CAP_SETGID, CAP_SETUID and CAP_SYS_CHROOT")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir := t.TempDir()
	jail := filepath.Join(dir, "jail")
	for _, d := range []string{jail, filepath.Join(jail, "run")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if err := os.Chown(filepath.Join(jail, "run"), uid, gid); err != nil {
		t.Fatal(err)
	}
	www := docroot(t, jail, "f", "jailed")
	www2 := filepath.Join(jail, "www2")
	os.Mkdir(www2, 0o755)
	writeFile(t, www2, "f", "reloaded")
	listen := freePort(t)
	conf := filepath.Join(jail, "plb.toml")
	write := func(root string) {
		writeFile(t, jail, "plb.toml", fmt.Sprintf("[global]\nuser = \"nobody\"\nchroot_dir = %q\n\n", jail)+webConf(listen, root, ""))
	}
	write(www)
	pidfile := filepath.Join(jail, "run", "plb.pid")
	p := startPLB(t, plbCmd(t, dir, "-c", conf, "-p", pidfile), dir)
	waitServing(t, p, listen, "/f", "jailed")
	pid := p.cmd.Process.Pid
	st := procStatus(t, pid)
	ids := func(id int) string { s := strconv.Itoa(id); return strings.Join([]string{s, s, s, s}, " ") }
	if st["Uid"] != ids(uid) || st["Gid"] != ids(gid) || st["Groups"] != "" {
		t.Fatalf("Uid %q Gid %q Groups %q; want all %d, all %d, none", st["Uid"], st["Gid"], st["Groups"], uid, gid)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err != nil || root != jail {
		t.Fatalf("root directory %q (%v), want %s", root, err, jail)
	}
	if st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
		t.Fatalf("capabilities left: eff %s prm %s", st["CapEff"], st["CapPrm"])
	}
	if readPid(t, pidfile) != pid {
		t.Fatal("pidfile")
	}

	// The file is inside the jail: a reload reads it there.
	write(www2)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitServing(t, p, listen, "/f", "reloaded")

	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.wait(10 * time.Second) {
		t.Fatalf("plb did not exit; log:\n%s", p.log)
	}
	if p.err != nil {
		t.Fatalf("exit %v\n%s\n%s", p.err, p.stderr, p.log)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile in the jail not removed: %v\n%s", err, p.log)
	}
}

// TestChrootPaths: with chroot_dir, a path the configuration uses outside
// the jail is refused at start-up; a configuration file outside it only
// warns that reloads will fail.
func TestChrootPaths(t *testing.T) {
	dir := t.TempDir()
	jail := filepath.Join(dir, "jail")
	os.Mkdir(jail, 0o755)
	outside := docroot(t, dir, "f", "x")
	conf := writeFile(t, dir, "plb.toml", fmt.Sprintf("[global]\nchroot_dir = %q\n\n", jail)+webConf(freePort(t), outside, ""))
	out, err := plbCmd(t, dir, "-c", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "service web docroot "+outside+" is outside chroot_dir") {
		t.Fatalf("docroot outside the jail: %v %q", err, out)
	}
}
