package server

// The interop matrix: real web servers behind plb, with real clients'
// requests, in the seed's Listing 2 (Perlbal syntax: persist_client,
// persist_backend and verify_backend on, Perlbal's defaults else) and in
// TOML (round_robin, keep-alive both sides, no verification). nginx,
// apache2 (with CGI), python's http.server (HTTP/1.0 and 1.1), Node's http
// and Go's net/http each run as two nodes on loopback. Every case checks
// what the client gets, then that a fresh client still gets exactly its
// own page (nothing of the case was left on a pooled connection).
//
// Outside CI a server that is not installed is skipped; under CI (CI=true)
// that is a failure: .ci/run installs them from Debian.

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
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
	"github.com/plb/plb/internal/testutil"
)

// realServer is a web server running as two nodes.
type realServer struct {
	name  string
	nodes [2]string
	// paths maps a case to the path that exercises it on this server (a
	// case with no path is not run).
	paths map[string]string
	// earlyStatus is the status of its early answer to a POST too large
	// for it (0: the case is not run).
	earlyStatus int
	// postUnread is the status it gives a POST it does not read (0: none).
	postUnread int
}

// interopDocroot is the files every server serves: page.html, big.bin
// (256 KiB), dated an hour back.
type interopDocroot struct {
	dir       string
	page, big []byte
	mtime     time.Time
}

func newInteropDocroot(t *testing.T) *interopDocroot {
	t.Helper()
	d := &interopDocroot{dir: t.TempDir(), mtime: time.Now().Add(-time.Hour).Truncate(time.Second)}
	d.page = []byte(strings.Repeat("<p>plb interop page</p>\n", 80))
	d.big = make([]byte, 256<<10)
	rand.Read(d.big)
	for name, b := range map[string][]byte{"page.html": d.page, "big.bin": d.big} {
		p := filepath.Join(d.dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, d.mtime, d.mtime)
	}
	openUp(d.dir) // servers that drop privileges read it
	return d
}

// needServer returns the path of bin, skipping the test when it is
// missing (failing under CI).
func needServer(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(dir, bin)); err == nil {
				return filepath.Join(dir, bin)
			}
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (.ci/run installs it)", bin)
		}
		t.Skipf("%s is not installed", bin)
	}
	return p
}

// quietPort returns a free loopback port outside the kernel's ephemeral
// range (32768-60999), for servers that must be told their port.
func quietPort(t *testing.T) int { return testutil.QuietPort(t) }

// runGroup starts cmd in a process group of its own, killed with all its
// children (apache2's workers and CGI daemon) when the test ends.
func runGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

// openUp lets other users (servers that drop privileges) reach dir: it
// and every directory above it get the search bit.
func openUp(dir string) {
	for p := dir; p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(p, fi.Mode().Perm()|0o055)
		}
	}
}

// startProcess runs cmd until the test ends, its output kept for failure
// messages, and waits until addrs accept connections.
func startProcess(t *testing.T, cmd *exec.Cmd, addrs ...string) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runGroup(t, cmd)
	for _, a := range addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never listened on %s:\n%s", cmd.Path, a, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return &out
}

// runNginx runs nginx (one foreground worker, its files in dir) with the
// http block's lines httpLines until the test ends, and waits until addrs
// accept connections.
func runNginx(t *testing.T, bin, dir, httpLines string, addrs ...string) {
	t.Helper()
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s}
`, dir, httpLines)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, exec.Command(bin, "-c", filepath.Join(dir, "nginx.conf")), addrs...)
}

func startNginx(t *testing.T, d *interopDocroot) *realServer {
	bin := needServer(t, "nginx")
	dir := t.TempDir()
	p1, p2 := quietPort(t), quietPort(t)
	a1, a2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	runNginx(t, bin, dir, fmt.Sprintf(`  client_max_body_size 1k;
  gzip on;
  gzip_types text/html;
  gzip_min_length 1;
  server {
    listen %s;
    listen %s;
    root %s;
    location = /204 { return 204; }
    location = /early { return 200 "early"; }
  }
