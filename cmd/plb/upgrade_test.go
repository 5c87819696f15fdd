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

	"github.com/plb/plb/internal/testhttp"
)

// tunnelBackend answers / with name, and /ws with 101 Switching Protocols,
// then echoes what the client sends (a WebSocket's bytes, unframed).
func tunnelBackend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != "/ws" {
			io.WriteString(w, name)
			return
		}
		c, brw, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// smtpBackend greets, answers each line "250 ok LINE" and QUIT with 221.
func smtpBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 mx ready\r\n")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimSpace(line)
					if strings.EqualFold(line, "QUIT") {
						io.WriteString(c, "221 bye\r\n")
						return
					}
					io.WriteString(c, "250 ok "+line+"\r\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// session is a long client connection: a WebSocket tunnel or an SMTP
// session, which says whether it still answers.
type session struct {
	c  net.Conn
	br *bufio.Reader
	ws bool
}

// ask sends msg and checks its echo (WebSocket) or its 250 (SMTP).
func (s *session) ask(msg string) error {
	s.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(s.c, msg+"\r\n"); err != nil {
		return err
	}
	line, err := s.br.ReadString('\n')
	if err != nil {
		return err
	}
	want := msg + "\r\n"
	if !s.ws {
		want = "250 ok " + msg + "\r\n"
	}
	if line != want {
		return fmt.Errorf("%q, want %q", line, want)
	}
	return nil
}

// TestBinaryUpgrade: SIGUSR2 under load starts the new binary with the
// listening sockets; the new process takes over the pidfile and the new
// clients, while 100 WebSocket tunnels and 20 SMTP sessions opened before
// go on through the old one, which exits once they are done. No request
// of the load fails, no session is cut. With wrk installed, wrk's new
// connection per request runs across the upgrade too.
func TestBinaryUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	web, mx := tunnelBackend(t, "A"), smtpBackend(t)
	listen, smtpListen := freePort(t), freePort(t)
	conf := filepath.Join(dir, "plb.toml")
	text := fmt.Sprintf(`[global]
workers = 2
[pool.web]
nodes = [%q]
[pool.mx]
nodes = [%q]
[service.proxy]
role = "reverse_proxy"
listen = %q
pool = "web"
persist_client = true
idle_timeout = "60s"
[service.smtp]
role = "smtp_proxy"
listen = %q
pool = "mx"
`, web, mx, listen, smtpListen)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "plb.pid")
	old := startPLB(t, plbCmd(t, dir, "-c", conf, "-p", pidfile), dir)
	waitServing(t, old, listen, "/", "A")

	var sessions []*session
	for i := range 100 {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := &session{c: c, br: bufio.NewReader(c), ws: true}
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		resp, err := nethttp.ReadResponse(s.br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("WebSocket %d: %v %v", i, resp, err)
		}
		sessions = append(sessions, s)
	}
	for i := range 20 {
		c, err := net.Dial("tcp", smtpListen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := &session{c: c, br: bufio.NewReader(c)}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if line, err := s.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220") {
			t.Fatalf("SMTP %d greeting: %q %v", i, line, err)
		}
		sessions = append(sessions, s)
	}
	for i, s := range sessions {
		if err := s.ask(fmt.Sprintf("before %d", i)); err != nil {
			t.Fatalf("session %d before the upgrade: %v", i, err)
		}
	}

	// The load: a new connection per request, across the upgrade.
	stop := make(chan struct{})
	wait := testhttp.Load("http://"+listen+"/", "A", 4, 100000, stop)
	var wrkOut []byte
	wrkDone := make(chan struct{})
	if wrk, err := exec.LookPath("wrk"); err == nil {
		go func() {
			defer close(wrkDone)
			wrkOut, _ = exec.Command(wrk, "-t1", "-c10", "-d4s", "-H", "Connection: close", "http://"+listen+"/").CombinedOutput()
		}()
	} else {
		close(wrkDone)
	}
	time.Sleep(500 * time.Millisecond)
	oldPid := old.cmd.Process.Pid
	old.cmd.Process.Signal(syscall.SIGUSR2)
	eventually(t, 20*time.Second, "the new process serving", func() bool {
		return strings.Contains(old.log.String(), "the new process serves; this one drains")
	})
	newPid := 0
	eventually(t, 5*time.Second, "the pidfile taken over", func() bool {
		b, _ := os.ReadFile(pidfile)
		newPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return newPid != 0 && newPid != oldPid
	})
	t.Cleanup(func() { signalPid(newPid, syscall.SIGKILL) })
	time.Sleep(time.Second) // load on the new process
	// The sessions opened before go on, through the old process.
	for i, s := range sessions {
		if err := s.ask(fmt.Sprintf("after %d", i)); err != nil {
			t.Fatalf("session %d after the upgrade: %v", i, err)
		}
	}
	if old.wait(0) {
		t.Fatal("the old process exited with sessions open")
	}
	for _, s := range sessions {
		if !s.ws {
			s.ask("QUIT") // 221, not 250: the error is expected
		}
		s.c.Close()
	}
	if !old.wait(15 * time.Second) {
		t.Fatalf("the old process did not exit once drained; log:\n%s", old.log)
	}
	if old.err != nil {
		t.Fatalf("the old process exited with %v", old.err)
	}
	<-wrkDone
	close(stop)
	okN, failN := wait()
	if failN > 0 || okN == 0 {
		t.Fatalf("%d requests failed, %d succeeded; log:\n%s", failN, okN, old.log)
	}
	if wrkOut != nil && (strings.Contains(string(wrkOut), "Socket errors") || strings.Contains(string(wrkOut), "Non-2xx")) {
		t.Fatalf("wrk saw errors:\n%s", wrkOut)
	}
	// The new process serves on, and answers its own SIGTERM.
	resp, err := nethttp.Get("http://" + listen + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the new process after the old one left: %v %v", resp, err)
	}
	resp.Body.Close()
	signalPid(newPid, syscall.SIGTERM)
	eventually(t, 10*time.Second, "the new process gone", func() bool { return !alive(newPid) })
	t.Logf("%d requests across the upgrade, none failed; wrk:\n%s", okN, wrkOut)
}

