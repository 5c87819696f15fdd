package main

import (
	"bytes"
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
	bin := plbBinary(t)
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
	logs := logText(filepath.Join(dir, "plb.log"))
	cmd := exec.Command(bin, "-c", conf, "-d", "1", "-l", string(logs))
	stderr := logText(filepath.Join(dir, "stderr"))
	errFile, err := os.Create(string(stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
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
	waitBody := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			body, err := fetch("/")
			if err == nil && body == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: got %q, %v; log:\n%s%s", what, body, err, logs, stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitBody("start", "A")

	write(b, "")
	cmd.Process.Signal(syscall.SIGHUP)
	waitBody("reload", "B")
	if !strings.Contains(logs.String(), "configuration reloaded") {
		t.Fatalf("reload not logged:\n%s", logs)
	}

	write(a, "balance_method = \"fastest\"\n") // invalid
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("failed reload not logged:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	if slowErr != nil || len(slowBody) != 1<<20 || strings.Trim(slowBody, "B") != "" {
		t.Fatalf("slow download: %d bytes, %v", len(slowBody), slowErr)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("plb exited with %v; log:\n%s%s", exitErr, logs, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("plb did not exit after SIGTERM; log:\n%s", logs)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after exit")
	}
	t.Logf("plb's log:\n%s", logs)
}