`, a1, a2, d.dir), a1, a2)
	return &realServer{name: "nginx", nodes: [2]string{a1, a2},
		paths:       map[string]string{"204": "/204", "chunked": "/page.html#gzip", "early": "/early"},
		earlyStatus: 413}
}

func startApache(t *testing.T, d *interopDocroot) *realServer {
	bin := needServer(t, "apache2")
	mods := "/usr/lib/apache2/modules"
	if _, err := os.Stat(filepath.Join(mods, "mod_cgid.so")); err != nil {
		needServer(t, "apache2-modules-missing") // skips, or fails under CI
	}
	dir := t.TempDir()
	openUp(dir)
	cgi := filepath.Join(dir, "cgi")
	os.Mkdir(cgi, 0o755)
	scripts := map[string]string{
		"204":     "printf 'Status: 204 No Content\\r\\n\\r\\n'\n",
		"chunked": "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'chunk-one,'\nsleep 0.01\nprintf 'chunk-two'\n",
		"early":   "printf 'Content-Type: text/plain\\r\\n\\r\\nearly'\n", // never reads its input
	}
	for name, body := range scripts {
		os.WriteFile(filepath.Join(cgi, name), []byte("#!/bin/sh\n"+body), 0o755)
	}
	p1, p2 := quietPort(t), quietPort(t)
	conf := fmt.Sprintf(`ServerRoot %[1]s
ServerName localhost
Listen 127.0.0.1:%[2]d
Listen 127.0.0.1:%[3]d
LoadModule mpm_event_module %[5]s/mod_mpm_event.so
LoadModule authz_core_module %[5]s/mod_authz_core.so
LoadModule mime_module %[5]s/mod_mime.so
LoadModule alias_module %[5]s/mod_alias.so
LoadModule cgid_module %[5]s/mod_cgid.so
User nobody
Group nogroup
PidFile %[1]s/apache.pid
ErrorLog %[1]s/error.log
ScriptSock %[1]s/cgid.sock
Mutex file:%[1]s
TypesConfig /etc/mime.types
KeepAlive On
MaxKeepAliveRequests 0
LimitRequestBody 1024
DocumentRoot %[4]s
<Directory />
  Require all granted
</Directory>
ScriptAlias /cgi/ %[1]s/cgi/
`, dir, p1, p2, d.dir, mods)
	os.WriteFile(filepath.Join(dir, "apache.conf"), []byte(conf), 0o644)
	a1, a2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	cmd := exec.Command(bin, "-f", filepath.Join(dir, "apache.conf"), "-DFOREGROUND")
	cmd.Env = append(os.Environ(), "APACHE_RUN_DIR="+dir, "APACHE_LOCK_DIR="+dir, "APACHE_LOG_DIR="+dir)
	startProcess(t, cmd, a1, a2)
	return &realServer{name: "apache2", nodes: [2]string{a1, a2},
		paths:       map[string]string{"204": "/cgi/204", "chunked": "/cgi/chunked", "early": "/cgi/early"},
		earlyStatus: 413}
}

func startPython(t *testing.T, d *interopDocroot, proto string) *realServer {
	bin := needServer(t, "python3")
	s := &realServer{name: "python http.server " + proto, paths: map[string]string{}, postUnread: 501}
	for i := range s.nodes {
		p := quietPort(t)
		s.nodes[i] = fmt.Sprintf("127.0.0.1:%d", p)
		args := []string{"-m", "http.server", "--bind", "127.0.0.1", "--directory", d.dir}
		if proto != "HTTP/1.0" {
			args = append(args, "--protocol", proto)
		}
		startProcess(t, exec.Command(bin, append(args, strconv.Itoa(p))...), s.nodes[i])
	}
	return s
}

func startNode(t *testing.T, d *interopDocroot) *realServer {
	bin := needServer(t, "node")
	cmd := exec.Command(bin, "testdata/interop/backend.js", d.dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	runGroup(t, cmd)
	var p1, p2 int
	if _, err := fmt.Fscan(stdout, &p1, &p2); err != nil {
		t.Fatalf("node did not say its ports: %v", err)
	}
	return &realServer{name: "node http", nodes: [2]string{fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)},
		paths:       map[string]string{"204": "/204", "chunked": "/chunked", "early": "/early", "ws": "/ws"},
		earlyStatus: 200}
}

func startGoServer(t *testing.T, d *interopDocroot) *realServer {
	mux := nethttp.NewServeMux()
	mux.Handle("/", nethttp.FileServer(nethttp.Dir(d.dir)))
	mux.HandleFunc("/204", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/chunked", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "chunk-one,")
		w.(nethttp.Flusher).Flush()
		time.Sleep(5 * time.Millisecond)
		io.WriteString(w, "chunk-two")
	})
	mux.HandleFunc("/early", func(w nethttp.ResponseWriter, r *nethttp.Request) { io.WriteString(w, "early") })
	mux.HandleFunc("/ws", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		c, brw, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, brw)
	})
	s := &realServer{name: "Go net/http", paths: map[string]string{"204": "/204", "chunked": "/chunked", "early": "/early", "ws": "/ws"},
		earlyStatus: 200}
	for i := range s.nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &nethttp.Server{Handler: mux}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		s.nodes[i] = ln.Addr().String()
	}
	return s
}

// listing2 is the seed's Listing 2 with these nodes and a loopback listener.
func listing2(nodes [2]string) string {
	return fmt.Sprintf(`CREATE POOL apache_pool
  POOL apache_pool ADD %s
  POOL apache_pool ADD %s

