package server

import (
	"bytes"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

// webTOML is a web_server "web" of docroot with extra keys.
func webTOML(docroot, extra string) string {
	return fmt.Sprintf("[service.web]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = %q\npersist_client = true\n%s\n", docroot, extra)
}

// h2spec runs h2spec (a go tool of the module), strict cases included,
// against addr, over TLS when tls; it fails the test unless every case
// passes.
func h2spec(t *testing.T, addr string, tls bool) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"tool", "h2spec", "-h", host, "-p", port, "-o", "3", "-S"}
	if tls {
		args = append(args, "-t", "-k")
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(" 0 failed")) {
		i := bytes.Index(out, []byte("Failures:"))
		t.Fatalf("h2spec (tls %v): %v\n%s", tls, err, out[max(i, 0):])
	}
	i := bytes.LastIndex(bytes.TrimSpace(out), []byte("\n"))
	t.Logf("h2spec (tls %v): %s", tls, bytes.TrimSpace(out[i+1:]))
}

// TestHTTP2H2Spec: h2spec passes every case against a plb listener, over
// h2c with prior knowledge (http2 = true) and over TLS (h2 by ALPN, on by
// default).
func TestHTTP2H2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := webRoot(t, map[string]string{"index.html": strings.Repeat("hello h2spec\n", 100)})
	ts := startServer(t, webTOML(dir, "http2 = true"))
	h2spec(t, ts.addrOf("web"), false)

	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	tt := startServer(t, webTOML(dir, tlsKeys(cert, key)))
	h2spec(t, tt.addrOf("web"), true)
}

// curl runs curl with args and returns its output.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	bin := needServer(t, "curl")
	out, err := exec.Command(bin, append([]string{"-sS", "--fail", "--max-time", "20"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestHTTP2Curl: curl over HTTP/2 through plb's roles: several requests
// on one h2c connection to a reverse_proxy, a 1 MiB upload without and
// with a length, a web_server over TLS by ALPN (and HTTP/1.1 on the same
// listener when asked), and HTTP/1.1 beside h2c on a plain listener.
func TestHTTP2Curl(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "X-Backend: b\r\n", fmt.Sprintf("%s %s %d %s", req.Method, req.RequestURI, len(body), req.Header.Get("Cookie")))
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true"))
	addr := ts.addrOf("proxy")
	// One URL per curl: curl 7.88 cannot reuse an h2c connection (it
	// fails the same way against nginx); nghttp and h2load can.
	if out := curl(t, "--http2-prior-knowledge", "-w", " %{http_version}", "-b", "a=1; b=2", "http://"+addr+"/one?x=1"); out != "GET /one?x=1 0 a=1; b=2 2" {
		t.Fatalf("a GET over h2c: %q", out)
	}
	upload := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("u"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{{"--data-binary", "@" + upload}, {"-H", "Transfer-Encoding:", "-T", upload, "-X", "POST"}} {
		out := curl(t, append([]string{"--http2-prior-knowledge", "-w", " %{http_version}"}, append(extra, "http://"+addr+"/up")...)...)
		if want := "POST /up " + strconv.Itoa(1<<20) + "  2"; out != want {
			t.Fatalf("upload %q: %q, want %q", extra, out, want)
		}
	}
	if out := curl(t, "-w", " %{http_version}", "http://"+addr+"/h1"); out != "GET /h1 0  1.1" {
		t.Fatalf("HTTP/1.1 beside h2c: %q", out)
	}

	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	dir := webRoot(t, map[string]string{"f.txt": "over TLS\n"})
	tt := startServer(t, webTOML(dir, tlsKeys(cert, key)))
	url := "https://" + tt.addrOf("web") + "/f.txt"
	if out := curl(t, "-k", "--http2", "-w", "%{http_version}\n", url, url, url); out != strings.Repeat("over TLS\n2\n", 3) {
		t.Fatalf("three GETs over TLS with ALPN h2 on one connection: %q", out)
	}
	if out := curl(t, "-k", "--http1.1", "-w", "%{http_version}", url); out != "over TLS\n1.1" {
		t.Fatalf("TLS with ALPN http/1.1: %q", out)
	}
}

// TestHTTP2H2loadNginx: h2load (nghttp2's load generator), 3 clients
// with 10 streams each, through a reverse_proxy over h2c in front of two
// nginx nodes: every request succeeds, and both nodes answer.
func TestHTTP2H2loadNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	bin := needServer(t, "h2load")
	nodes := startNginxNodes(t)
	ts := startProxy(t, nodes[:], `balance_method = "round_robin"`, testhttp.ServiceKeys("http2 = true"))
	out, err := exec.Command(bin, "-n", "300", "-c", "3", "-m", "10", "http://"+ts.addrOf("proxy")+"/h2load").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "300 succeeded, 0 failed, 0 errored") {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "status codes: 300 2xx") {
		t.Fatalf("h2load statuses:\n%s", out)
	}
	for _, n := range ts.Pool("web").Nodes() {
		if n.Requests.Load() == 0 {
			t.Errorf("node %s answered nothing", n.Name)
		}
	}
}
