package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIPv6: a web server and a reverse proxy on [::1] with an IPv6 node
// (TOML), and PLB's plb.conf with bind_ipv6 and backlog.
func TestIPv6(t *testing.T) {
	dir := t.TempDir()
	web, proxy := freePort6(t), freePort6(t)
	conf := writeFile(t, dir, "plb.toml", webConf(web, docroot(t, dir, "f", "v6"), "")+
		fmt.Sprintf("\n[pool.v6]\nnodes = [%q]\n\n[service.proxy]\nrole = \"reverse_proxy\"\nlisten = %q\npool = \"v6\"\n", web, proxy))
	p := startPLB(t, plbCmd(t, dir, "-c", conf), dir)
	waitServing(t, p, web, "/f", "v6")
	waitServing(t, p, proxy, "/f", "v6")
	p.stop(t)

	// PLB: listen_ip ::1 needs bind_ipv6 1; servers_ip takes IPv6.
	backend, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "backend over v6 from "+r.RemoteAddr)
	})}
	go srv.Serve(backend)
	defer srv.Close()
	_, bport, _ := net.SplitHostPort(backend.Addr().String())
	front := freePort6(t)
	_, fport, _ := net.SplitHostPort(front)
	dir2 := t.TempDir()
	plbConf := writeFile(t, dir2, "plb.conf", fmt.Sprintf("listen_ip ::1\nlisten_port %s\nbind_ipv6 1\nservers_ip ::1\nservers_port %s\nbacklog 37\n", fport, bport))
	p = startPLB(t, plbCmd(t, dir2, "-c", plbConf), dir2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := get(front, "/")
		if err == nil && strings.HasPrefix(body, "backend over v6 from [::1]:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PLB bind_ipv6: %q %v; log:\n%s%s", body, err, p.log, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := exec.LookPath("ss"); err == nil {
		out, err := exec.Command("ss", "-ltnH", "sport = :"+fport).CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, line := range lines {
			if f := strings.Fields(line); len(f) < 4 || f[2] != "37" || f[3] != front {
				t.Fatalf("PLB backlog 37 on %s: ss says\n%s", front, out)
			}
		}
	}
	p.stop(t)
}

// TestMaxClients: at max_clients a new client gets EOF at once, the open
// keep-alive clients go on, and once one leaves a new client is served.
func TestMaxClients(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", "[global]\nmax_clients = 2\n\n"+webConf(listen, docroot(t, dir, "f", "ok"), ""))
	p := startPLB(t, plbCmd(t, dir, "-c", conf), dir)
	waitServing(t, p, listen, "/f", "ok")

	type client struct {
		c net.Conn
		r *bufio.Reader
	}
	dial := func() client {
		c, err := net.DialTimeout("tcp", listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return client{c, bufio.NewReader(c)}
	}
	request := func(cl client) error {
		cl.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(cl.c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := nethttp.ReadResponse(cl.r, nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
			return fmt.Errorf("%s %q %v close=%v", resp.Status, body, err, resp.Close)
		}
		return nil
	}
	// The connections of waitServing may still be closing: retry until
	// two clients are in.
	var in []client
	eventually(t, 5*time.Second, "two keep-alive clients in", func() bool {
		cl := dial()
		if request(cl) != nil {
			cl.c.Close()
			return false
		}
		in = append(in, cl)
		return len(in) == 2
	})
	a, b := in[0], in[1]
	third := dial()
	start := time.Now()
	third.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := third.c.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("third client at max_clients 2: read %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("third client refused after %v", d)
	}
	third.c.Close()
	for _, cl := range []client{a, b} {
		if err := request(cl); err != nil {
			t.Fatalf("a client already in was disturbed: %v", err)
		}
	}
	a.c.Close()
	eventually(t, 5*time.Second, "a new client served after one left", func() bool {
		cl := dial()
		defer cl.c.Close()
		return request(cl) == nil
	})
	if !strings.Contains(p.log.String(), "max_clients reached") {
		t.Errorf("no warning logged:\n%s", p.log)
	}
	b.c.Close() // else the drain lets it linger
	p.stop(t)
}

// TestNoFileLimit: a configuration needing more descriptors than the hard
// limit allows (and than root may raise it to) is refused with both
// numbers.
func TestNoFileLimit(t *testing.T) {
	dir := t.TempDir()
	nrOpen := 1 << 20
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			nrOpen = n
		}
	}
	maxClients := nrOpen/2 + 100 // twice that is beyond what even root gets
	conf := writeFile(t, dir, "plb.toml", fmt.Sprintf("[global]\nmax_clients = %d\n\n", maxClients)+
		webConf(freePort(t), docroot(t, dir, "f", "ok"), ""))
	cmd := exec.Command("sh", "-c", `ulimit -n 64 && exec "$0" "$@"`, plbBinary(t), "-c", conf)
	out, err := cmd.CombinedOutput()
	want := "max_clients needs "
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) ||
		!strings.Contains(string(out), "descriptors; the hard limit is 64 (ulimit -Hn)") {
		t.Fatalf("exit %v, output %q", err, out)
	}

	// Within the hard limit: the soft one is raised to it.
	listen := freePort(t)
	conf = writeFile(t, dir, "ok.toml", "[global]\nmax_clients = 100\nworkers = 1\n\n"+webConf(listen, filepath.Join(dir, "www"), ""))
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	hard := min(rl.Max, 4096)
	if hard < 300 {
		t.Skipf("hard limit %d too low for this test", rl.Max)
	}
	sh := fmt.Sprintf(`ulimit -Sn 64 && ulimit -Hn %d && exec "$0" "$@"`, hard)
	p := startPLB(t, exec.Command("sh", "-c", sh, plbBinary(t), "-c", conf), dir)
	waitServing(t, p, listen, "/f", "ok")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && strings.HasPrefix(line, "Max open files") {
			if f[3] != strconv.FormatUint(hard, 10) {
				t.Fatalf("soft limit not raised to the hard one, %d:\n%s", hard, line)
			}
		}
	}
	p.stop(t)
}

