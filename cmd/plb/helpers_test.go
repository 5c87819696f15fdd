package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// plbBinary builds plb once for the package's tests and returns its path.
func plbBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: no binary tests")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "plb-test-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "plb")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a plb started by a test.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
	stderr logText
	log    logText
}

// startPLB starts cmd (made by plbCmd or by the test) with its stderr in
// dir/stderr, and kills it at the end of the test if it still runs.
func startPLB(t *testing.T, cmd *exec.Cmd, dir string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{}), stderr: logText(filepath.Join(dir, "stderr")), log: logText(filepath.Join(dir, "plb.log"))}
	ef, err := os.Create(string(p.stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	if cmd.Stderr == nil {
		cmd.Stderr = ef
	}
	if cmd.Stdout == nil {
		cmd.Stdout = ef
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// errHung is combinedOutput's error for a command it had to kill.
var errHung = errors.New("still running at the time limit: killed")

// combinedOutput runs cmd and returns its standard output and error
// together, killing it after limit (the error is then errHung).
func combinedOutput(cmd *exec.Cmd, limit time.Duration) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.String(), errHung
	}
}

// plbCmd is the plb binary with args, logging to dir/plb.log at level 1.
func plbCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	return exec.Command(plbBinary(t), append([]string{"-d", "1", "-l", filepath.Join(dir, "plb.log")}, args...)...)
}

// wait waits at most d for plb to exit and reports whether it did.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.wait(10 * time.Second) {
		t.Fatalf("plb did not exit after SIGTERM; log:\n%s", p.log)
	}
	if p.err != nil {
		t.Fatalf("plb exited with %v; log:\n%s\nstderr:\n%s", p.err, p.log, p.stderr)
	}
}

// eventually polls cond every 20ms for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches http://addr/path without keep-alive.
func get(addr, path string) (string, error) {
	client := &nethttp.Client{Timeout: 5 * time.Second, Transport: &nethttp.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s %q", resp.Status, body)
	}
	return string(body), err
}

// waitServing waits until http://addr/path answers want.
func waitServing(t *testing.T, p *proc, addr, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := get(addr, path)
		if err == nil && body == want {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("plb exited (%v); stderr:\n%s\nlog:\n%s", p.err, p.stderr, p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s: got %q, %v; log:\n%s\nstderr:\n%s", addr, path, body, err, p.log, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// docroot makes dir/www with a file name holding body.
func docroot(t *testing.T, dir, name, body string) string {
	t.Helper()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return www
}

// writeFile writes text to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// webConf is a TOML web server on listen serving www, plus extra.
func webConf(listen, www, extra string) string {
	return fmt.Sprintf("[service.web]\nrole = \"web_server\"\nlisten = %q\ndocroot = %q\npersist_client = true\n%s", listen, www, extra)
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// procStatus returns the fields of /proc/pid/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// freePort6 returns an [::1] address that was free a moment ago, or skips
// the test when lo has no IPv6.
func freePort6(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 on lo: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
