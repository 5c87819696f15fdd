package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/plb/plb/internal/testhttp"
)

// h2Backend is Go's net/http server speaking HTTP/2 on loopback: h2c
// (prior knowledge), or h2 over TLS when tlsConf is set. It counts the
// connections it accepted.
type h2Backend struct {
	addr  string
	conns atomic.Int64
	mu    sync.Mutex
	seen  []string // "proto method path" of each request
}

func startH2Backend(t *testing.T, tlsConf *tls.Config, h nethttp.Handler) *h2Backend {
	t.Helper()
	b := &h2Backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	wrapped := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Proto+" "+r.Method+" "+r.RequestURI)
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	srv := &nethttp.Server{ConnState: func(_ net.Conn, s nethttp.ConnState) {
		if s == nethttp.StateNew {
			b.conns.Add(1)
		}
	}}
	h2s := &http2.Server{MaxConcurrentStreams: 50}
	if tlsConf != nil {
		srv.Handler = wrapped
		srv.TLSConfig = tlsConf.Clone() // ConfigureServer edits it: several backends may share tlsConf
		if err := http2.ConfigureServer(srv, h2s); err != nil {
			t.Fatal(err)
		}
		go srv.ServeTLS(ln, "", "")
	} else {
		srv.Handler = h2c.NewHandler(wrapped, h2s)
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *h2Backend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// echoH2 answers with the request's protocol, method, target, body length
// and a trailer, flushing the head first so that the body goes chunked.
func echoH2(w nethttp.ResponseWriter, r *nethttp.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("X-Host", r.Host)
	w.WriteHeader(200)
	fmt.Fprintf(w, "%s %s %s %d", r.Proto, r.Method, r.RequestURI, len(body))
	w.Header().Set("X-Sum", strconv.Itoa(len(body)))
}

// TestH2CBackendCurl: backend_protocol h2c in front of Go's net/http
// h2c server: HTTP/1.1 and HTTP/2 clients' GETs and uploads (with a
// length, and chunked) reach it as HTTP/2 requests, answers and trailers
// come back, and twenty requests at once share one connection.
func TestH2CBackendCurl(t *testing.T) {
	be := startH2Backend(t, nil, nethttp.HandlerFunc(echoH2))
	ts := startProxy(t, []string{be.addr}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true"))
	addr := ts.addrOf("proxy")
	if out := curl(t, "-H", "Host: h.test", "http://"+addr+"/a?x=1"); out != "HTTP/2.0 GET /a?x=1 0" {
		t.Fatalf("HTTP/1.1 GET: %q", out)
	}
	if out := curl(t, "--http2-prior-knowledge", "http://"+addr+"/b"); out != "HTTP/2.0 GET /b 0" {
		t.Fatalf("h2c GET: %q", out)
	}
	upload := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("u"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{{"--data-binary", "@" + upload}, {"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + upload}, {"--http2-prior-knowledge", "--data-binary", "@" + upload}} {
		out := curl(t, append(extra, "http://"+addr+"/up")...)
		if want := "HTTP/2.0 POST /up " + strconv.Itoa(1<<20); out != want {
			t.Fatalf("upload %q: %q, want %q", extra, out, want)
		}
	}
	// The trailer reaches an HTTP/1.1 client in the chunked body.
	raw := rawHTTP(t, addr, "GET /t HTTP/1.1\r\nHost: h.test\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	if !strings.Contains(raw, "Transfer-Encoding: chunked") && !strings.Contains(raw, "transfer-encoding: chunked") || !strings.Contains(raw, "x-sum: 0\r\n") {
		t.Fatalf("chunked answer with its trailer:\n%s", raw)
	}
	if !strings.Contains(raw, "x-host: h.test") {
		t.Fatalf("the Host became :authority:\n%s", raw)
	}
	before := be.conns.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			resp, err := nethttp.Get(fmt.Sprintf("http://%s/c%d", addr, i))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("HTTP/2.0 GET /c%d 0", i); string(b) != want {
				errs <- fmt.Errorf("%q, want %q", b, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Two loops: at most a connection each (and one more while one
	// connects and another is needed).
	if n := be.conns.Load(); n > 4 {
		t.Errorf("%d connections to the backend (%d before the 20 requests): streams were not multiplexed", n, before)
	}
}

// startH2CProxy is plb on one loop, a reverse proxy over HTTP/2 in the
// clear (backend_protocol h2c) to node, with the service keys extra (one
// loop: every client shares its exchanges and connections).
func startH2CProxy(t *testing.T, node string, extra ...string) *testServer {
	t.Helper()
	return startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{node}, "", testhttp.ServiceKeys(append([]string{`backend_protocol = "h2c"`}, extra...)...))))
}

// rawHTTP sends req on a new connection and returns all it reads.
func rawHTTP(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestH2BackendTLS: backend_protocol h2 speaks HTTP/2 over TLS, asked
// for by ALPN, verifying the node's certificate with backend_ssl's keys;
// a node whose TLS server does not agree to h2 fails as a failed connect
// does, and the request goes to the next node.
func TestH2BackendTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile, _ := ca.issue("b", false, "b.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	good := startH2Backend(t, &tls.Config{Certificates: []tls.Certificate{cert}}, nethttp.HandlerFunc(echoH2))
	// An HTTP/1.1-only TLS server: ALPN offers no h2.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	h1 := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { io.WriteString(w, "h1 node") })}
	go h1.Serve(ln)
	t.Cleanup(func() { h1.Close() })
	keys := testhttp.ServiceKeys(`backend_protocol = "h2"`, fmt.Sprintf("backend_ssl_ca_file = %q", ca.pem), `backend_ssl_server_name = "b.test"`)
	ts := startProxy(t, []string{ln.Addr().String(), good.addr}, `balance_method = "round_robin"`, keys)
	addr := ts.addrOf("proxy")
	for i := range 4 {
		if out := curl(t, fmt.Sprintf("http://%s/tls%d", addr, i)); out != fmt.Sprintf("HTTP/2.0 GET /tls%d 0", i) {
			t.Fatalf("request %d: %q", i, out)
		}
	}
	if got := good.requests(); len(got) != 4 {
		t.Fatalf("the h2 node saw %q", got)
	}
	found := false
	for _, n := range ts.Pool("web").Nodes() {
		if n.Addr.String() == ln.Addr().String() {
			found = true
			if n.Attempts.Load() == 0 || n.Connects.Load() != 0 {
				t.Errorf("the node without h2: %d attempts, %d connects; want some, and none", n.Attempts.Load(), n.Connects.Load())
			}
		}
	}
	if !found {
		t.Fatal("the node without h2 is not in the pool")
	}
}

// TestH2BackendVerify: verify_backend's OPTIONS goes as a stream too, and
// its answer lets the exchange carry the client's request.
func TestH2BackendVerify(t *testing.T) {
	be := startH2Backend(t, nil, nethttp.HandlerFunc(echoH2))
	ts := startProxy(t, []string{be.addr}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "verify_backend = true"))
	addr := ts.addrOf("proxy")
	for i := range 3 {
		if out := curl(t, fmt.Sprintf("http://%s/v%d", addr, i)); out != fmt.Sprintf("HTTP/2.0 GET /v%d 0", i) {
			t.Fatalf("request %d: %q", i, out)
		}
	}
	got := be.requests()
	if len(got) < 4 || got[0] != "HTTP/2.0 OPTIONS *" {
		t.Fatalf("the backend saw %q, want OPTIONS * first", got)
	}
}

// TestH2BackendStreamLimit: a backend allowing 2 streams per connection
// never gets more on one, however many requests come at once: plb opens
// more connections, or has requests wait for a stream; all succeed.
func TestH2BackendStreamLimit(t *testing.T) {
	type connKey struct{}
	var mu sync.Mutex
	inFlight := map[any]int{}
	most := 0
	release := make(chan struct{})
	h := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		k := r.Context().Value(connKey{})
		mu.Lock()
		inFlight[k]++
		most = max(most, inFlight[k])
		mu.Unlock()
		select {
		case <-release:
		case <-time.After(300 * time.Millisecond):
		}
		mu.Lock()
		inFlight[k]--
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: 2}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ts := startH2CProxy(t, ln.Addr().String())
	addr := ts.addrOf("proxy")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 24 {
		wg.Go(func() {
			resp, err := nethttp.Get(fmt.Sprintf("http://%s/s%d", addr, i))
			if err != nil {
				failed.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	close(release)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 24 requests failed", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 2 {
		t.Fatalf("%d streams at once on one connection, the backend allows 2", most)
	}
	if most < 2 {
		t.Fatalf("at most %d stream at once on a connection: no multiplexing", most)
	}
}

// TestH2BackendHealthCheck: with backend_protocol h2c, h2 over TLS, or
// HTTP/1.1 over TLS (backend_ssl), the pool's http check speaks it too: a
// node answering its check 503 goes down, its requests go to the other,
// and it comes back when the check passes.
func TestH2BackendHealthCheck(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile, _ := ca.issue("b", false, "b.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"h2c", "h2", "https"} {
		t.Run(proto, func(t *testing.T) {
			var tc *tls.Config
			keys := testhttp.ServiceKeys(`backend_protocol = "h2c"`)
			major := 2
			tlsKeys := []string{fmt.Sprintf("backend_ssl_ca_file = %q", ca.pem), `backend_ssl_server_name = "b.test"`}
			switch proto {
			case "h2":
				tc = &tls.Config{Certificates: []tls.Certificate{cert}}
				keys = testhttp.ServiceKeys(append(tlsKeys, `backend_protocol = "h2"`)...)
			case "https":
				tc = &tls.Config{Certificates: []tls.Certificate{cert}}
				keys = testhttp.ServiceKeys(append(tlsKeys, "backend_ssl = true")...)
				major = 1
			}
			var sick atomic.Bool
			var checks atomic.Int64
			a := startH2Backend(t, tc, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				if r.URL.Path == "/health" {
					checks.Add(1)
					if sick.Load() || r.ProtoMajor != major {
						w.WriteHeader(503)
					}
					return
				}
				io.WriteString(w, "a")
			}))
			b := startH2Backend(t, tc, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { io.WriteString(w, "b") }))
			ts := startProxy(t, []string{a.addr, b.addr}, `balance_method = "round_robin"
check = "http"
check_path = "/health"
check_interval = "100ms"
timeout_cleanup = "100ms"
fall = 2
rise = 2
`, keys)
			addr := ts.addrOf("proxy")
			node := ts.Pool("web").Nodes()[0]
			testhttp.WaitFor(t, "active checks", func() bool { return checks.Load() >= 2 })
			if node.Down() {
				t.Fatalf("healthy node down: %s", node.LastTransition().Reason)
			}
			sick.Store(true)
			testhttp.WaitFor(t, "the failing checks to take the node down", node.Down)
			if r := node.LastTransition().Reason; !strings.Contains(r, proto+" GET /health checks failed") {
				t.Fatalf("reason %q", r)
			}
			for range 4 {
				if body := testhttp.MustGet(t, addr, "/x"); body != "b" {
					t.Fatalf("down node answered: %q", body)
				}
			}
			sick.Store(false)
			testhttp.WaitFor(t, "the good checks to bring the node back", func() bool { return !node.Down() })
		})
	}
}

// TestH2BackendCounted: show service and /metrics count the HTTP/2
// connections and streams to the nodes.
func TestH2BackendCounted(t *testing.T) {
	be := startH2Backend(t, nil, nethttp.HandlerFunc(echoH2))
	ts := startServer(t, testhttp.OneLoop(consoleTOML([]string{be.addr}, testhttp.ServiceKeys(`backend_protocol = "h2c"`))))
	addr := ts.addrOf("proxy")
	for i := range 3 {
		curl(t, fmt.Sprintf("http://%s/n%d", addr, i))
	}
	con := dialConsole(t, ts.addrOf("mgmt"))
	found := false
	for _, l := range con.do("show service proxy") {
		found = found || l == " backend http2: 1 connections, 0 streams (3 in all)"
	}
	if !found {
		t.Fatalf("show service: %q", con.do("show service proxy"))
	}
	m := scrape(t, ts.addrOf("mgmt"))
	if m[`plb_backend_http2_connections{service="proxy"}`] != 1 || m[`plb_backend_http2_streams_total{service="proxy"}`] != 3 {
		t.Fatalf("metrics: connections %v, streams %v", m[`plb_backend_http2_connections{service="proxy"}`], m[`plb_backend_http2_streams_total{service="proxy"}`])
	}
}

// TestH2BackendEarlyResponse: a node that answers before it read the
// request body (413 to a large upload) ends that exchange cleanly: the
// rest of the body is dropped, and the requests after it, on the same
// loop's exchanges, get their own answers.
func TestH2BackendEarlyResponse(t *testing.T) {
	be := startH2Backend(t, nil, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path == "/early" {
			w.WriteHeader(413)
			io.WriteString(w, "too large")
			return
		}
		echoH2(w, r)
	}))
	ts := startH2CProxy(t, be.addr, "buffer_backend_connect = 0")
	addr := ts.addrOf("proxy")
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		body := bytes.Repeat([]byte("b"), 1<<20)
		go func() {
			io.WriteString(c, "POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
			c.Write(body)
		}()
		buf := make([]byte, 4096)
		n, _ := io.ReadAtLeast(c, buf, 12)
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 413") {
			t.Fatalf("round %d: the early answer: %q", i, buf[:n])
		}
		c.Close()
		for j := range 3 {
			if out := curl(t, fmt.Sprintf("http://%s/after%d", addr, j)); out != fmt.Sprintf("HTTP/2.0 GET /after%d 0", j) {
				t.Fatalf("round %d, request %d after the early answer: %q", i, j, out)
			}
		}
	}
}

