package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runParent runs plb -B with args and returns its exit status and output;
// the parent must be back within the readiness wait.
func runParent(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := combinedOutput(exec.Command(plbBinary(t), append([]string{"-B"}, args...)...), readyTimeout+10*time.Second)
	if errors.Is(err, errHung) {
		t.Fatal("plb -B: the parent did not return")
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out
}

// readPid reads a pidfile.
func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pidfile %q: %v", data, err)
	}
	return pid
}

// TestDaemonize: plb -B returns 0 once the daemon serves, the pidfile names
// the daemon, a second plb with the same pidfile is refused naming it, and
// SIGTERM removes the pidfile.
func TestDaemonize(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "daemon"), ""))
	pidfile := filepath.Join(dir, "plb.pid")
	logs := logText(filepath.Join(dir, "plb.log"))
	start := time.Now()
	code, out := runParent(t, "-c", conf, "-p", pidfile, "-l", string(logs), "-d", "1")
	if code != 0 || out != "" {
		t.Fatalf("plb -B: exit %d, output %q; log:\n%s", code, out, logs)
	}
	pid := readPid(t, pidfile)
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// Ready means bound: it serves at once, no polling.
	if body, err := get(listen, "/f"); body != "daemon" {
		t.Fatalf("daemon not serving when the parent returned: %q %v; log:\n%s", body, err, logs)
	}
	if sid, _ := syscall.Getpgid(pid); sid != pid {
		t.Errorf("daemon pid %d: process group %d, want its own session", pid, sid)
	}
	t.Logf("ready in %v", time.Since(start))

	code, out = runParent(t, "-c", writeFile(t, dir, "other.toml", webConf(freePort(t), filepath.Join(dir, "www"), "")), "-p", pidfile)
	if code != 1 || !strings.Contains(out, "already running as pid "+strconv.Itoa(pid)) {
		t.Fatalf("second plb with a live pidfile: exit %d, %q", code, out)
	}
	if readPid(t, pidfile) != pid {
		t.Fatal("the live pidfile was overwritten")
	}

	syscall.Kill(pid, syscall.SIGTERM)
	eventually(t, 10*time.Second, "the daemon to exit", func() bool { return !alive(pid) })
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile left after exit: %v", err)
	}
	if !strings.Contains(logs.String(), "plb stopped") {
		t.Fatalf("log:\n%s", logs)
	}
}

// TestDaemonizeFails: a daemon that cannot start makes the parent exit 1
// with the daemon's error; an invalid file fails before forking.
func TestDaemonizeFails(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	conf := writeFile(t, dir, "plb.toml", webConf(busy.Addr().String(), docroot(t, dir, "f", "x"), ""))
	pidfile := filepath.Join(dir, "plb.pid")
	code, out := runParent(t, "-c", conf, "-p", pidfile)
	if code != 1 || !strings.Contains(out, "Error creating listening socket") || !strings.Contains(out, "address already in use") {
		t.Fatalf("plb -B on a busy port: exit %d, %q", code, out)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile written by a failed start: %v", err)
	}
	bad := writeFile(t, dir, "bad.toml", "[service.web]\nrole = \"web_server\"\nlisten = \"127.0.0.1:1\"\nfrobnicate = 1\n")
	code, out = runParent(t, "-c", bad, "-p", pidfile)
	if code != 1 || !strings.Contains(out, "bad.toml:4") {
		t.Fatalf("plb -B on an invalid file: exit %d, %q", code, out)
	}
}

// TestPidfileStale: a pidfile naming a dead process is replaced.
func TestPidfileStale(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidfile := writeFile(t, dir, "plb.pid", strconv.Itoa(dead.Process.Pid)+"\n")
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "ok"), ""))
	p := startPLB(t, plbCmd(t, dir, "-c", conf, "-p", pidfile), dir)
	waitServing(t, p, listen, "/f", "ok")
	if pid := readPid(t, pidfile); pid != p.cmd.Process.Pid {
		t.Fatalf("pidfile holds %d, want plb's %d", pid, p.cmd.Process.Pid)
	}
	if !strings.Contains(p.log.String(), "replacing a stale pidfile") {
		t.Errorf("no warning about the stale pidfile:\n%s", p.log)
	}
	p.stop(t)
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile left after exit: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".plb.pid.*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestLogReopen: after the log file is renamed, SIGUSR1 makes plb write to
// a new file at the same path.
func TestLogReopen(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "ok"), ""))
	p := startPLB(t, plbCmd(t, dir, "-c", conf, "-d", "0"), dir)
	waitServing(t, p, listen, "/f", "ok")
	rotated := logText(filepath.Join(dir, "plb.log.1"))
	if err := os.Rename(string(p.log), string(rotated)); err != nil {
		t.Fatal(err)
	}
	before := rotated.String()
	p.cmd.Process.Signal(syscall.SIGUSR1)
	eventually(t, 10*time.Second, "log reopened in the new file", func() bool {
		return strings.Contains(p.log.String(), "log reopened")
	})
	p.cmd.Process.Signal(syscall.SIGHUP) // something more to log
	eventually(t, 10*time.Second, "the reload logged in the new file", func() bool {
		return strings.Contains(p.log.String(), "configuration reloaded")
	})
	if after := rotated.String(); after != before {
		t.Fatalf("the rotated file still gets lines:\n%s", strings.TrimPrefix(after, before))
	}
	p.stop(t)
	if !strings.Contains(p.log.String(), "plb stopped") {
		t.Fatalf("new log:\n%s", p.log)
	}
}