// TestUpgradeDaemonSystemdAndFailure: a -B daemon upgrades (the pidfile
// names the new process, the old one exits); under systemd the old
// process tells the new main pid (MAINPID) and STOPPING; a new binary
// whose configuration fails leaves the old one serving, and says why.
func TestUpgradeDaemonSystemdAndFailure(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(listen, docroot(t, dir, "f", "ok"), ""))
	pidfile := filepath.Join(dir, "plb.pid")
	logs := logText(filepath.Join(dir, "plb.log"))
	if code, out := runParent(t, "-c", conf, "-p", pidfile, "-l", string(logs), "-d", "1"); code != 0 {
		t.Fatalf("plb -B: %d %q", code, out)
	}
	old := readPid(t, pidfile)
	t.Cleanup(func() { signalPid(old, syscall.SIGKILL) })
	signalPid(old, syscall.SIGUSR2)
	eventually(t, 20*time.Second, "the old daemon gone", func() bool { return !alive(old) })
	fresh := readPid(t, pidfile)
	t.Cleanup(func() { signalPid(fresh, syscall.SIGKILL) })
	if fresh == old || !alive(fresh) {
		t.Fatalf("pidfile names %d after the upgrade of %d; log:\n%s", fresh, old, logs)
	}
	if body, err := get(listen, "/f"); body != "ok" {
		t.Fatalf("the upgraded daemon: %q %v", body, err)
	}
	signalPid(fresh, syscall.SIGTERM)
	eventually(t, 10*time.Second, "the upgraded daemon gone", func() bool { return !alive(fresh) })

	// Under systemd, in the foreground.
	sock, next := notifySocket(t, dir)
	cmd := plbCmd(t, dir, "-c", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p := startPLB(t, cmd, dir)
	next("READY=1")
	// An upgrade to a configuration that fails: the old process serves on.
	os.WriteFile(conf, []byte(webConf(listen, filepath.Join(dir, "missing"), "")), 0o644)
	p.cmd.Process.Signal(syscall.SIGUSR2)
	eventually(t, 20*time.Second, "the failed upgrade logged", func() bool { return strings.Contains(p.log.String(), "upgrade failed") })
	if !strings.Contains(p.log.String(), "missing") {
		t.Errorf("the failed upgrade's log does not say why:\n%s", p.log)
	}
	if body, err := get(listen, "/f"); body != "ok" || p.wait(0) {
		t.Fatalf("after a failed upgrade: %q %v", body, err)
	}
	// Then one that works.
	os.WriteFile(conf, []byte(webConf(listen, filepath.Join(dir, "www"), "")), 0o644)
	p.cmd.Process.Signal(syscall.SIGUSR2)
	mainpid := 0
	for mainpid == 0 {
		msg := next("MAINPID of the new process")
		if strings.Contains(msg, "STATUS=upgraded") {
			fmt.Sscanf(msg[strings.Index(msg, "MAINPID="):], "MAINPID=%d", &mainpid)
		}
	}
	t.Cleanup(func() { signalPid(mainpid, syscall.SIGKILL) })
	if mainpid == p.cmd.Process.Pid || !alive(mainpid) {
		t.Fatalf("MAINPID=%d", mainpid)
	}
	if msg := next("STOPPING=1"); !strings.Contains(msg, "STOPPING=1") {
		t.Fatalf("after MAINPID: %q", msg)
	}
	if !p.wait(10 * time.Second) {
		t.Fatal("the old process did not exit")
	}
	if body, err := get(listen, "/f"); body != "ok" {
		t.Fatalf("the new process: %q %v", body, err)
	}
	signalPid(mainpid, syscall.SIGTERM)
	eventually(t, 10*time.Second, "the new process gone", func() bool { return !alive(mainpid) })
	t.Logf("the daemon's log:\n%s\nthe foreground one's:\n%s", logs, p.log)
}