// h2cClient is an HTTP/2 client with prior knowledge (h2c) to plb.
func h2cClient() *nethttp.Client {
	return &nethttp.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// TestH2BackendCancelFreesStream: a client that resets its stream while
// plb waits for the node's answer cancels the node's stream at once
// (the node's handler sees its context end), and a request waiting for
// a stream of that node (every connection at the node's limit of one)
// takes the one freed.
func TestH2BackendCancelFreesStream(t *testing.T) {
	cancelled := make(chan string, 16)
	release := make(chan struct{})
	defer close(release)
	h := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			select {
			case <-r.Context().Done():
				cancelled <- r.URL.Path
			case <-release:
			}
			return
		}
		io.WriteString(w, "fast")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: 1})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{ln.Addr().String()}, "",
		testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true", `backend_timeout = "15s"`, `idle_timeout = "30s"`))))
	addr := ts.addrOf("proxy")
	client := h2cClient()
	ctx0, cancel0 := context.WithCancel(context.Background())
	for i := range 8 { // the loop's 8 connections, one stream each
		ctx := context.Background()
		if i == 0 {
			ctx = ctx0
		}
		req, _ := nethttp.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/slow%d", addr, i), nil)
		go func() {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	testhttp.WaitFor(t, "8 streams to the node", func() bool { return ts.proxySvc("proxy").H2Stats().Streams.Load() == 8 })
	done := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/fast")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	time.Sleep(200 * time.Millisecond) // the fast request waits for a stream
	cancel0()
	select {
	case p := <-cancelled:
		if p != "/slow0" {
			t.Fatalf("the node saw %s cancelled", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's reset did not reach the node")
	}
	select {
	case got := <-done:
		if got != "fast" {
			t.Fatalf("the waiting request: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request did not get the stream freed")
	}
}

// TestH2CBackendNginx: nginx as the node, speaking h2c (listen ...
// http2), plb in front with backend_protocol h2c: curl's HTTP/1.1 GET and
// upload and h2load's 300 HTTP/2 requests on 3 connections of 10 streams
// all reach nginx as HTTP/2, over few connections.
func TestH2CBackendNginx(t *testing.T) {
	bin := needServer(t, "nginx")
	h2load := needServer(t, "h2load")
	node := fmt.Sprintf("127.0.0.1:%d", quietPort(t))
	runNginx(t, bin, t.TempDir(), fmt.Sprintf(`  server {
    listen %s http2;
    client_max_body_size 10m;
    location / { return 200 "$server_protocol $request_method $uri $content_length\n"; }
  }
`, node), node)
	ts := startH2CProxy(t, node, "http2 = true")
	addr := ts.addrOf("proxy")
	if out := curl(t, "http://"+addr+"/a"); out != "HTTP/2.0 GET /a \n" {
		t.Fatalf("a GET: %q", out)
	}
	upload := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("u"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := curl(t, "--data-binary", "@"+upload, "http://"+addr+"/up"); out != "HTTP/2.0 POST /up 1048576\n" {
		t.Fatalf("an upload: %q", out)
	}
	out, err := exec.Command(h2load, "-n", "300", "-c", "3", "-m", "10", "http://"+addr+"/h2load").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "300 succeeded, 0 failed, 0 errored") || !strings.Contains(string(out), "status codes: 300 2xx") {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	if n := ts.proxySvc("proxy").H2Stats().Conns.Load(); n < 1 || n > 8 {
		t.Errorf("%d HTTP/2 connections to nginx for 30 streams at once", n)
	}
}