CREATE SERVICE balancer
  SET listen          = 127.0.0.1:0
  SET role            = reverse_proxy
  SET pool            = apache_pool
  SET persist_client  = on
  SET persist_backend = on
  SET verify_backend  = on
ENABLE balancer
`, nodes[0], nodes[1])
}

func interopTOML(nodes [2]string) string {
	return fmt.Sprintf(`[pool.web]
nodes = [%q, %q]
balance_method = "round_robin"

[service.balancer]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
persist_client = true
persist_backend = true
`, nodes[0], nodes[1])
}

func TestInteropRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	d := newInteropDocroot(t)
	servers := []func(*testing.T) *realServer{
		func(t *testing.T) *realServer { return startNginx(t, d) },
		func(t *testing.T) *realServer { return startApache(t, d) },
		func(t *testing.T) *realServer { return startPython(t, d, "HTTP/1.0") },
		func(t *testing.T) *realServer { return startPython(t, d, "HTTP/1.1") },
		func(t *testing.T) *realServer { return startNode(t, d) },
		func(t *testing.T) *realServer { return startGoServer(t, d) },
	}
	names := []string{"nginx", "apache2", "python-1.0", "python-1.1", "node", "go"}
	for i, start := range servers {
		t.Run(names[i], func(t *testing.T) {
			s := start(t)
			for _, cfg := range []struct{ name, text, pool string }{
				{"listing2", listing2(s.nodes), "apache_pool"},
				{"toml", interopTOML(s.nodes), "web"},
			} {
				t.Run(cfg.name, func(t *testing.T) {
					ts := startServer(t, cfg.text) // the syntax is detected
					runInteropCases(t, ts.addrOf("balancer"), s, d)
					for _, n := range ts.Pool(cfg.pool).Nodes() {
						if n.Down() {
							t.Errorf("%s down: %s", n.Name, n.LastTransition().Reason)
						}
					}
					if st := &ts.proxySvc("balancer").Stats; st.Errors503.Load() != 0 || st.Errors502.Load() != 0 {
						t.Errorf("plb answered 502 %d times, 503 %d times", st.Errors502.Load(), st.Errors503.Load())
					}
				})
			}
		})
	}
}

// runInteropCases runs every case s supports through plb at addr, each
// followed by a fresh client that must get exactly its own page.
func runInteropCases(t *testing.T, addr string, s *realServer, d *interopDocroot) {
	victim := func(after string) {
		t.Helper()
		c := testhttp.Dial(t, addr)
		defer c.NC.Close()
		resp, body := c.Do("GET /page.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || body != string(d.page) {
			t.Fatalf("after %s, a fresh client got %d and %d bytes, not its page", after, resp.StatusCode, len(body))
		}
	}
	getPage := func(c *testhttp.Client, extra string) {
		t.Helper()
		resp, body := c.Do("GET /page.html HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n")
		if resp.StatusCode != 200 || body != string(d.page) {
			t.Fatalf("GET /page.html: %d, %d bytes", resp.StatusCode, len(body))
		}
	}

	t.Run("keep-alive", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		for i := 0; i < 6; i++ {
			getPage(c, "")
		}
		resp, body := c.Do("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
		if resp.StatusCode != 200 || sha256.Sum256([]byte(body)) != sha256.Sum256(d.big) {
			t.Fatalf("big.bin: %d, %d bytes", resp.StatusCode, len(body))
		}
		getPage(c, "")
	})
	t.Run("close", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			c := testhttp.Dial(t, addr)
			getPage(c, "Connection: close\r\n")
			c.ExpectClosed()
			c.NC.Close()
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		resp, body := c.Do("HEAD /page.html HTTP/1.1\r\nHost: t\r\n\r\n")
		if resp.StatusCode != 200 || body != "" {
			t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
		}
		getPage(c, "")
		victim("HEAD")
	})
	t.Run("304", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		ims := d.mtime.UTC().Format(nethttp.TimeFormat) // nginx wants it exact
		resp, body := c.Do("GET /page.html HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: " + ims + "\r\n\r\n")
		if resp.StatusCode != 304 || body != "" {
			t.Fatalf("If-Modified-Since: %d %q", resp.StatusCode, body)
		}
		getPage(c, "")
		victim("304")
	})
	if p := s.paths["204"]; p != "" {
		t.Run("204", func(t *testing.T) {
			c := testhttp.Dial(t, addr)
			if resp, body := c.Do("GET " + p + " HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 204 || body != "" {
				t.Fatalf("204: %d %q", resp.StatusCode, body)
			}
			getPage(c, "")
			victim("204")
		})
	}
	if p := s.paths["chunked"]; p != "" {
		t.Run("chunked", func(t *testing.T) {
			c := testhttp.Dial(t, addr)
			path, gz := strings.CutSuffix(p, "#gzip")
			extra := ""
			if gz {
				extra = "Accept-Encoding: gzip\r\n"
			}
			resp, body := c.Do("GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n")
			if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Fatalf("not chunked: %v", resp.TransferEncoding)
			}
			want := "chunk-one,chunk-two"
			if gz {
				body, want = gunzipped(t, resp, body), string(d.page)
			}
			if resp.StatusCode != 200 || body != want {
				t.Fatalf("chunked: %d %q", resp.StatusCode, body)
			}
			getPage(c, "")
			// An HTTP/1.0 client gets it de-chunked.
			c10 := testhttp.Dial(t, addr)
			resp, body = c10.Do("GET " + path + " HTTP/1.0\r\n" + extra + "\r\n")
			if gz {
				body = gunzipped(t, resp, body)
			}
			if resp.StatusCode != 200 || body != want {
				t.Fatalf("chunked to 1.0: %d %q", resp.StatusCode, body)
			}
			victim("chunked")
		})
	}
	if p := s.paths["early"]; p != "" && s.earlyStatus != 0 {
		t.Run("early answer to a POST", func(t *testing.T) {
			// A body much larger than what plb holds before it connects
			// (buffer_backend_connect), sent while the answer comes.
			c := testhttp.Dial(t, addr)
			const size = 4 << 20
			c.Send(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", p, size))
			go func() {
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := c.NC.Write(chunk); err != nil {
						return
					}
				}
			}()
			resp, err := nethttp.ReadResponse(c.BR, &nethttp.Request{Method: "POST"})
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != s.earlyStatus {
				t.Fatalf("early answer: %d, want %d", resp.StatusCode, s.earlyStatus)
			}
			c.NC.Close()
			victim("an early answer")
			victim("an early answer, twice")
		})
	}
	t.Run("POST read whole", func(t *testing.T) {
		if s.postUnread != 0 {
			t.Skip("the server does not take POSTs")
		}
		c := testhttp.Dial(t, addr)
		resp, _ := c.Do("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode >= 500 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		victim("a POST")
	})
	if s.postUnread != 0 {
		t.Run("POST body left unread", func(t *testing.T) {
			// The body is a request: a server that leaves it unread on a
			// kept connection would answer it to the next client.
			smuggled := "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
			for i := 0; i < 5; i++ {
				c := testhttp.Dial(t, addr)
				resp, _ := c.Do(fmt.Sprintf("POST /page.html HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled))
				if resp.StatusCode != s.postUnread {
					t.Fatalf("POST: %d, want %d", resp.StatusCode, s.postUnread)
				}
				c.NC.Close()
				victim("a POST whose body was a request")
			}
		})
	}
	if p := s.paths["ws"]; p != "" {
		t.Run("WebSocket", func(t *testing.T) {
			c := testhttp.Dial(t, addr)
			c.Send("GET " + p + " HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			resp, err := nethttp.ReadResponse(c.BR, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			for _, msg := range []string{"ping", strings.Repeat("y", 100<<10)} {
				c.Send(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c.BR, got); err != nil || string(got) != msg {
					t.Fatalf("echo of %d bytes: %v", len(msg), err)
				}
			}
			c.NC.Close()
			victim("a WebSocket")
		})
	}
}

// gunzipped is body decoded when resp says it is gzipped.
func gunzipped(t *testing.T, resp *nethttp.Response, body string) string {
	t.Helper()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return body
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