// signalPid sends sig to pid, never to 0 or below (the process group, or
// every process: a pid a test failed to read must not kill the test's
// own group).
func signalPid(pid int, sig syscall.Signal) {
	if pid > 1 {
		syscall.Kill(pid, sig)
	}
}

// TestUpgradeEdges: started through a symbolic link a deployment then
// points at a new version, the upgrade runs the new version; a service
// the file no longer has loses its socket in the new process (its clients
// are refused, not left waiting); the new process upgrades again under
// systemd (it was given NOTIFY_SOCKET).
func TestUpgradeEdges(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(plbBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	v1, v2, link := filepath.Join(dir, "plb-1.0"), filepath.Join(dir, "plb-1.1"), filepath.Join(dir, "plb")
	for _, v := range []string{v1, v2} {
		if err := os.WriteFile(v, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(v1, link)
	www := docroot(t, dir, "f", "x")
	l1, l2 := freePort(t), freePort(t)
	conf := writeFile(t, dir, "plb.toml", webConf(l1, www, "")+strings.Replace(webConf(l2, www, ""), "service.web", "service.web2", 1))
	sock, next := notifySocket(t, dir)
	cmd := plbCmd(t, dir, "-c", conf)
	cmd.Path, cmd.Args[0] = link, link
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p := startPLB(t, cmd, dir)
	next("READY=1")
	waitServing(t, p, l2, "/f", "x")

	os.Remove(link)
	os.Symlink(v2, link)
	writeFile(t, dir, "plb.toml", webConf(l1, www, "")) // web2 removed
	mainpid := func() int {
		t.Helper()
		for {
			msg := next("MAINPID after an upgrade")
			if i := strings.Index(msg, "MAINPID="); i >= 0 && strings.Contains(msg, "STATUS=upgraded") {
				pid := 0
				fmt.Sscanf(msg[i:], "MAINPID=%d", &pid)
				return pid
			}
		}
	}
	p.cmd.Process.Signal(syscall.SIGUSR2)
	second := mainpid()
	t.Cleanup(func() { signalPid(second, syscall.SIGKILL) })
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", second)); exe != v2 {
		t.Errorf("the new process runs %q, want %q (the link's new target)", exe, v2)
	}
	if !p.wait(10 * time.Second) {
		t.Fatal("the old process did not exit")
	}
	if c, err := net.DialTimeout("tcp", l2, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed service's port %s still accepts after the upgrade", l2)
	}
	if body, err := get(l1, "/f"); body != "x" {
		t.Fatalf("after the first upgrade: %q %v", body, err)
	}

	// The second process upgrades in turn, telling systemd.
	signalPid(second, syscall.SIGUSR2)
	third := mainpid()
	t.Cleanup(func() { signalPid(third, syscall.SIGKILL) })
	eventually(t, 10*time.Second, "the second process gone", func() bool { return !alive(second) })
	if body, err := get(l1, "/f"); body != "x" || !alive(third) {
		t.Fatalf("after the second upgrade: %q %v", body, err)
	}
	signalPid(third, syscall.SIGTERM)
	eventually(t, 10*time.Second, "the third process gone", func() bool { return !alive(third) })
}
