package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pythonNode runs python3's http.server on addr (a free loopback port
// when ""), serving a file /who that says "node NAME"; it returns the
// address and a stop that kills the server.
func pythonNode(t *testing.T, name, addr string) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (.ci/run installs it)")
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "who", "node "+name+"\n")
	if addr == "" {
		addr = freePort(t)
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-m", "http.server", port, "--bind", host, "--directory", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	eventually(t, 10*time.Second, "python3 http.server on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, stop
}

// curlJar fetches http://addr/who with curl, sending and updating the
// cookie jar; it returns the body and the Set-Cookie fields of the
// response.
func curlJar(t *testing.T, addr, jar string) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	out, err := exec.Command(bin, "-sS", "--fail", "--max-time", "10", "-D", "-", "-b", jar, "-c", jar, "http://"+addr+"/who").CombinedOutput()
	if err != nil {
		t.Fatalf("curl via %s: %v\n%s", addr, err, out)
	}
	head, body, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
	var set []string
	for _, l := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(l, "Set-Cookie: "); ok {
			set = append(set, v)
		}
	}
	return strings.TrimSpace(body), set
}

// TestStickyAcrossProcesses: a client (curl with its cookie jar) keeps
// its node across two plb processes started with the same configuration
// (they share nothing), with real servers (python3's http.server) as the
// nodes; when its node dies it moves to the other, gets that node's
// cookie from whichever plb it reaches, and both plb then keep it there,
// also once the dead node is back.
func TestStickyAcrossProcesses(t *testing.T) {
	a, stopA := pythonNode(t, "a", "")
	b, stopB := pythonNode(t, "b", "")
	stops := map[string]func(){"node a": stopA, "node b": stopB}
	addrs := map[string]string{"node a": a, "node b": b}
	dir := t.TempDir()
	var plbs [2]string
	for i := range plbs {
		plbs[i] = freePort(t)
		conf := writeFile(t, dir, fmt.Sprintf("plb%d.toml", i), fmt.Sprintf(`[pool.web]
nodes = [%q, %q]

[service.shop]
role = "reverse_proxy"
listen = %q
pool = "web"
persist_client = true
sticky_cookie = "SRV"
`, a, b, plbs[i]))
		pdir := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := startPLB(t, plbCmd(t, pdir, "-c", conf), pdir)
		eventually(t, 10*time.Second, "plb listening", func() bool {
			c, err := net.Dial("tcp", plbs[i])
			if err == nil {
				c.Close()
			}
			return err == nil || !alive(p.cmd.Process.Pid)
		})
	}
	jar := filepath.Join(dir, "jar")
	cookie := regexp.MustCompile(`^SRV=([0-9a-f]{16}); Path=/; HttpOnly; SameSite=Lax$`)

	home, set := curlJar(t, plbs[0], jar)
	if len(set) != 1 || !cookie.MatchString(set[0]) {
		t.Fatalf("first answer (%s) set %q", home, set)
	}
	if strings.Contains(set[0], "127.0.0.1") || strings.Contains(set[0], a[strings.LastIndex(a, ":")+1:]) {
		t.Fatalf("the cookie shows the node's address: %q", set[0])
	}
	for i := range 10 {
		if body, again := curlJar(t, plbs[i%2], jar); body != home || len(again) != 0 {
			t.Fatalf("request %d via plb %d: %q (home %q), Set-Cookie %q", i, i%2, body, home, again)
		}
	}

	stops[home]()
	moved, set := curlJar(t, plbs[1], jar)
	if moved == home || len(set) != 1 || !cookie.MatchString(set[0]) {
		t.Fatalf("with %s down: %q, Set-Cookie %q", home, moved, set)
	}
	for i := range 6 {
		if body, again := curlJar(t, plbs[i%2], jar); body != moved || len(again) != 0 {
			t.Fatalf("after the move, request %d via plb %d: %q (want %q), Set-Cookie %q", i, i%2, body, moved, again)
		}
	}

	// The dead node back, on its address: the client stays where it
	// moved, as its cookie says.
	pythonNode(t, strings.TrimPrefix(home, "node "), addrs[home])
	for i := range 6 {
		if body, again := curlJar(t, plbs[i%2], jar); body != moved || len(again) != 0 {
			t.Fatalf("with %s back, request %d: %q (want %q), Set-Cookie %q", home, i, body, moved, again)
		}
	}
}