// TestSdNotify: plb tells systemd READY=1 once it serves, RELOADING=1 then
// READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM.
func TestSdNotify(t *testing.T) {
	dir := t.TempDir()
	sock, next := notifySocket(t, dir)
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "ok"), ""))
	cmd := plbCmd(t, dir, "-c", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p := startPLB(t, cmd, dir)
	msg := next("READY=1")
	if !strings.Contains(msg, "READY=1\n") || !strings.Contains(msg, fmt.Sprintf("MAINPID=%d", p.cmd.Process.Pid)) {
		t.Fatalf("first notification %q", msg)
	}
	if body, err := get(listen, "/f"); body != "ok" { // ready means serving
		t.Fatalf("not serving at READY=1: %q %v", body, err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	if msg := next("RELOADING=1"); !strings.HasPrefix(msg, "RELOADING=1\n") || !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Fatalf("on SIGHUP: %q", msg)
	}
	if msg := next("READY=1 after the reload"); !strings.HasPrefix(msg, "READY=1\n") {
		t.Fatalf("after the reload: %q", msg)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if msg := next("STOPPING=1"); !strings.HasPrefix(msg, "STOPPING=1") {
		t.Fatalf("on SIGTERM: %q", msg)
	}
	if !p.wait(10 * time.Second) {
		t.Fatal("plb did not exit")
	}
	if p.err != nil {
		t.Fatalf("exit: %v\n%s", p.err, p.stderr)
	}
}

// TestSdNotifyStartupFailed: a start that fails tells systemd why
// (STATUS=start-up failed: ...) before plb exits, so that systemctl status
// shows the error; here the log file's directory does not exist.
func TestSdNotifyStartupFailed(t *testing.T) {
	dir := t.TempDir()
	sock, next := notifySocket(t, dir)
	conf := writeFile(t, dir, "plb.toml", webConf(freePort(t), docroot(t, dir, "f", "ok"), ""))
	cmd := exec.Command(plbBinary(t), "-c", conf, "-l", filepath.Join(dir, "missing", "plb.log"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("plb started with a log file it cannot open:\n%s", out)
	}
	if msg := next("the failure"); !strings.Contains(msg, "STATUS=start-up failed: log file:") {
		t.Fatalf("notification %q", msg)
	}
}

// notifySocket is a systemd notification socket in dir, closed when the
// test ends; next waits up to 10 s for its next message (what: for the
// error).
func notifySocket(t *testing.T, dir string) (sock string, next func(what string) string) {
	sock = filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return sock, func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		l.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
}

// TestSocketActivation: plb started the way systemd starts a socket
// activated service (the listening socket as descriptor 3, LISTEN_FDS=1,
// LISTEN_PID its own pid) serves on it without binding: binding would fail,
// the test's socket having no SO_REUSEPORT.
func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "activated"), ""))
	// LISTEN_PID must be plb's pid: the shell sets it to its own, then
	// execs plb, which keeps the pid.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, plbBinary(t), "-d", "1", "-l", filepath.Join(dir, "plb.log"), "-c", conf)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = []*os.File{lf}
	p := startPLB(t, cmd, dir)
	lf.Close()
	l.Close() // plb holds the only copy now
	waitServing(t, p, listen, "/f", "activated")
	log := p.log.String()
	if !strings.Contains(log, "listening on an inherited socket") || !strings.Contains(log, "name=web") {
		t.Fatalf("log:\n%s", log)
	}
	p.stop(t)
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after exit")
	}
}
