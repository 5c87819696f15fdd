package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// httpBackend serves name on / and a slow 1 MiB body on /slow, telling
// started when the slow body has begun.
func httpBackend(t *testing.T, name string, started chan<- struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, name)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte(name), size/8/len(name))
		for i := 0; i < 8; i++ {
			w.Write(chunk)
			w.(nethttp.Flusher).Flush()
			if i == 0 {
				started <- struct{}{}
			}
			time.Sleep(100 * time.Millisecond)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// logText is the plb log, read whole on each look.
type logText string

func (l logText) String() string {
	b, _ := os.ReadFile(string(l))
	return string(b)
}

// TestBinaryReloadAndTerm runs the real plb: SIGHUP applies an edited file
// (and keeps running on an invalid one, logging file:line), SIGTERM during
// a slow download lets it finish, then plb exits 0.
func TestBinaryReloadAndTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	started := make(chan struct{}, 4)
	a, b := httpBackend(t, "A", started), httpBackend(t, "B", started)
	listen := freePort(t)
	conf := filepath.Join(dir, "plb.toml")
	write := func(node string, extra string) {
		t.Helper()
		text := fmt.Sprintf("[pool.web]\nnodes = [%q]\n\n[service.proxy]\nrole = \"reverse_proxy\"\nlisten = %q\npool = \"web\"\npersist_client = true\n%s", node, listen, extra)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "")
	p := startPLB(t, plbCmd(t, dir, "-c", conf), dir)
	logs := p.log
	client := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{DisableKeepAlives: true}}
	fetch := func(path string) (string, error) {
		resp, err := client.Get("http://" + listen + path)
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
	waitServing(t, p, listen, "/", "A")

	write(b, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitServing(t, p, listen, "/", "B")
	if !strings.Contains(logs.String(), "configuration reloaded") {
		t.Fatalf("reload not logged:\n%s", logs)
	}

	write(a, "balance_method = \"fastest\"\n") // invalid
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the failed reload logged", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if !strings.Contains(logs.String(), conf+":") {
		t.Fatalf("reload error without file:line:\n%s", logs)
	}
	if body, err := fetch("/"); body != "B" {
		t.Fatalf("after an invalid file: %q %v", body, err)
	}

	// SIGTERM during a slow download: it finishes, then plb exits 0.
	var wg sync.WaitGroup
	var slowBody string
	var slowErr error
	wg.Add(1)
	go func() { defer wg.Done(); slowBody, slowErr = fetch("/slow") }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("slow download did not start")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	if slowErr != nil || len(slowBody) != 1<<20 || strings.Trim(slowBody, "B") != "" {
		t.Fatalf("slow download: %d bytes, %v", len(slowBody), slowErr)
	}
	if !p.wait(10 * time.Second) {
		t.Fatalf("plb did not exit after SIGTERM; log:\n%s", logs)
	}
	if p.err != nil {
		t.Fatalf("plb exited with %v; log:\n%s%s", p.err, logs, p.stderr)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after exit")
	}
	t.Logf("plb's log:\n%s", logs)
}
